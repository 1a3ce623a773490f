// Recorded Hubble flows as engine input: who the two sides are (pod, entity, outside address),
// the endpoints a cluster of those pods needs (names, labels, IPs from the records), and the
// FlowRequest `decide` takes. Shared by `seawall generate`, `seawall test --against` and bench/.

import { isIP } from 'node:net';
import type {
  EndpointSpec,
  EngineFactory,
  FlowRequest,
  L7Request,
  PeerRef,
  PolicyEngineAPI,
} from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import type { Flow, FlowEndpoint } from './types.ts';

/** Cilium-derived identity labels: the engine adds them itself, policies never aggregate on them. */
const DERIVED_KEYS = new Set([
  'io.kubernetes.pod.namespace',
  'io.cilium.k8s.policy.serviceaccount',
  'io.cilium.k8s.policy.cluster',
]);
const NS_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
const SA_KEY = 'io.cilium.k8s.policy.serviceaccount';

export type Side =
  | {
      kind: 'pod';
      namespace: string;
      name: string;
      ip?: string;
      labels: Record<string, string>;
      serviceAccount?: string;
    }
  | { kind: 'entity'; entity: 'host' | 'remote-node' | 'kube-apiserver' | 'world'; ip?: string }
  | { kind: 'external'; ip: string }
  /** Something policy cannot name (health, ingress, unmanaged, an unlabelled identity). */
  | { kind: 'unknown'; why: string };

const ENTITY_BY_ID: Record<number, 'host' | 'remote-node' | 'kube-apiserver' | 'world'> = {
  1: 'host',
  2: 'world',
  6: 'remote-node',
  7: 'kube-apiserver',
  9: 'world',
  10: 'world',
};

/** One side of a flow. `ip` is that side's address from the record's IP header. */
export function sideOf(ep: FlowEndpoint | undefined, ip: string | undefined): Side {
  const labels = ep?.labels ?? [];
  const reserved = labels.filter((l) => l.startsWith('reserved:')).map((l) => l.slice('reserved:'.length));
  // kube-apiserver on a node carries reserved:host too; the more specific entity wins.
  for (const e of ['kube-apiserver', 'remote-node', 'host'] as const) {
    if (reserved.includes(e))
      return ip !== undefined ? { kind: 'entity', entity: e, ip } : { kind: 'entity', entity: e };
  }
  const cidr = labels.some((l) => l.startsWith('cidr:') || l.startsWith('fqdn:'));
  if (reserved.some((r) => r.startsWith('world')) || cidr) {
    if (ip !== undefined && isIP(ip) !== 0) return { kind: 'external', ip };
    return { kind: 'entity', entity: 'world' };
  }
  if (reserved.length > 0)
    return { kind: 'unknown', why: `reserved:${reserved[0]} has no peer a policy can name here` };
  if (ep?.namespace && ep.pod_name) {
    const own: Record<string, string> = {};
    let sa: string | undefined;
    for (const l of labels) {
      if (!l.startsWith('k8s:')) continue;
      const kv = l.slice(4);
      const i = kv.indexOf('=');
      const k = i < 0 ? kv : kv.slice(0, i);
      const v = i < 0 ? '' : kv.slice(i + 1);
      if (k === SA_KEY) sa = v;
      if (DERIVED_KEYS.has(k) || k.startsWith(NS_LABELS_PREFIX)) continue;
      own[k] = v;
    }
    const s: Side = { kind: 'pod', namespace: ep.namespace, name: ep.pod_name, labels: own };
    if (ip !== undefined) s.ip = ip;
    if (sa !== undefined) s.serviceAccount = sa;
    return s;
  }
  const byId = ep?.identity !== undefined ? ENTITY_BY_ID[ep.identity] : undefined;
  if (byId === 'world')
    return ip !== undefined && isIP(ip) !== 0
      ? { kind: 'external', ip }
      : { kind: 'entity', entity: 'world' };
  if (byId !== undefined) return { kind: 'entity', entity: byId };
  if (ep === undefined && ip !== undefined && isIP(ip) !== 0) return { kind: 'external', ip };
  return {
    kind: 'unknown',
    why:
      ep?.identity !== undefined
        ? `identity ${ep.identity} without labels or pod name`
        : 'no endpoint information',
  };
}

