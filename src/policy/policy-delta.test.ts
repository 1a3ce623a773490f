// The engine at scale: identical selectors and rules merged per (direction, port, protocol, L7)
// expand once; a policy upsert or removal applies only its own rules (checked against a fresh
// engine on random sequences, and against the change log the datapath drains).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyObject } from '../policy-api/types.ts';
import { EndpointState } from './endpoint.ts';
import { MapState } from './mapstate.ts';
import { ccnp, cnp, engineWith, pod, rng, snapshot } from './testutil.ts';
import type { EndpointSpec, MapStateEntry } from './types.ts';

/** Counts MapState insertions and full endpoint resolutions while fn runs. */
function counting(fn: () => void): { adds: number; resolves: number } {
  const add = MapState.prototype.add;
  const resolve = EndpointState.prototype.resolve;
  const n = { adds: 0, resolves: 0 };
  MapState.prototype.add = function (this: MapState<unknown>, ...args) {
    n.adds++;
    return add.apply(this, args);
  };
  EndpointState.prototype.resolve = function (this: EndpointState, ...args) {
    n.resolves++;
    return resolve.apply(this, args);
  };
  try {
    fn();
  } finally {
    MapState.prototype.add = add;
    EndpointState.prototype.resolve = resolve;
  }
  return n;
}

const PEERS: EndpointSpec[] = Array.from({ length: 40 }, (_, i) =>
  pod(`a/peer${i}`, { app: `p${i % 4}`, tier: i % 2 === 0 ? 'fe' : 'be' }, `10.0.1.${i + 1}`),
);
const TARGET = pod('a/target', { app: 'target' }, '10.0.0.1');

function l3(name: string, peer: Record<string, unknown>, port?: string): PolicyObject {
  const entry: Record<string, unknown> = { fromEndpoints: [peer] };
  if (port !== undefined) entry.toPorts = [{ ports: [{ port, protocol: 'TCP' }] }];
  return cnp('a', name, { endpointSelector: { matchLabels: { app: 'target' } }, ingress: [entry] });
}

test('identical or overlapping rules cost no more MapState work than their distinct selectors', () => {
  const rows: Array<{ name: string; policies: (k: number) => PolicyObject[]; distinct: PolicyObject[] }> = [
    {
      name: 'identical L3 rules selecting every peer',
      policies: (k) => Array.from({ length: k }, (_, i) => l3(`all${i}`, {})),
      distinct: [l3('all0', {})],
    },
    {
      name: 'identical L4 rules on one port',
      policies: (k) =>
        Array.from({ length: k }, (_, i) => l3(`fe${i}`, { matchLabels: { tier: 'fe' } }, '80')),
      distinct: [l3('fe0', { matchLabels: { tier: 'fe' } }, '80')],
    },
    {
      name: 'two selectors alternating over many rules',
      policies: (k) =>
        Array.from({ length: k }, (_, i) => l3(`alt${i}`, { matchLabels: { app: `p${i % 2}` } }, '443')),
      distinct: [
        l3('alt0', { matchLabels: { app: 'p0' } }, '443'),
        l3('alt1', { matchLabels: { app: 'p1' } }, '443'),
      ],
    },
  ];
  for (const row of rows) {
    const cost = (ps: PolicyObject[]) => {
      const e = engineWith(PEERS, ps);
      return counting(() => e.upsertEndpoint(TARGET)).adds;
    };
    assert.equal(cost(row.policies(50)), cost(row.distinct), row.name);
    // And the merged rules all still explain the entries they share.
    const e = engineWith([...PEERS, TARGET], row.policies(5));
    const entries = e.endpointPolicy('a', 'target').entries.filter((x) => x.verdict === 'allow');
    const refs = new Set(
      entries.flatMap((x) => x.derivedFrom.map((r) => r.name)).filter((n) => n !== 'allow-localhost'),
    );
    assert.equal(refs.size, 5, `${row.name}: derivedFrom names every rule`);
  }
});

