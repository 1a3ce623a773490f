// API objects → internal rules: namespace scoping (§3.1), peers as selectors, ports as specs,
// L7 rule sets, per-direction enforcement and default-deny. One InternalRule per Cilium rule
// (a CNP's spec/specs entry, a CCNP's, or a converted KNP).

import { type Prefix, parsePrefix } from '../identity/cidr.ts';
import { parseKey, SOURCE_ANY, SOURCE_K8S, SOURCE_RESERVED } from '../labels/label.ts';
import { LABEL_NAMESPACE, LABEL_NS_LABELS_PREFIX } from '../labels/pod.ts';
import { compileRequirements, mentionsKey, type Requirement, requirementsOf } from '../labels/selector.ts';
import type { SourcePos } from '../policy-api/issue.ts';
import type {
  CIDRRule,
  EgressDenyRule,
  EgressRule,
  EndpointSelector,
  IngressDenyRule,
  IngressRule,
  IPBlock,
  K8sLabelSelector,
  NetworkPolicy,
  NetworkPolicyPort,
  PolicyObject,
  PortRule,
  Rule,
} from '../policy-api/types.ts';
import { policyAuditMode } from '../policy-api/validate-meta.ts';
import {
  type ClusterLookup,
  cidrGroupMatches,
  EMPTY_CLUSTER,
  hasPodSelector,
  type ServiceInfo,
  serviceMatches,
} from './cluster-objects.ts';
import {
  cidrPeer,
  endpointPeer,
  entityPeer,
  fqdnPeer,
  NONE,
  nodePeer,
  type PeerSelector,
  WILDCARD,
} from './peer.ts';
import { ALL_PORTS, icmpSpecOf, type PortSpec, portSpecOf, rangeOf } from './ports.ts';
import type { L7RuleSet, RuleRef, TrafficDirection } from './types.ts';
import { PROTO } from './types.ts';

export interface PeerChoice {
  sel: PeerSelector;
  /** Where it came from, e.g. `fromEndpoints[0]`, or `(any peer)`. */
  field: string;
  /** The object a reference resolved through, e.g. `Service shop/backend-svc`. */
  via?: string;
  /** from/toEndpoints only: the selector's requirements, which from/toRequires extend. */
  reqs?: readonly Requirement[];
}

/** from/toRequires of one direction (allow and deny sections apart, as Cilium collects them). */
export interface RequiresOf {
  allow: Requirement[];
  deny: Requirement[];
}

/** One allow/deny entry of a rule, for one PortRule (L7 differs per PortRule). */
export interface RuleEntry {
  direction: TrafficDirection;
  deny: boolean;
  /** Empty ⇒ selects nothing. */
  peers: PeerChoice[];
  ports: readonly PortSpec[];
  /** `toPorts[i]` / `icmps[i]` / undefined for L3-only. */
  portsField?: string;
  l7?: L7RuleSet;
  ref: RuleRef;
}

export interface InternalRule {
  /** kind/namespace/name#ruleIndex */
  key: string;
  policyKey: string;
  subject: PeerSelector;
  enforces: Record<TrafficDirection, boolean>;
  defaultDeny: Record<TrafficDirection, boolean>;
  entries: RuleEntry[];
  /**
   * fromRequires / toRequires (Cilium ≤1.18): ANDed into every from/toEndpoints selector of every
   * rule selecting the same endpoint, in that direction and allow/deny kind.
   */
  requires?: Record<TrafficDirection, RequiresOf>;
  /** The rule itself (section '', entryIndex -1). */
  ref: RuleRef;
  /** Its policy is in audit mode (policy.seawall.dev/audit-mode: "true"): its denials audit. */
  audit?: true;
}

export interface TranslateOptions {
  clusterName: string;
  /** Services and CIDR groups that toServices / cidrGroupRef / cidrGroupSelector resolve against. */
  cluster?: ClusterLookup;
}

export function policyKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export function policyKeyOf(p: PolicyObject): string {
  return policyKey(
    p.kind,
    p.kind === 'CiliumClusterwideNetworkPolicy' ? undefined : p.metadata.namespace,
    p.metadata.name,
  );
}

