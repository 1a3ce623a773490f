// The service map from flows, as Hubble UI draws it: a card per workload (pods grouped by their
// workload, else their app label, else the pod), plus world, host, remote-node, kube-apiserver and
// kube-dns; an arrow per (source card, destination card, port/protocol) with the verdicts seen,
// and the L7 endpoints (HTTP method and path, DNS names, Kafka topics) on the destination card.
// Replies are not arrows: the request's direction is the one that policy decides.

import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import { labelValue, pathOf, portText, reservedOf, type VerdictClass, verdictClass } from './fields.ts';

export type CardKind =
  | 'workload'
  | 'world'
  | 'host'
  | 'remote-node'
  | 'kube-apiserver'
  | 'kube-dns'
  | 'other';

export interface Card {
  id: string;
  kind: CardKind;
  name: string;
  namespace?: string;
  /** L7 endpoints seen at this card, sorted: `GET /api/users`, `dns api.github.com`, `kafka orders`. */
  l7: string[];
  /**
   * The addresses seen at an entity card (world, host, remote-node, kube-apiserver, other),
   * sorted, at most MAX_ADDRESSES; workload cards have none (their pods are the names).
   */
  addresses: string[];
  /** Flows that touch the card (either side). */
  flows: number;
}

export type ArrowStatus = VerdictClass | 'mixed';

export interface Arrow {
  id: string;
  from: string;
  to: string;
  /** `8080/TCP`, `ICMPv4 8`. */
  port: string;
  counts: Record<VerdictClass, number>;
  status: ArrowStatus;
}

export interface ServiceMap {
  cards: Card[];
  arrows: Arrow[];
}

export interface MapOptions {
  /** Only flows with a side in this namespace (undefined: every flow). */
  namespace?: string;
  hideHost?: boolean;
  hideKubeDNS?: boolean;
  hideRemoteNode?: boolean;
  /** Also draw replies (off: Hubble UI draws requests only). */
  replies?: boolean;
}

const KUBE_DNS_APPS = new Set(['kube-dns', 'coredns']);

/** An entity card keeps this many addresses (the world card of a busy cluster sees thousands). */
export const MAX_ADDRESSES = 64;

/** Numeric order of IPv4 addresses, then text (IPv6). */
function byAddress(a: string, b: string): number {
  const n = (x: string) => x.split('.').reduce((v, o) => v * 256 + Number(o), 0);
  const v4 = (x: string) => /^\d+\.\d+\.\d+\.\d+$/.test(x);
  if (v4(a) && v4(b)) return n(a) - n(b);
  return a.localeCompare(b);
}

/** Which card a flow endpoint belongs to. */
export function cardOf(ep: FlowEndpoint | undefined): {
  id: string;
  kind: CardKind;
  name: string;
  namespace?: string;
} {
  const reserved = reservedOf(ep);
  for (const r of ['kube-apiserver', 'remote-node', 'host'] as const)
    if (reserved.includes(r)) return { id: r, kind: r, name: r };
  const cidr = (ep?.labels ?? []).some((l) => l.startsWith('cidr:') || l.startsWith('fqdn:'));
  if (reserved.some((r) => r.startsWith('world')) || cidr)
    return { id: 'world', kind: 'world', name: 'world' };
  if (ep?.pod_name === undefined && ep?.namespace === undefined) {
    const name = reserved[0] ?? (ep?.identity !== undefined ? `identity ${ep.identity}` : 'unknown');
    return { id: `other:${name}`, kind: 'other', name };
  }
  const ns = ep.namespace ?? '';
  const app = labelValue(ep, 'k8s-app') ?? labelValue(ep, 'app');
  const workload =
    ep.workloads?.[0]?.name ??
    labelValue(ep, 'app.kubernetes.io/name') ??
    labelValue(ep, 'app') ??
    labelValue(ep, 'k8s-app') ??
    ep.pod_name ??
    'unknown';
  const kind: CardKind = app !== undefined && KUBE_DNS_APPS.has(app) ? 'kube-dns' : 'workload';
  return { id: `${ns}/${workload}`, kind, name: workload, namespace: ns };
}

function l7Endpoint(f: Flow): string | undefined {
  const l7 = f.l7;
  if (l7 === undefined) return undefined;
  if (l7.http) {
    const h = l7.http as { method?: string; url?: string };
    if (h.method === undefined) return undefined;
    return `${h.method} ${pathOf(h.url ?? '/').split('?')[0]}`;
  }
  if (l7.dns) {
    const q = (l7.dns as { query?: string }).query;
    return q !== undefined ? `dns ${q.replace(/\.$/, '')}` : undefined;
  }
  if (l7.kafka) {
    const t = (l7.kafka as { topic?: string }).topic;
    return t !== undefined ? `kafka ${t}` : undefined;
  }
  return undefined;
}

function hidden(kind: CardKind, o: MapOptions): boolean {
  return (
    (o.hideHost === true && kind === 'host') ||
    (o.hideKubeDNS === true && kind === 'kube-dns') ||
    (o.hideRemoteNode === true && kind === 'remote-node')
  );
}

/** Namespaces the flows show (for the picker), sorted. */
export function namespacesOf(flows: Iterable<Flow>): string[] {
  const s = new Set<string>();
  for (const f of flows) {
    if (f.source?.namespace) s.add(f.source.namespace);
    if (f.destination?.namespace) s.add(f.destination.namespace);
  }
  return [...s].sort();
}

