// An endpoint's policy as the Network Policy Editor draws it: ingress peers on the left, the
// endpoint in the middle, egress peers on the right, each side grouped as in-namespace,
// in-cluster and outside. One card per rule entry and peer group, with the flows the engine says
// that entry allowed or denied for this endpoint in the window; an entry that matched nothing is
// marked so (what cilium#22338 asks for).

import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import type {
  EgressRule,
  EndpointSelector,
  Entity,
  IngressRule,
  K8sLabelSelector,
  NetworkPolicy,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  PolicyObject,
  PortRule,
  Rule,
} from '../../policy-api/types.ts';
import { cardOf } from './map.ts';
import { type RuleHit, ruleKey, type UIFlow } from './types.ts';

export type PeerGroup = 'in-namespace' | 'in-cluster' | 'outside';
export const PEER_GROUPS: readonly PeerGroup[] = ['in-namespace', 'in-cluster', 'outside'];

export interface PeerText {
  group: PeerGroup;
  text: string;
}

export interface RuleEntryView {
  key: string;
  kind: string;
  name: string;
  namespace?: string;
  ruleIndex: number;
  section: string;
  entryIndex: number;
  direction: 'INGRESS' | 'EGRESS';
  effect: 'allow' | 'deny';
  file: string;
  line: number;
  column: number;
  /** The peers of this entry, each with its group. */
  peers: PeerText[];
  ports: string[];
  l7: string[];
}

export interface RuleCardView extends RuleEntryView {
  group: PeerGroup;
  /** Peers of this entry in this card's group. */
  groupPeers: string[];
  /** Flows (seq) the entry decided for this endpoint whose peer is in this group. */
  flows: number[];
  /** The entry decided no flow of the window, in any group. */
  matchedNothing: boolean;
}

export interface SidePolicy {
  enforced: boolean;
  defaultDeny: boolean;
  groups: Record<PeerGroup, RuleCardView[]>;
  /** Flows of this direction that no entry of this endpoint decided (default deny or allow). */
  unmatched: number[];
}

export interface PolicyView {
  endpoint: string;
  namespace: string;
  name: string;
  identity?: number;
  labels: string[];
  ingress: SidePolicy;
  egress: SidePolicy;
}

// ------------------------------------------------------------------ peers of a rule entry

const NS_KEYS = [
  'k8s:io.kubernetes.pod.namespace',
  'io.kubernetes.pod.namespace',
  'any:io.kubernetes.pod.namespace',
];

function selectorText(s: EndpointSelector | K8sLabelSelector): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(s.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of s.matchExpressions ?? [])
    parts.push(
      e.values?.length ? `${e.key} ${e.operator} (${e.values.join(',')})` : `${e.key} ${e.operator}`,
    );
  return parts.join(', ');
}

/** A CNP/CCNP peer selector: namespace-scoped (CNP) unless it names a namespace. */
function selectorPeer(s: EndpointSelector, policyNS: string | undefined): PeerText {
  const text = selectorText(s);
  if (policyNS === undefined) return { group: 'in-cluster', text: text || 'all endpoints in the cluster' };
  const nsLabel = NS_KEYS.map((k) => s.matchLabels?.[k]).find((v) => v !== undefined);
  const nsExpr = (s.matchExpressions ?? []).some((e) => NS_KEYS.includes(e.key));
  if (nsExpr || (nsLabel !== undefined && nsLabel !== policyNS)) return { group: 'in-cluster', text };
  return { group: 'in-namespace', text: text || `all pods in ${policyNS}` };
}

function entityGroups(e: Entity): PeerGroup[] {
  switch (e) {
    case 'world':
      return ['outside'];
    case 'all':
      return ['in-namespace', 'in-cluster', 'outside'];
    case 'none':
      return [];
    default:
      return ['in-cluster'];
  }
}

const ANY: PeerText[] = [
  { group: 'in-namespace', text: 'any peer' },
  { group: 'in-cluster', text: 'any peer' },
  { group: 'outside', text: 'any peer' },
];