export function translatePolicy(p: PolicyObject, opts: TranslateOptions): InternalRule[] {
  const out = translate(p, opts);
  if (policyAuditMode(p)) for (const r of out) r.audit = true;
  return out;
}

function translate(p: PolicyObject, opts: TranslateOptions): InternalRule[] {
  if (p.kind === 'NetworkPolicy') return [translateKNP(p, opts)];
  const ns = p.kind === 'CiliumNetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined;
  const rules: Rule[] = [];
  if (p.spec !== undefined) rules.push(p.spec);
  if (p.specs !== undefined) rules.push(...p.specs);
  const pk = policyKeyOf(p);
  const out: InternalRule[] = [];
  rules.forEach((r, i) => {
    const base: Omit<RuleRef, 'section' | 'entryIndex' | 'pos'> =
      ns === undefined
        ? { kind: p.kind, name: p.metadata.name, ruleIndex: i }
        : { kind: p.kind, name: p.metadata.name, namespace: ns, ruleIndex: i };
    const t = translateRule(r, ns, base, opts, `${pk}#${i}`, pk);
    if (t !== undefined) out.push(t);
  });
  return out;
}

// ---------------------------------------------------------------- CNP / CCNP

function hasItems(a: readonly unknown[] | undefined): boolean {
  return a !== undefined && a.length > 0;
}

function translateRule(
  r: Rule,
  ns: string | undefined,
  base: Omit<RuleRef, 'section' | 'entryIndex' | 'pos'>,
  opts: TranslateOptions,
  key: string,
  policyKey: string,
): InternalRule | undefined {
  // Host policies (nodeSelector) have the node as subject; Seawall's endpoints are pods.
  if (r.endpointSelector === undefined) return undefined;
  const subjectReqs = requirementsOf(r.endpointSelector, SOURCE_ANY);
  let subject: PeerSelector;
  if (ns !== undefined) {
    // A CNP can only select pods of its own namespace: any namespace requirement is replaced.
    const kept = subjectReqs.filter(
      (q) => !(q.key === LABEL_NAMESPACE && (q.source === SOURCE_ANY || q.source === SOURCE_K8S)),
    );
    subject = endpointPeer(compileRequirements([...kept, nsReq(ns)]));
  } else {
    subject = endpointPeer(compileRequirements(subjectReqs));
  }
  const selectsInit = subjectReqs.some((q) => q.source === SOURCE_RESERVED && q.key === 'init');

  const enfIn = hasItems(r.ingress) || hasItems(r.ingressDeny);
  const enfEg = hasItems(r.egress) || hasItems(r.egressDeny);
  const ddIn = enfIn && r.enableDefaultDeny?.ingress !== false;
  const ddEg = enfEg && r.enableDefaultDeny?.egress !== false;

  const ctx: PeerCtx = {
    ns,
    selectsInit,
    clusterName: opts.clusterName,
    cluster: opts.cluster ?? EMPTY_CLUSTER,
  };
  const entries: RuleEntry[] = [];
  // Written out, not spread: an object spread with properties after it is several times slower
  // in V8, and this runs for every entry of every rule upserted.
  // (key order as before: refs are printed)
  const { kind, name, namespace, ruleIndex } = base;
  const ref = (section: string, entryIndex: number, pos: SourcePos): RuleRef =>
    namespace === undefined
      ? { kind, name, ruleIndex, section, entryIndex, pos }
      : { kind, name, namespace, ruleIndex, section, entryIndex, pos };

  r.ingress?.forEach((e, i) => {
    entries.push(...sectionEntries(e, 'INGRESS', false, ctx, ref('ingress', i, e.pos), !ddIn));
  });
  r.ingressDeny?.forEach((e, i) => {
    entries.push(...sectionEntries(e, 'INGRESS', true, ctx, ref('ingressDeny', i, e.pos), false));
  });
  r.egress?.forEach((e, i) => {
    entries.push(...sectionEntries(e, 'EGRESS', false, ctx, ref('egress', i, e.pos), !ddEg));
  });
  r.egressDeny?.forEach((e, i) => {
    entries.push(...sectionEntries(e, 'EGRESS', true, ctx, ref('egressDeny', i, e.pos), false));
  });
  const enforces = { INGRESS: enfIn, EGRESS: enfEg };
  const defaultDeny = { INGRESS: ddIn, EGRESS: ddEg };
  const self = ref('', -1, r.pos);
  const requires = requiresOf(r);
  // literals in the order the rule always had (key and policyKey last)
  return requires === undefined
    ? { subject, enforces, defaultDeny, entries, ref: self, key, policyKey }
    : { subject, enforces, defaultDeny, entries, ref: self, requires, key, policyKey };
}