/**
 * Whether a record stands for a new connection policy decided: requests and forward packets,
 * not replies or L7 responses. Dropped records are not traffic that happened.
 */
export function isRecordedRequest(f: Flow): boolean {
  if (f.is_reply === true) return false;
  if (f.l7?.type === 'RESPONSE') return false;
  return (
    f.verdict === 'FORWARDED' || f.verdict === 'AUDIT' || f.verdict === 'REDIRECTED' || f.verdict === 'TRACED'
  );
}

export type FlowL4 =
  | { protocol: 'TCP' | 'UDP' | 'SCTP'; port: number }
  | { protocol: 'ICMP' | 'ICMPv6'; type: number };

export function l4Of(f: Flow): FlowL4 | undefined {
  const l4 = f.l4;
  if (!l4) return undefined;
  if ('TCP' in l4)
    return l4.TCP.destination_port ? { protocol: 'TCP', port: l4.TCP.destination_port } : undefined;
  if ('UDP' in l4)
    return l4.UDP.destination_port ? { protocol: 'UDP', port: l4.UDP.destination_port } : undefined;
  if ('SCTP' in l4)
    return l4.SCTP.destination_port ? { protocol: 'SCTP', port: l4.SCTP.destination_port } : undefined;
  if ('ICMPv4' in l4) return { protocol: 'ICMP', type: l4.ICMPv4.type ?? 0 };
  if ('ICMPv6' in l4) return { protocol: 'ICMPv6', type: l4.ICMPv6.type ?? 0 };
  return undefined;
}

export interface HTTPRequestRecord {
  method: string;
  /** Path with its query string: what Cilium matches `path` against. */
  path: string;
  host?: string;
}

export function httpOf(f: Flow): HTTPRequestRecord | undefined {
  const h = f.l7?.http as { method?: unknown; url?: unknown } | undefined;
  if (!h || typeof h.method !== 'string' || typeof h.url !== 'string') return undefined;
  let u: URL;
  try {
    u = new URL(h.url, 'http://unknown');
  } catch {
    return undefined;
  }
  return { method: h.method, path: `${u.pathname}${u.search}`, host: u.host };
}

export function dnsQueryOf(f: Flow): string | undefined {
  const d = f.l7?.dns as { query?: unknown } | undefined;
  return typeof d?.query === 'string' ? d.query : undefined;
}

/** The names Hubble attached to the destination (from the DNS cache), without trailing dots. */
export function destinationNames(f: Flow): string[] {
  return (f.destination_names ?? []).map((n) => n.replace(/\.$/, '').toLowerCase()).filter((n) => n !== '');
}