/** The peers of one CNP/CCNP section entry. No peer field at all means any peer (L3 wildcard). */
export function cnpEntryPeers(
  entry: IngressRule | EgressRule,
  ingress: boolean,
  policyNS: string | undefined,
): PeerText[] {
  const e = entry as IngressRule & EgressRule;
  const out: PeerText[] = [];
  let anyField = false;
  const sels = ingress ? e.fromEndpoints : e.toEndpoints;
  if (sels !== undefined) {
    anyField = true;
    for (const s of sels) out.push(selectorPeer(s, policyNS));
  }
  const req = ingress ? e.fromRequires : e.toRequires;
  if (req !== undefined)
    for (const s of req) out.push({ ...selectorPeer(s, policyNS), text: `requires ${selectorText(s)}` });
  const ents = ingress ? e.fromEntities : e.toEntities;
  if (ents !== undefined) {
    anyField = true;
    for (const x of ents) for (const g of entityGroups(x)) out.push({ group: g, text: `entity ${x}` });
  }
  const cidrs = ingress ? e.fromCIDR : e.toCIDR;
  if (cidrs !== undefined) {
    anyField = true;
    for (const c of cidrs) out.push({ group: 'outside', text: c });
  }
  const sets = ingress ? e.fromCIDRSet : e.toCIDRSet;
  if (sets !== undefined) {
    anyField = true;
    for (const c of sets) {
      const base =
        c.cidr ?? (c.cidrGroupRef !== undefined ? `group ${c.cidrGroupRef}` : 'CIDR group selector');
      out.push({ group: 'outside', text: c.except?.length ? `${base} except ${c.except.join(',')}` : base });
    }
  }
  const nodes = ingress ? e.fromNodes : e.toNodes;
  if (nodes !== undefined) {
    anyField = true;
    for (const s of nodes) out.push({ group: 'in-cluster', text: `nodes ${selectorText(s) || '(all)'}` });
  }
  if (!ingress) {
    if (e.toFQDNs !== undefined) {
      anyField = true;
      for (const f of e.toFQDNs) out.push({ group: 'outside', text: f.matchName ?? f.matchPattern ?? '' });
    }
    if (e.toServices !== undefined) {
      anyField = true;
      for (const s of e.toServices) {
        const k = s.k8sService;
        out.push({
          group: 'in-cluster',
          text: k
            ? `service ${k.namespace ?? policyNS ?? ''}/${k.serviceName ?? ''}`
            : `services ${selectorText(s.k8sServiceSelector?.selector ?? { pos: s.pos })}`,
        });
      }
    }
  }
  const groups = ingress ? e.fromGroups : e.toGroups;
  if (groups !== undefined) {
    anyField = true;
    for (const _ of groups) out.push({ group: 'outside', text: 'cloud provider group' });
  }
  if (!anyField) return ANY;
  return out;
}

function knpPeer(p: NetworkPolicyPeer): PeerText {
  if (p.ipBlock !== undefined)
    return {
      group: 'outside',
      text: p.ipBlock.except?.length
        ? `${p.ipBlock.cidr} except ${p.ipBlock.except.join(',')}`
        : p.ipBlock.cidr,
    };
  if (p.namespaceSelector !== undefined) {
    const ns = selectorText(p.namespaceSelector) || 'all namespaces';
    const pods = p.podSelector !== undefined ? selectorText(p.podSelector) || 'all pods' : 'all pods';
    return { group: 'in-cluster', text: `namespaces ${ns}: ${pods}` };
  }
  return {
    group: 'in-namespace',
    text: selectorText(p.podSelector ?? { pos: p.pos }) || 'all pods in the namespace',
  };
}

function portsText(rules: readonly PortRule[] | undefined): { ports: string[]; l7: string[] } {
  const ports: string[] = [];
  const l7: string[] = [];
  for (const r of rules ?? []) {
    for (const p of r.ports ?? [])
      ports.push(`${p.port ?? '0'}${p.endPort !== undefined ? `-${p.endPort}` : ''}/${p.protocol ?? 'ANY'}`);
    for (const h of r.rules?.http ?? [])
      l7.push(`HTTP ${h.method ?? '*'} ${h.path ?? '/*'}${h.host ? ` host ${h.host}` : ''}`);
    for (const d of r.rules?.dns ?? []) l7.push(`DNS ${d.matchName ?? d.matchPattern ?? ''}`);
    for (const k of r.rules?.kafka ?? [])
      l7.push(`Kafka ${k.role ?? k.apiKey ?? 'any'} ${k.topic ?? ''}`.trim());
  }
  return { ports, l7 };
}

function knpPorts(ps: readonly NetworkPolicyPort[] | undefined): string[] {
  return (ps ?? []).map(
    (p) => `${p.port ?? 'all'}${p.endPort !== undefined ? `-${p.endPort}` : ''}/${p.protocol ?? 'TCP'}`,
  );
}

const SECTIONS = [
  ['ingress', 'INGRESS', 'allow'],
  ['ingressDeny', 'INGRESS', 'deny'],
  ['egress', 'EGRESS', 'allow'],
  ['egressDeny', 'EGRESS', 'deny'],
] as const;

/** Every section entry of the rules that select the endpoint (`ruleIndex` per policy). */
export function ruleEntries(policy: PolicyObject, ruleIndices: ReadonlySet<number>): RuleEntryView[] {
  const out: RuleEntryView[] = [];
  const ns = policy.metadata.namespace;
  const base = {
    kind: policy.kind,
    name: policy.metadata.name,
    ...(ns !== undefined ? { namespace: ns } : {}),
  };
  if (policy.kind === 'NetworkPolicy') {
    const spec = (policy as NetworkPolicy).spec;
    if (!ruleIndices.has(0)) return out;
    spec.ingress?.forEach((r, i) => {
      const peers = r.from === undefined || r.from.length === 0 ? ANY : r.from.map(knpPeer);
      out.push(entry(base, 0, 'ingress', i, 'INGRESS', 'allow', r.pos, peers, knpPorts(r.ports), []));
    });
    spec.egress?.forEach((r, i) => {
      const peers = r.to === undefined || r.to.length === 0 ? ANY : r.to.map(knpPeer);
      out.push(entry(base, 0, 'egress', i, 'EGRESS', 'allow', r.pos, peers, knpPorts(r.ports), []));
    });
    return out;
  }
  const rules: Rule[] = [...(policy.spec ? [policy.spec] : []), ...(policy.specs ?? [])];
  rules.forEach((rule, ri) => {
    if (!ruleIndices.has(ri)) return;
    for (const [section, direction, effect] of SECTIONS) {
      const list = rule[section] as (IngressRule | EgressRule)[] | undefined;
      list?.forEach((e, i) => {
        const peers = cnpEntryPeers(e, direction === 'INGRESS', ns);
        const pt = portsText(e.toPorts as PortRule[] | undefined);
        out.push(entry(base, ri, section, i, direction, effect, e.pos, peers, pt.ports, pt.l7));
      });
    }
  });
  return out;
}