/** The rule's from/toRequires, not namespace-scoped (Cilium adds no namespace to them). */
function requiresOf(r: Rule): Record<TrafficDirection, RequiresOf> | undefined {
  const has = (es: ReadonlyArray<{ fromRequires?: unknown; toRequires?: unknown }> | undefined) =>
    es?.some((e) => e.fromRequires !== undefined || e.toRequires !== undefined) === true;
  if (!has(r.ingress) && !has(r.ingressDeny) && !has(r.egress) && !has(r.egressDeny)) return undefined;
  const out: Record<TrafficDirection, RequiresOf> = {
    INGRESS: { allow: [], deny: [] },
    EGRESS: { allow: [], deny: [] },
  };
  const add = (to: Requirement[], sels: readonly EndpointSelector[] | undefined) => {
    for (const s of sels ?? []) to.push(...requirementsOf(s, SOURCE_ANY));
  };
  for (const e of r.ingress ?? []) add(out.INGRESS.allow, e.fromRequires);
  for (const e of r.ingressDeny ?? []) add(out.INGRESS.deny, e.fromRequires);
  for (const e of r.egress ?? []) add(out.EGRESS.allow, e.toRequires);
  for (const e of r.egressDeny ?? []) add(out.EGRESS.deny, e.toRequires);
  const n =
    out.INGRESS.allow.length + out.INGRESS.deny.length + out.EGRESS.allow.length + out.EGRESS.deny.length;
  return n > 0 ? out : undefined;
}

interface PeerCtx {
  /** CNP namespace; undefined for CCNP. */
  ns: string | undefined;
  selectsInit: boolean;
  clusterName: string;
  cluster: ClusterLookup;
}

function nsReq(ns: string): Requirement {
  return { source: SOURCE_K8S, key: LABEL_NAMESPACE, operator: 'In', values: [ns] };
}

/** from/toEndpoints selector with namespace injection (§3.1), and its requirements. */
function endpointSelectorReqs(sel: EndpointSelector, ctx: PeerCtx): Requirement[] {
  const reqs = requirementsOf(sel, SOURCE_ANY);
  const namesNs = mentionsKey(reqs, LABEL_NAMESPACE, [SOURCE_ANY, SOURCE_K8S]);
  const reserved = reqs.some((q) => q.source === SOURCE_RESERVED);
  const nsLabels = reqs.some((q) => q.key.startsWith(LABEL_NS_LABELS_PREFIX));
  if (!namesNs && !reserved && !nsLabels) {
    if (ctx.ns !== undefined) reqs.push(nsReq(ctx.ns));
    else if (!ctx.selectsInit)
      reqs.push({ source: SOURCE_K8S, key: LABEL_NAMESPACE, operator: 'Exists', values: [] });
  }
  return reqs;
}

function cidrStringPeer(s: string): PeerSelector {
  const p = parsePrefix(s);
  return p === undefined ? NONE : cidrPeer(p, []);
}

function exceptsOf(c: CIDRRule | IPBlock): Prefix[] {
  const ex: Prefix[] = [];
  for (const e of c.except ?? []) {
    const q = parsePrefix(e);
    if (q !== undefined) ex.push(q);
  }
  return ex;
}

function cidrRulePeer(c: CIDRRule | IPBlock): PeerSelector {
  if (c.cidr === undefined) return NONE;
  const p = parsePrefix(c.cidr);
  if (p === undefined) return NONE;
  return cidrPeer(p, exceptsOf(c));
}