test('a policy upsert touches only its own entries, without re-resolving the endpoint', () => {
  const base = Array.from({ length: 100 }, (_, i) =>
    l3(`base${i}`, { matchLabels: { app: `p${i % 4}` } }, '80'),
  );
  const rows: Array<{ name: string; act: (e: ReturnType<typeof engineWith>) => void; adds: number }> = [
    {
      name: 'a new rule on a new port: one entry per selected peer identity',
      act: (e) => e.upsertPolicy(l3('new', { matchLabels: { app: 'p1' } }, '8080')),
      adds: 1,
    },
    {
      name: 'a new rule identical to existing ones: nothing to expand',
      act: (e) => e.upsertPolicy(l3('dup', { matchLabels: { app: 'p1' } }, '80')),
      adds: 0,
    },
    {
      name: 'a rule removed that others share: nothing to remove',
      act: (e) => e.removePolicy('CiliumNetworkPolicy', 'a', 'base7'),
      adds: 0,
    },
  ];
  for (const row of rows) {
    const e = engineWith([...PEERS, TARGET], base);
    // p1 peers: 10 pods of one identity (app p1, tier be): one entry for a new port.
    const n = counting(() => row.act(e));
    assert.equal(n.resolves, 0, `${row.name}: no full resolution`);
    assert.equal(n.adds, row.adds, `${row.name}: MapState insertions`);
  }
});

test('enforcement follows from the change alone: still enforced stays local, none left resolves in full', () => {
  const egressOnly = cnp('a', 'eg', {
    endpointSelector: { matchLabels: { app: 'target' } },
    egress: [{ toEndpoints: [{}] }],
  });
  const rows: Array<{
    name: string;
    start: PolicyObject[];
    act: (e: ReturnType<typeof engineWith>) => void;
    resolves: number;
  }> = [
    {
      name: 'one of two ingress policies removed: ingress stays enforced, no rule scanned in full',
      start: [
        l3('one', { matchLabels: { app: 'p1' } }, '80'),
        l3('two', { matchLabels: { app: 'p2' } }, '81'),
      ],
      act: (e) => e.removePolicy('CiliumNetworkPolicy', 'a', 'one'),
      resolves: 0,
    },
    {
      name: 'the last ingress policy removed: ingress enforcement ends (a full resolution)',
      start: [l3('one', { matchLabels: { app: 'p1' } }, '80'), egressOnly],
      act: (e) => e.removePolicy('CiliumNetworkPolicy', 'a', 'one'),
      resolves: 1,
    },
    {
      name: 'a first ingress policy next to an egress one: ingress enforcement begins (full)',
      start: [egressOnly],
      act: (e) => e.upsertPolicy(l3('one', { matchLabels: { app: 'p1' } }, '80')),
      resolves: 1,
    },
    {
      name: 'an ingress policy edited in place: still enforced, local',
      start: [l3('one', { matchLabels: { app: 'p1' } }, '80')],
      act: (e) => e.upsertPolicy(l3('one', { matchLabels: { app: 'p3' } }, '90')),
      resolves: 0,
    },
  ];
  for (const row of rows) {
    const e = engineWith([...PEERS, TARGET], row.start);
    const n = counting(() => row.act(e));
    assert.equal(n.resolves, row.resolves, `${row.name}: full resolutions`);
    // the same state as an engine built from the end result
    const fresh = engineWith([...PEERS, TARGET], []);
    for (const p of (e as unknown as { policies: Map<string, { obj: PolicyObject }> }).policies.values())
      fresh.upsertPolicy(p.obj);
    assert.equal(snapshot(e), snapshot(fresh), `${row.name}: as a fresh engine`);
  }
});

// ---------------------------------------------------------------- random policy edits vs fresh

const NS = ['a', 'b'];
const APPS = ['x', 'y', 'z'];