function entry(
  base: { kind: string; name: string; namespace?: string },
  ruleIndex: number,
  section: string,
  entryIndex: number,
  direction: 'INGRESS' | 'EGRESS',
  effect: 'allow' | 'deny',
  pos: { file: string; line: number; column: number },
  peers: PeerText[],
  ports: string[],
  l7: string[],
): RuleEntryView {
  const r = { ...base, ruleIndex, section, entryIndex };
  return {
    ...r,
    key: ruleKey(r),
    direction,
    effect,
    file: pos.file,
    line: pos.line,
    column: pos.column,
    peers,
    ports,
    l7,
  };
}

// ------------------------------------------------------------------ flows of a peer

/** Where a flow's peer stands, seen from an endpoint in `namespace`. */
export function flowPeerGroup(peer: FlowEndpoint | undefined, namespace: string): PeerGroup {
  const c = cardOf(peer);
  if (c.kind === 'world') return 'outside';
  if ((c.kind === 'workload' || c.kind === 'kube-dns') && c.namespace === namespace) return 'in-namespace';
  return 'in-cluster';
}

function isSubject(ep: FlowEndpoint | undefined, namespace: string, name: string): boolean {
  return ep?.namespace === namespace && ep.pod_name === name;
}

export interface PolicyViewInput {
  namespace: string;
  name: string;
  identity?: number;
  labels?: string[];
  ingress: { enforced: boolean; defaultDeny: boolean };
  egress: { enforced: boolean; defaultDeny: boolean };
  /** The entries of every rule selecting the endpoint (ruleEntries of each policy). */
  entries: readonly RuleEntryView[];
  flows: Iterable<UIFlow>;
}

export function buildPolicyView(input: PolicyViewInput): PolicyView {
  const { namespace, name } = input;
  const byKey = new Map<string, { e: RuleEntryView; flows: { seq: number; group: PeerGroup }[] }>();
  for (const e of input.entries) byKey.set(`${e.direction}|${e.key}`, { e, flows: [] });
  const unmatched: Record<'INGRESS' | 'EGRESS', number[]> = { INGRESS: [], EGRESS: [] };
  for (const u of input.flows) {
    const f: Flow = u.flow;
    if (f.is_reply === true) continue;
    for (const direction of ['INGRESS', 'EGRESS'] as const) {
      const subject = direction === 'INGRESS' ? f.destination : f.source;
      if (!isSubject(subject, namespace, name)) continue;
      const peer = direction === 'INGRESS' ? f.source : f.destination;
      const group = flowPeerGroup(peer, namespace);
      const hits = u.rules.filter((h: RuleHit) => h.direction === direction);
      let any = false;
      for (const h of hits) {
        const slot = byKey.get(`${direction}|${ruleKey(h)}`);
        if (slot === undefined) continue;
        slot.flows.push({ seq: u.seq, group });
        any = true;
      }
      if (!any) unmatched[direction].push(u.seq);
    }
  }
  const side = (direction: 'INGRESS' | 'EGRESS'): SidePolicy => {
    const groups: Record<PeerGroup, RuleCardView[]> = { 'in-namespace': [], 'in-cluster': [], outside: [] };
    for (const { e, flows } of byKey.values()) {
      if (e.direction !== direction) continue;
      for (const g of PEER_GROUPS) {
        const peers = e.peers.filter((p) => p.group === g).map((p) => p.text);
        if (peers.length === 0) continue;
        groups[g].push({
          ...e,
          group: g,
          groupPeers: [...new Set(peers)],
          flows: flows.filter((x) => x.group === g).map((x) => x.seq),
          matchedNothing: flows.length === 0,
        });
      }
    }
    const pol = direction === 'INGRESS' ? input.ingress : input.egress;
    return { enforced: pol.enforced, defaultDeny: pol.defaultDeny, groups, unmatched: unmatched[direction] };
  };
  return {
    endpoint: `${namespace}/${name}`,
    namespace,
    name,
    ...(input.identity !== undefined ? { identity: input.identity } : {}),
    labels: input.labels ?? [],
    ingress: side('INGRESS'),
    egress: side('EGRESS'),
  };
}