/**
 * One connection leaves two records on a node (egress at the source, ingress at the destination),
 * so the arrow's colour is decided per observation point: a point that saw both forwarded and
 * dropped makes the arrow mixed; otherwise a point that only dropped makes it dropped (the
 * connection died there, whatever the other side forwarded), then audit, then forwarded.
 */
function statusOf(byDir: Map<string, Set<VerdictClass>>): ArrowStatus {
  const sets = [...byDir.values()];
  if (sets.some((s) => s.size > 1 && s.has('dropped'))) return 'mixed';
  for (const k of ['dropped', 'audit', 'forwarded', 'other'] as const)
    if (sets.some((s) => s.has(k))) {
      if (sets.some((s) => s.size > 1)) return 'mixed';
      return k;
    }
  return 'other';
}

/** The namespace the picker opens on: the one most flows touch (kube-system only if alone). */
export function busiestNamespace(flows: Iterable<Flow>): string | undefined {
  const n = new Map<string, number>();
  for (const f of flows)
    for (const ns of new Set([f.source?.namespace, f.destination?.namespace]))
      if (ns) n.set(ns, (n.get(ns) ?? 0) + (ns === 'kube-system' ? 0.001 : 1));
  let best: string | undefined;
  for (const [ns, c] of n)
    if (best === undefined || c > n.get(best)! || (c === n.get(best)! && ns < best)) best = ns;
  return best;
}

export function buildServiceMap(flows: Iterable<Flow>, o: MapOptions = {}): ServiceMap {
  const cards = new Map<string, Card & { l7set: Set<string>; addrs: Set<string> }>();
  const arrows = new Map<string, Arrow>();
  const dirs = new Map<string, Map<string, Set<VerdictClass>>>();
  // One card decision per endpoint seen (a stream repeats the same pods thousands of times).
  const memo = new Map<string, ReturnType<typeof cardOf>>();
  const cardOfMemo = (ep: FlowEndpoint | undefined) => {
    const k =
      ep === undefined
        ? ''
        : ep.pod_name !== undefined
          ? `${ep.namespace}/${ep.pod_name}/${ep.identity}/${ep.workloads?.[0]?.name ?? ''}`
          : `${ep.identity}/${(ep.labels ?? []).join(',')}`;
    let c = memo.get(k);
    if (c === undefined) {
      c = cardOf(ep);
      memo.set(k, c);
    }
    return c;
  };
  const card = (ep: FlowEndpoint | undefined) => {
    const c = cardOfMemo(ep);
    let got = cards.get(c.id);
    if (got === undefined) {
      got = { ...c, l7: [], addresses: [], flows: 0, l7set: new Set(), addrs: new Set() };
      cards.set(c.id, got);
    }
    return got;
  };
  // 0.0.0.0: no address known (a record without one).
  const address = (c: Card & { addrs: Set<string> }, ip: string | undefined) => {
    if (c.kind === 'workload' || c.kind === 'kube-dns' || ip === undefined || ip === '' || ip === '0.0.0.0')
      return;
    if (c.addrs.size < MAX_ADDRESSES) c.addrs.add(ip);
  };
  for (const f of flows) {
    if (f.is_reply === true && o.replies !== true) continue;
    if (
      o.namespace !== undefined &&
      f.source?.namespace !== o.namespace &&
      f.destination?.namespace !== o.namespace
    )
      continue;
    const s = cardOfMemo(f.source);
    const d = cardOfMemo(f.destination);
    if (hidden(s.kind, o) || hidden(d.kind, o)) continue;
    const sc = card(f.source);
    const dc = card(f.destination);
    sc.flows++;
    if (dc !== sc) dc.flows++;
    address(sc, f.IP?.source);
    address(dc, f.IP?.destination);
    const e = l7Endpoint(f);
    if (e !== undefined) dc.l7set.add(e);
    // DNS names the destination was known by (toFQDNs peers) belong on the world card.
    if (dc.kind === 'world') for (const n of f.destination_names ?? []) dc.l7set.add(n.replace(/\.$/, ''));
    const port = portText(f);
    const id = `${sc.id}→${dc.id}:${port}`;
    let a = arrows.get(id);
    if (a === undefined) {
      a = {
        id,
        from: sc.id,
        to: dc.id,
        port,
        counts: { forwarded: 0, dropped: 0, audit: 0, other: 0 },
        status: 'other',
      };
      arrows.set(id, a);
    }
    const vc = verdictClass(f.verdict);
    a.counts[vc]++;
    const byDir = dirs.get(id) ?? new Map<string, Set<VerdictClass>>();
    dirs.set(id, byDir);
    const dir = f.traffic_direction ?? 'TRAFFIC_DIRECTION_UNKNOWN';
    byDir.set(dir, (byDir.get(dir) ?? new Set()).add(vc));
  }
  for (const a of arrows.values()) a.status = statusOf(dirs.get(a.id)!);
  const outCards: Card[] = [...cards.values()]
    .map(({ l7set, addrs, ...c }) => ({ ...c, l7: [...l7set].sort(), addresses: [...addrs].sort(byAddress) }))
    .sort((a, b) => a.id.localeCompare(b.id));
  const outArrows = [...arrows.values()].sort((a, b) => a.id.localeCompare(b.id));
  return { cards: outCards, arrows: outArrows };
}