/** Policy i (an edit of the same file: same name, other content, maybe another namespace). */
function randomPolicy(r: () => number, i: number): PolicyObject {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const peer = (): Record<string, unknown> =>
    r() < 0.3
      ? {}
      : r() < 0.5
        ? { matchLabels: { tier: pick(['fe', 'be']) } }
        : { matchLabels: { app: pick(APPS) } };
  const ports = () =>
    r() < 0.4 ? undefined : [{ ports: [{ port: pick(['80', '443', 'http']), protocol: 'TCP' }] }];
  const section = (dir: 'from' | 'to'): Record<string, unknown> => {
    const x = r();
    const s: Record<string, unknown> = {};
    if (x < 0.6) s[`${dir}Endpoints`] = [peer()];
    else if (x < 0.75) s[`${dir}CIDR`] = [pick(['203.0.113.0/24', '198.51.100.0/28'])];
    else if (x < 0.85) s[`${dir}Entities`] = [pick(['world', 'cluster', 'host'])];
    const tp = ports();
    if (tp !== undefined) s.toPorts = tp;
    if (r() < 0.15 && dir === 'from')
      s.toPorts = [
        { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: pick(['GET', 'POST']) }] } },
      ];
    return s;
  };
  const spec: Record<string, unknown> = {
    endpointSelector: r() < 0.2 ? {} : { matchLabels: { app: pick(APPS) } },
  };
  if (r() < 0.8) spec.ingress = [section('from'), ...(r() < 0.3 ? [section('from')] : [])];
  if (r() < 0.5) spec.egress = [section('to')];
  if (r() < 0.15) spec.ingressDeny = [{ fromEndpoints: [peer()] }];
  if (r() < 0.1) spec.enableDefaultDeny = { ingress: false };
  if (r() < 0.05)
    (spec.ingress as Array<Record<string, unknown>> | undefined)?.push({ fromRequires: [peer()] });
  if (spec.ingress === undefined && spec.egress === undefined) spec.ingress = [section('from')];
  const name = `pol${i}`;
  return i % 5 === 4 ? ccnp(name, spec) : cnp(pick(NS), name, spec);
}

function randomPods(r: () => number): EndpointSpec[] {
  return Array.from({ length: 10 }, (_, i) => {
    const labels: Record<string, string> = { app: APPS[i % 3]! };
    if (r() < 0.6) labels.tier = r() < 0.5 ? 'fe' : 'be';
    const ep = pod(`${NS[i % 2]}/q${i}`, labels, `10.0.2.${i + 1}`);
    if (r() < 0.5) ep.ports = [{ name: 'http', port: 8080, protocol: 'TCP' }];
    return ep;
  });
}

function entryLine(x: MapStateEntry): string {
  const k = x.key;
  return `${k.direction} ${k.identity} ${k.proto} ${k.portLo}-${k.portHi} ${x.verdict}`;
}

const SEEDS = Number(process.env.SEAWALL_FUZZ_SEEDS ?? 60);

test('random policy upserts, edits and removals match a fresh engine, and the drained changes follow', () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = rng(seed * 7919);
    const pods = randomPods(r);
    const inc = engineWith(pods, []);
    const live = new Map<string, PolicyObject>();
    // The datapath's view: a full dump on the first drain, then deltas.
    const view = new Map<string, Set<string>>();
    const drainAll = () => {
      for (const key of inc.endpointKeys()) {
        const [ns, name] = key.split('/') as [string, string];
        const d = inc.drainEndpointChanges(ns, name);
        if (d.full) view.set(key, new Set(inc.endpointPolicy(ns, name).entries.map(entryLine)));
        const set = view.get(key)!;
        for (const x of d.removed) set.delete(entryLine(x));
        for (const x of d.added) set.add(entryLine(x));
      }
    };
    drainAll();
    for (let step = 0; step < 30; step++) {
      const i = Math.floor(r() * 12);
      const name = `pol${i}`;
      const old = live.get(name);
      if (old !== undefined && r() < 0.35) {
        inc.removePolicy(old.kind, old.metadata.namespace, name);
        live.delete(name);
      } else {
        const p = randomPolicy(r, i);
        if (old !== undefined && (old.kind !== p.kind || old.metadata.namespace !== p.metadata.namespace))
          inc.removePolicy(old.kind, old.metadata.namespace, name);
        inc.upsertPolicy(p);
        live.set(name, p);
      }
      if (r() < 0.5) drainAll();
    }
    drainAll();
    const fresh = engineWith(pods, [...live.values()]);
    const a = snapshot(inc).split('\n');
    const b = snapshot(fresh).split('\n');
    const onlyInc = a.filter((l) => !b.includes(l));
    const onlyFresh = b.filter((l) => !a.includes(l));
    assert.deepEqual({ onlyInc, onlyFresh }, { onlyInc: [], onlyFresh: [] }, `seed ${seed}`);
    for (const key of inc.endpointKeys()) {
      const [ns, name] = key.split('/') as [string, string];
      const want = new Set(inc.endpointPolicy(ns, name).entries.map(entryLine));
      assert.deepEqual(view.get(key), want, `seed ${seed}: drained view of ${key}`);
      assert.deepEqual(
        inc.endpointPolicy(ns, name).selectedBy,
        fresh.endpointPolicy(ns, name).selectedBy,
        `seed ${seed}: selectedBy of ${key}`,
      );
    }
  }
});
