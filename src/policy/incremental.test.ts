// Differential test: random sequences of endpoint, namespace, policy and DNS changes must leave
// every endpoint with the same MapState as a fresh engine built from the final state (seeded, so
// a failure is reproducible from its seed).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyObject } from '../policy-api/types.ts';
import type { PolicyEngine } from './engine.ts';
import { ccnp, cnp, engineWith, knp, rng, snapshot } from './testutil.ts';
import type { EndpointSpec } from './types.ts';

const POLICIES: PolicyObject[] = [
  cnp('a', 'p0', {
    endpointSelector: {},
    ingress: [{ fromEndpoints: [{}] }, { fromCIDR: ['203.0.113.0/24'] }],
  }),
  cnp('a', 'p1', {
    endpointSelector: { matchLabels: { app: 'x' } },
    egress: [
      { toEndpoints: [{ matchLabels: { app: 'y' } }], toPorts: [{ ports: [{ port: 'http' }] }] },
      {
        toEndpoints: [{}],
        toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }],
      },
      {
        toFQDNs: [{ matchPattern: '*.example.com' }],
        toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
      },
    ],
    ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'z' } }] }],
  }),
  cnp('b', 'p2', {
    endpointSelector: {},
    enableDefaultDeny: { ingress: false },
    ingress: [{ toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] }],
    egressDeny: [{ toCIDRSet: [{ cidr: '198.51.100.0/24', except: ['198.51.100.128/25'] }] }],
  }),
  ccnp('c0', {
    endpointSelector: { matchLabels: { tier: 'be' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { tier: 'fe' } }],
        toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
      },
    ],
    egress: [{ toEntities: ['cluster'] }, { toEndpoints: [{}], toPorts: [{ ports: [{ port: 'http' }] }] }],
  }),
  cnp('a', 'p3', {
    endpointSelector: { matchLabels: { app: 'y' } },
    egress: [{ toServices: [{ k8sService: { serviceName: 'svc', namespace: 'b' } }] }],
    ingress: [
      { fromNodes: [{ matchLabels: { zone: 'z1' } }] },
      { fromEntities: ['remote-node'], toPorts: [{ ports: [{ port: '22' }] }] },
    ],
  }),
  knp('b', 'k0', {
    podSelector: { matchLabels: { app: 'y' } },
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'red' } } }], ports: [{ port: 'http' }] }],
    egress: [{ to: [{ ipBlock: { cidr: '198.51.100.0/24' } }] }],
  }),
];

const NAMESPACES = ['a', 'b'];
const APPS = ['x', 'y', 'z'];
const TIERS = ['fe', 'be'];

interface World {
  eps: Map<string, EndpointSpec>;
  ns: Map<string, Record<string, string>>;
  policies: Set<number>;
  dns: Array<[string, string[], number, number]>;
  svc?: [Record<string, string> | undefined, string[]];
  nodes: Map<string, [Record<string, string>, string]>;
}

function randomPod(r: () => number, i: number): EndpointSpec {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const labels: Record<string, string> = { app: pick(APPS) };
  if (r() < 0.5) labels.tier = pick(TIERS);
  const ep: EndpointSpec = { name: `p${i}`, namespace: pick(NAMESPACES), labels, ip: `10.0.0.${i + 1}` };
  if (r() < 0.6) ep.ports = [{ name: 'http', port: pick([8080, 9090]), protocol: 'TCP' }];
  return ep;
}

function step(e: PolicyEngine, w: World, r: () => number, t: number): void {
  const x = r();
  const slot = Math.floor(r() * 8);
  const key = `p${slot}`;
  if (x < 0.35) {
    const ep = randomPod(r, slot);
    // An endpoint keeps its namespace across updates (a new namespace is a new pod).
    const old = w.eps.get(key);
    if (old !== undefined) ep.namespace = old.namespace!;
    w.eps.set(key, ep);
    e.upsertEndpoint(ep);
  } else if (x < 0.45) {
    const old = w.eps.get(key);
    if (old !== undefined) {
      w.eps.delete(key);
      e.removeEndpoint(old.namespace, old.name);
    }
  } else if (x < 0.7) {
    const i = Math.floor(r() * POLICIES.length);
    const p = POLICIES[i]!;
    if (w.policies.has(i)) {
      w.policies.delete(i);
      e.removePolicy(p.kind, p.metadata.namespace, p.metadata.name);
    } else {
      w.policies.add(i);
      e.upsertPolicy(p);
    }
  } else if (x < 0.8) {
    const n = NAMESPACES[Math.floor(r() * NAMESPACES.length)]!;
    const labels = r() < 0.5 ? { team: 'red' } : {};
    w.ns.set(n, labels);
    e.upsertNamespace(n, labels);
  } else if (x < 0.9) {
    const name = r() < 0.7 ? 'www.example.com' : 'other.org';
    const ips = [r() < 0.8 ? '93.184.216.34' : '10.0.0.3'];
    w.dns.push([name, ips, 30, t]);
    e.learnDNS(name, ips, 30, t);
  } else if (x < 0.93) {
    const ip = ['198.51.100.7', '198.51.100.200', '203.0.113.9'][slot % 3]!;
    const ep: EndpointSpec = { name: `e${slot % 3}`, labels: {}, ip, external: true };
    w.eps.set(ep.name, ep);
    e.upsertEndpoint(ep);
  } else if (x < 0.96) {
    const sel = r() < 0.5 ? { app: 'x' } : undefined;
    const addrs = r() < 0.5 ? ['198.51.100.7'] : ['203.0.113.9'];
    w.svc = [sel, addrs];
    e.upsertService('b', 'svc', {}, sel, addrs);
  } else if (x < 0.98) {
    const labels = r() < 0.5 ? { zone: 'z1' } : {};
    const name = `node-${2 + (slot % 2)}`;
    w.nodes.set(name, [labels, `172.16.0.${slot % 2}`]);
    e.upsertNode(name, labels, `172.16.0.${slot % 2}`);
  } else {
    e.expireDNS(t);
  }
}

const SEEDS = Number(process.env.SEAWALL_FUZZ_SEEDS ?? 60);

test('random change sequences match a fresh engine', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = rng(seed);
    const w: World = { eps: new Map(), ns: new Map(), policies: new Set(), dns: [], nodes: new Map() };
    const inc = engineWith([], []);
    let t = 0;
    for (let i = 0; i < 40; i++) {
      t += Math.floor(r() * 8000);
      step(inc, w, r, t);
    }
    inc.expireDNS(t);
    const fresh = engineWith([], [], {}, Object.fromEntries(w.ns));
    for (const [name, [labels, ip]] of w.nodes) fresh.upsertNode(name, labels, ip);
    if (w.svc !== undefined) fresh.upsertService('b', 'svc', {}, w.svc[0], w.svc[1]);
    for (const ep of w.eps.values()) fresh.upsertEndpoint(ep);
    for (const i of [...w.policies].sort()) fresh.upsertPolicy(POLICIES[i]!);
    for (const [name, ips, ttl, at] of w.dns) fresh.learnDNS(name, ips, ttl, at);
    fresh.expireDNS(t);
    const a = snapshot(inc).split('\n');
    const b = snapshot(fresh).split('\n');
    const onlyInc = a.filter((l) => !b.includes(l));
    const onlyFresh = b.filter((l) => !a.includes(l));
    assert.deepEqual({ onlyInc, onlyFresh }, { onlyInc: [], onlyFresh: [] }, `seed ${seed}`);
  }
});
