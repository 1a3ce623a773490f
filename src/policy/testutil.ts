// Test helpers: build engines from compact descriptions (policies as plain values get a dummy pos).

import type { PolicyObject } from '../policy-api/types.ts';
import { PolicyEngine } from './engine.ts';
import type { EndpointSpec, EngineConfig, FlowRequest, L7Request, PeerRef } from './types.ts';

const PLAIN = new Set(['matchLabels', 'labels', 'annotations', 'metadata', 'secret', 'l7']);

export function withPos(v: unknown, file = 'test.yaml', key = ''): unknown {
  if (Array.isArray(v)) return v.map((x) => withPos(x, file, key));
  if (v === null || typeof v !== 'object' || PLAIN.has(key)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = withPos(x, file, k);
  out.pos = { file, line: 1, column: 1 };
  return out;
}

export function cnp(namespace: string, name: string, spec: unknown): PolicyObject {
  return withPos({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumNetworkPolicy',
    metadata: { name, namespace },
    spec,
  }) as PolicyObject;
}

export function ccnp(name: string, spec: unknown): PolicyObject {
  return withPos({
    apiVersion: 'cilium.io/v2',
    kind: 'CiliumClusterwideNetworkPolicy',
    metadata: { name },
    spec,
  }) as PolicyObject;
}

export function knp(namespace: string, name: string, spec: unknown): PolicyObject {
  return withPos({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace },
    spec,
  }) as PolicyObject;
}

/** `ns/name` pod with labels; `ext:name` external with ip. */
export function pod(
  ref: string,
  labels: Record<string, string>,
  ip: string,
  extra: Partial<EndpointSpec> = {},
): EndpointSpec {
  const [namespace, name] = ref.split('/') as [string, string];
  return { name, namespace, labels, ip, ...extra };
}

export function ext(name: string, ip: string): EndpointSpec {
  return { name, labels: {}, ip, external: true };
}

export function engineWith(
  endpoints: EndpointSpec[],
  policies: PolicyObject[],
  config: Partial<EngineConfig> = {},
  namespaces: Record<string, Record<string, string>> = {},
): PolicyEngine {
  const e = new PolicyEngine(config);
  for (const [n, l] of Object.entries(namespaces)) e.upsertNamespace(n, l);
  for (const ep of endpoints) e.upsertEndpoint(ep);
  for (const p of policies) {
    const issues = e.upsertPolicy(p);
    if (issues.length > 0) throw new Error(issues.map((i) => i.message).join('\n'));
  }
  return e;
}

const ENT = new Set(['host', 'remote-node', 'kube-apiserver', 'world']);

export function peer(ref: string, eps: EndpointSpec[]): PeerRef {
  if (ENT.has(ref)) return { kind: 'entity', entity: ref as 'host' };
  if (/^\d+\.\d+\.\d+\.\d+$/.test(ref)) return { kind: 'ip', ip: ref };
  const e = eps.find((x) => (x.namespace === undefined ? x.name : `${x.namespace}/${x.name}`) === ref);
  if (e === undefined) throw new Error(`unknown ${ref}`);
  return e.external === true
    ? { kind: 'ip', ip: e.ip }
    : { kind: 'endpoint', name: e.name, namespace: e.namespace! };
}

/** `8080/TCP`, `53/UDP`, `ICMP` (echo), `ICMP:0`. */
export function flow(
  from: string,
  to: string,
  what: string,
  eps: EndpointSpec[],
  l7?: L7Request,
): FlowRequest {
  const f: FlowRequest = { src: peer(from, eps), dst: peer(to, eps), protocol: 'TCP' };
  if (what.startsWith('ICMP')) {
    f.protocol = what.startsWith('ICMPv6') ? 'ICMPv6' : 'ICMP';
    const t = what.split(':')[1];
    f.icmp = {
      type: t === undefined ? (f.protocol === 'ICMP' ? 8 : 128) : Number(t),
      family: f.protocol === 'ICMP' ? 'IPv4' : 'IPv6',
    };
  } else {
    const [port, proto] = what.split('/') as [string, string | undefined];
    f.dport = Number(port);
    f.protocol = (proto ?? 'TCP') as 'TCP';
  }
  if (l7 !== undefined) f.l7 = l7;
  return f;
}

export function get(path: string): L7Request {
  return { kind: 'http', method: 'GET', path };
}

/** Labels without the covering cidr: prefixes and Cilium's metadata, to keep failures readable. */
function shortName(labels: string[]): string {
  const cidrs = labels.filter((l) => l.startsWith('cidr:'));
  const own = cidrs.sort((x, y) => Number(y.split('/')[1]) - Number(x.split('/')[1]))[0];
  return labels
    .filter((l) => (!l.startsWith('cidr:') || l === own) && !l.startsWith('k8s:io.cilium.k8s.'))
    .join(',');
}

/** Canonical form of all endpoint policies, for comparing engines (one line per entry). */
export function snapshot(e: PolicyEngine): string {
  const out: string[] = [];
  for (const key of e.endpointKeys().sort()) {
    const [ns, name] = key.split('/') as [string, string];
    const p = e.endpointPolicy(ns, name);
    const idName = (id: number) => (id === 0 ? '*' : shortName(e.labelsOf(id)));
    out.push(
      `${key} in=${JSON.stringify(p.ingress)} eg=${JSON.stringify(p.egress)}`,
      ...p.entries
        .map(
          (x) =>
            `  ${x.key.direction} ${idName(x.key.identity)} ${x.key.proto} ${x.key.portLo}-${x.key.portHi} ${x.verdict} ${x.derivedFrom.map((r) => `${r.name}#${r.section}${r.entryIndex}`).join('+')}`,
        )
        .sort(),
    );
  }
  return out.join('\n');
}

/** A small seeded PRNG (mulberry32), so randomized tests and benches replay exactly. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