/** A CIDR-set entry: its cidr, or every prefix of the CIDR groups it refers to (excepts applied). */
function cidrSetPeers(c: CIDRRule, field: string, ctx: PeerCtx): PeerChoice[] {
  if (c.cidrGroupRef === undefined && c.cidrGroupSelector === undefined)
    return [{ sel: cidrRulePeer(c), field }];
  const out: PeerChoice[] = [];
  const ex = exceptsOf(c);
  for (const g of ctx.cluster.cidrGroups()) {
    if (!cidrGroupMatches(c, g)) continue;
    for (const s of g.cidrs) {
      const p = parsePrefix(s);
      if (p !== undefined) out.push({ sel: cidrPeer(p, ex), field, via: `CiliumCIDRGroup ${g.name}` });
    }
  }
  return out;
}

/**
 * A Service as Cilium rewrites a toServices entry: its pod selector (restricted to the Service's
 * namespace) as an endpoint selector, or, for a selector-less Service, its backend addresses as
 * CIDR peers (which never select pods).
 */
function servicePeers(svc: ServiceInfo, field: string): PeerChoice[] {
  const via = `Service ${svc.namespace}/${svc.name}`;
  if (hasPodSelector(svc)) {
    const reqs: Requirement[] = Object.entries(svc.selector ?? {}).map(([k, v]) => {
      const { source, key } = parseKey(k);
      return { source, key, operator: 'In', values: [v] };
    });
    reqs.push(nsReq(svc.namespace));
    return [{ sel: endpointPeer(compileRequirements(reqs)), field, via }];
  }
  const out: PeerChoice[] = [];
  for (const a of svc.addresses) {
    const p = parsePrefix(a);
    if (p !== undefined) out.push({ sel: cidrPeer(p, []), field, via });
  }
  return out;
}

type Common = IngressRule | IngressDenyRule | EgressRule | EgressDenyRule;

/** Peer choices of one entry; undefined when no peer field is present (peer wildcard). */
function peersOf(e: Common, dir: TrafficDirection, ctx: PeerCtx): PeerChoice[] | undefined {
  const x = e as Partial<IngressRule & EgressRule>;
  const pre = dir === 'INGRESS' ? 'from' : 'to';
  const eps = dir === 'INGRESS' ? x.fromEndpoints : x.toEndpoints;
  const cidrs = dir === 'INGRESS' ? x.fromCIDR : x.toCIDR;
  const sets = dir === 'INGRESS' ? x.fromCIDRSet : x.toCIDRSet;
  const ents = dir === 'INGRESS' ? x.fromEntities : x.toEntities;
  const nodes = dir === 'INGRESS' ? x.fromNodes : x.toNodes;
  const groups = dir === 'INGRESS' ? x.fromGroups : x.toGroups;
  let any = false;
  const out: PeerChoice[] = [];
  if (eps !== undefined) {
    any = true;
    eps.forEach((s, i) => {
      const reqs = endpointSelectorReqs(s, ctx);
      out.push({ sel: endpointPeer(compileRequirements(reqs)), field: `${pre}Endpoints[${i}]`, reqs });
    });
  }
  if (cidrs !== undefined) {
    any = true;
    cidrs.forEach((c, i) => {
      out.push({ sel: cidrStringPeer(c), field: `${pre}CIDR[${i}]` });
    });
  }
  if (sets !== undefined) {
    any = true;
    sets.forEach((c, i) => {
      out.push(...cidrSetPeers(c, `${pre}CIDRSet[${i}]`, ctx));
    });
  }
  if (ents !== undefined) {
    any = true;
    ents.forEach((en, i) => {
      out.push({ sel: entityPeer(en, ctx.clusterName), field: `${pre}Entities[${i}]` });
    });
  }
  if (nodes !== undefined) {
    any = true;
    nodes.forEach((s, i) => {
      // Node label selectors (as with --enable-node-selector-labels): not namespace-scoped.
      out.push({ sel: nodePeer(requirementsOf(s, SOURCE_ANY)), field: `${pre}Nodes[${i}]` });
    });
  }
  if (groups !== undefined) any = true; // cloud (AWS) groups cannot be resolved: select nothing
  if (dir === 'EGRESS') {
    if (x.toServices !== undefined) {
      any = true;
      x.toServices.forEach((ref, i) => {
        for (const svc of ctx.cluster.services())
          if (serviceMatches(ref, svc)) out.push(...servicePeers(svc, `toServices[${i}]`));
      });
    }
    if (x.toFQDNs !== undefined) {
      any = true;
      x.toFQDNs.forEach((f, i) => {
        out.push({ sel: fqdnPeer(f), field: `toFQDNs[${i}]` });
      });
    }
  }
  return any ? out : undefined;
}