/** Namespace labels as Cilium copies them into pod identities (io.cilium.k8s.namespace.labels.*). */
export function namespacesFromFlows(flows: readonly Flow[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const add = (ep: FlowEndpoint | undefined): void => {
    if (!ep?.namespace || !ep.pod_name) return;
    const labels = out.get(ep.namespace) ?? {};
    for (const l of ep.labels ?? []) {
      const p = `k8s:${NS_LABELS_PREFIX}`;
      if (!l.startsWith(p)) continue;
      const kv = l.slice(p.length);
      const i = kv.indexOf('=');
      const k = i < 0 ? kv : kv.slice(0, i);
      if (k !== 'kubernetes.io/metadata.name') labels[k] = i < 0 ? '' : kv.slice(i + 1);
    }
    out.set(ep.namespace, labels);
  };
  for (const f of flows) {
    add(f.source);
    add(f.destination);
  }
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The pods the flows show, once each (first record wins for labels and IP), sorted. */
export function endpointsFromFlows(flows: readonly Flow[]): EndpointSpec[] {
  const eps = new Map<string, EndpointSpec>();
  const add = (s: Side): void => {
    if (s.kind !== 'pod' || s.ip === undefined) return;
    const key = `${s.namespace}/${s.name}`;
    if (eps.has(key)) return;
    const ep: EndpointSpec = { name: s.name, namespace: s.namespace, labels: s.labels, ip: s.ip };
    if (s.serviceAccount !== undefined) ep.serviceAccount = s.serviceAccount;
    eps.set(key, ep);
  };
  for (const f of flows) {
    add(sideOf(f.source, f.IP?.source));
    add(sideOf(f.destination, f.IP?.destination));
  }
  return [...eps.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

export function peerOf(s: Side): PeerRef | undefined {
  switch (s.kind) {
    case 'pod':
      return { kind: 'endpoint', namespace: s.namespace, name: s.name };
    case 'entity':
      return { kind: 'entity', entity: s.entity };
    case 'external':
      return { kind: 'ip', ip: s.ip };
    default:
      return undefined;
  }
}

/** The request `decide` takes for a record, or why there is none. */
export function requestOf(f: Flow): FlowRequest | { skip: string } {
  const src = sideOf(f.source, f.IP?.source);
  const dst = sideOf(f.destination, f.IP?.destination);
  const sp = peerOf(src);
  const dp = peerOf(dst);
  if (!sp) return { skip: `source: ${(src as { why: string }).why}` };
  if (!dp) return { skip: `destination: ${(dst as { why: string }).why}` };
  const l4 = l4Of(f);
  if (!l4) return { skip: 'no destination port or ICMP type' };
  const req: FlowRequest = { src: sp, dst: dp, protocol: l4.protocol };
  if ('port' in l4) req.dport = l4.port;
  else req.icmp = { type: l4.type, family: l4.protocol === 'ICMP' ? 'IPv4' : 'IPv6' };
  const http = httpOf(f);
  const q = dnsQueryOf(f);
  let l7: L7Request | undefined;
  if (http) {
    l7 = { kind: 'http', method: http.method, path: http.path };
    if (http.host) l7.host = http.host;
  } else if (q !== undefined) l7 = { kind: 'dns', query: q, qtype: 'A' };
  if (l7) req.l7 = l7;
  return req;
}

/**
 * An engine holding the cluster the flows show (namespaces, pods at their recorded addresses)
 * plus `extra` endpoints (from manifests or a PolicyTest: they win over the flows' view of the
 * same pod), and the policies. Returns the engine and the policies' resolution errors.
 */
export function engineForFlows(
  flows: readonly Flow[],
  policies: readonly PolicyObject[],
  createEngine: EngineFactory,
  extra: {
    namespaces?: ReadonlyMap<string, Record<string, string>>;
    endpoints?: readonly EndpointSpec[];
    /** Called before the policies go in (Services, CIDR groups, nodes the peers refer to). */
    before?: (engine: PolicyEngineAPI) => Issue[];
  } = {},
): { engine: PolicyEngineAPI; issues: Issue[] } {
  const engine = createEngine({});
  const nss = namespacesFromFlows(flows);
  for (const [n, l] of extra.namespaces ?? []) nss.set(n, l);
  const eps = new Map<string, EndpointSpec>();
  for (const e of endpointsFromFlows(flows)) eps.set(`${e.namespace}/${e.name}`, e);
  for (const e of extra.endpoints ?? []) eps.set(`${e.namespace ?? ''}/${e.name}`, e);
  for (const e of eps.values())
    if (e.namespace !== undefined && !nss.has(e.namespace)) nss.set(e.namespace, {});
  for (const [n, l] of nss) engine.upsertNamespace(n, l);
  for (const e of eps.values()) engine.upsertEndpoint(e);
  const issues = (extra.before?.(engine) ?? []).filter((i) => i.severity === 'error');
  for (const p of policies) issues.push(...engine.upsertPolicy(p).filter((i) => i.severity === 'error'));
  return { engine, issues };
}

/**
 * Teaches the engine the names Hubble attached to a record's destination: the agent had them in
 * its DNS cache when the flow happened, which is what toFQDNs rules select by.
 */
export function learnNamesOf(engine: PolicyEngineAPI, f: Flow, nowMs: number): void {
  const ip = f.IP?.destination;
  if (ip === undefined || !f.destination_names?.length) return;
  for (const n of destinationNames(f)) engine.learnDNS(n, [ip], 3600, nowMs);
}