const ANY_PEER: PeerChoice[] = [{ sel: WILDCARD, field: '(any peer)' }];

function l7Of(pr: PortRule, dir: TrafficDirection, implicitAllowAll: boolean): L7RuleSet | undefined {
  const r = pr.rules;
  if (r === undefined) return undefined;
  let set: L7RuleSet | undefined;
  if (r.http !== undefined && r.http.length > 0) set = { parser: 'http', rules: [...r.http] };
  else if (r.kafka !== undefined && r.kafka.length > 0) set = { parser: 'kafka', rules: [...r.kafka] };
  else if (r.dns !== undefined && r.dns.length > 0 && dir === 'EGRESS')
    set = { parser: 'dns', rules: [...r.dns] };
  if (set === undefined || !implicitAllowAll) return set;
  // 1.18: L7 rules in a direction without default-deny get an implicit L7 allow-all.
  const pos = r.pos;
  if (set.parser === 'http') return { parser: 'http', rules: [...set.rules, { pos }] };
  if (set.parser === 'kafka') return { parser: 'kafka', rules: [...set.rules, { pos }] };
  return { parser: 'dns', rules: [...set.rules, { matchPattern: '*', pos }] };
}

function portEntries(
  e: Common,
  dir: TrafficDirection,
  deny: boolean,
  peers: PeerChoice[],
  ref: RuleRef,
  implicitL7AllowAll: boolean,
): RuleEntry[] {
  const out: RuleEntry[] = [];
  const toPorts = e.toPorts as Array<PortRule> | undefined;
  if (toPorts !== undefined && toPorts.length > 0) {
    toPorts.forEach((pr, i) => {
      const ports: PortSpec[] = [];
      if (pr.ports === undefined || pr.ports.length === 0) ports.push({ proto: PROTO.ANY, lo: 0, hi: 65535 });
      for (const pp of pr.ports ?? []) {
        const s = portSpecOf(pp);
        if (s !== undefined) ports.push(s);
      }
      const l7 = deny ? undefined : l7Of(pr, dir, implicitL7AllowAll);
      const entry: RuleEntry = { direction: dir, deny, peers, ports, portsField: `toPorts[${i}]`, ref };
      if (l7 !== undefined) entry.l7 = l7;
      out.push(entry);
    });
    return out;
  }
  if (e.icmps !== undefined && e.icmps.length > 0) {
    e.icmps.forEach((ic, i) => {
      const ports: PortSpec[] = [];
      for (const f of ic.fields) {
        const s = icmpSpecOf(f);
        if (s !== undefined) ports.push(s);
      }
      out.push({ direction: dir, deny, peers, ports, portsField: `icmps[${i}]`, ref });
    });
    return out;
  }
  out.push({ direction: dir, deny, peers, ports: ALL_PORTS, ref });
  return out;
}

function hasPortsOrIcmps(e: Common): boolean {
  return hasItems(e.toPorts) || hasItems(e.icmps);
}

function sectionEntries(
  e: Common,
  dir: TrafficDirection,
  deny: boolean,
  ctx: PeerCtx,
  ref: RuleRef,
  l7AllowAll: boolean,
): RuleEntry[] {
  let peers = peersOf(e, dir, ctx);
  if (peers === undefined) {
    // No peer field: with toPorts/icmps any peer; without, the entry allows nothing (§3.2).
    if (!hasPortsOrIcmps(e)) return [];
    peers = ANY_PEER;
  }
  return portEntries(e, dir, deny, peers, ref, l7AllowAll);
}

// ---------------------------------------------------------------- Kubernetes NetworkPolicy

function k8sReqs(sel: K8sLabelSelector, keyPrefix = ''): Requirement[] {
  return requirementsOf(sel, SOURCE_K8S).map((q) => ({ ...q, source: SOURCE_K8S, key: keyPrefix + q.key }));
}

function translateKNP(p: NetworkPolicy, _opts: TranslateOptions): InternalRule {
  const ns = p.metadata.namespace ?? 'default';
  const spec = p.spec;
  const subject = endpointPeer(compileRequirements([...k8sReqs(spec.podSelector), nsReq(ns)]));
  const types = spec.policyTypes ?? (hasItems(spec.egress) ? ['Ingress', 'Egress'] : ['Ingress']);
  const enfIn = types.includes('Ingress');
  const enfEg = types.includes('Egress');
  const base = { kind: 'NetworkPolicy', name: p.metadata.name, namespace: ns, ruleIndex: 0 };
  const entries: RuleEntry[] = [];
  const peerOf = (
    peer: NonNullable<NonNullable<typeof spec.ingress>[number]['from']>[number],
  ): PeerSelector => {
    if (peer.ipBlock !== undefined) return cidrRulePeer(peer.ipBlock);
    const reqs: Requirement[] = [];
    if (peer.podSelector !== undefined) reqs.push(...k8sReqs(peer.podSelector));
    if (peer.namespaceSelector !== undefined) {
      const nreqs = k8sReqs(peer.namespaceSelector, LABEL_NS_LABELS_PREFIX);
      reqs.push(...nreqs);
      // `namespaceSelector: {}` = every namespace (pods only).
      if (nreqs.length === 0)
        reqs.push({ source: SOURCE_K8S, key: LABEL_NAMESPACE, operator: 'Exists', values: [] });
    } else if (peer.podSelector !== undefined) {
      reqs.push(nsReq(ns));
    } else {
      return NONE;
    }
    return endpointPeer(compileRequirements(reqs));
  };
  const portsOf = (ports: NetworkPolicyPort[] | undefined): readonly PortSpec[] => {
    if (ports === undefined || ports.length === 0) return ALL_PORTS;
    const out: PortSpec[] = [];
    for (const pp of ports) {
      const proto = pp.protocol === 'UDP' ? PROTO.UDP : pp.protocol === 'SCTP' ? PROTO.SCTP : PROTO.TCP;
      const s = rangeOf(proto, pp.port, pp.endPort);
      if (s !== undefined) out.push(s);
    }
    return out;
  };
  const add = (
    dir: TrafficDirection,
    i: number,
    pos: SourcePos,
    peersIn: NetworkPolicyIngressPeer[] | undefined,
    ports: NetworkPolicyPort[] | undefined,
  ) => {
    const section = dir === 'INGRESS' ? 'ingress' : 'egress';
    const field = dir === 'INGRESS' ? 'from' : 'to';
    const peers: PeerChoice[] =
      peersIn === undefined || peersIn.length === 0
        ? ANY_PEER
        : peersIn.map((x, j) => ({ sel: peerOf(x), field: `${field}[${j}]` }));
    const ref: RuleRef = { ...base, section, entryIndex: i, pos };
    const entry: RuleEntry = { direction: dir, deny: false, peers, ports: portsOf(ports), ref };
    if (ports !== undefined && ports.length > 0) entry.portsField = 'ports';
    entries.push(entry);
  };
  if (enfIn) {
    spec.ingress?.forEach((r, i) => {
      add('INGRESS', i, r.pos, r.from, r.ports);
    });
  }
  if (enfEg) {
    spec.egress?.forEach((r, i) => {
      add('EGRESS', i, r.pos, r.to, r.ports);
    });
  }
  return {
    key: `${policyKeyOf(p)}#0`,
    policyKey: policyKeyOf(p),
    subject,
    enforces: { INGRESS: enfIn, EGRESS: enfEg },
    defaultDeny: { INGRESS: enfIn, EGRESS: enfEg },
    entries,
    ref: { ...base, section: '', entryIndex: -1, pos: spec.pos },
  };
}

type NetworkPolicyIngressPeer = NonNullable<
  NonNullable<NetworkPolicy['spec']['ingress']>[number]['from']
>[number];
