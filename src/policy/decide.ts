// decide for one direction: look the peer up in the subject's MapState (never a scan of rules),
// apply deny > allow > redirect, run L7 on the union of the matching redirect entries, and say why.
//
// Audit mode (a policy annotated policy.seawall.dev/audit-mode: "true", or an endpoint in
// PolicyAuditMode, where every selecting policy counts as audited). Cilium's precedence stays:
// deny > allow > redirect, and the default deny of a direction comes from any policy selecting the
// endpoint. Audit takes out what audited policies alone would drop, nothing more:
//   1. an enforcing deny entry matches                      → DROPPED (POLICY_DENY)
//   2. no allow or redirect entry matches, and some enforcing policy brings the default deny
//                                                           → DROPPED (POLICY_DENIED), audited
//                                                             denies that matched do not help
//   3. an audited deny entry matches (the rest lets it pass) → AUDIT, naming the audited denies
//   4. nothing matches and only audited policies bring the default deny
//                                                           → AUDIT, naming those policies
//   5. otherwise as without audit (allow; redirect and L7).
// Allows of an audited policy still allow (audit never drops what enforcing would pass). L7 is not
// audited: the proxy enforces the L7 rules of a redirected port whoever brought them (Cilium's
// audit mode covers the L3/L4 policy verdict); an audited deny over a redirect is AUDIT when the
// L7 rules allow the request, L7_DENIED when they do not.

import type { EndpointState, Filter, FilterGroup } from './endpoint.ts';
import { filtersOfEntry, refText, unionL7 } from './endpoint.ts';
import { matchL7 } from './l7match.ts';
import type { StateEntry } from './mapstate.ts';
import { formatPortSpec, protoName } from './ports.ts';
import type {
  DirectionDecision,
  FlowRequest,
  L7RuleSet,
  MatchType,
  RuleRef,
  TrafficDirection,
} from './types.ts';
import { PROTO } from './types.ts';

export interface PeerInfo {
  id: number;
  /** Readable name: ns/name, an IP, or an entity. */
  name: string;
}

export interface DecideContext {
  describeIdentity(id: number): string;
}

/** Protocol number and port (ICMP: type) of a flow, as MapState keys them. */
export function flowKey(flow: FlowRequest): { proto: number; port: number; text: string } {
  switch (flow.protocol) {
    case 'ICMP': {
      const t = flow.icmp?.type ?? 8;
      return { proto: PROTO.ICMP, port: t, text: `ICMP type ${t}` };
    }
    case 'ICMPv6': {
      const t = flow.icmp?.type ?? 128;
      return { proto: PROTO.ICMPV6, port: t, text: `ICMPv6 type ${t}` };
    }
    default: {
      const proto = flow.protocol === 'UDP' ? PROTO.UDP : flow.protocol === 'SCTP' ? PROTO.SCTP : PROTO.TCP;
      const port = flow.dport ?? 0;
      return { proto, port, text: `${port}/${protoName(proto)}` };
    }
  }
}

function dirWord(d: TrafficDirection): string {
  return d === 'INGRESS' ? 'ingress' : 'egress';
}

function filtersOf(entries: readonly StateEntry<FilterGroup>[]): Filter[] {
  const out = new Set<Filter>();
  for (const e of entries) for (const f of filtersOfEntry(e)) out.add(f);
  return [...out].sort((a, b) => cmpRef(a.entry.ref, b.entry.ref));
}

function cmpRef(a: RuleRef, b: RuleRef): number {
  const ka = `${a.kind}/${a.namespace ?? ''}/${a.name}`;
  const kb = `${b.kind}/${b.namespace ?? ''}/${b.name}`;
  if (ka !== kb) return ka < kb ? -1 : 1;
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  if (a.section !== b.section) return a.section < b.section ? -1 : 1;
  return a.entryIndex - b.entryIndex;
}

function uniqRefs(fs: readonly Filter[]): RuleRef[] {
  return uniqRefList(fs.map((f) => f.entry.ref));
}

/** Each ref's identity string, built once (entries shared by many rules list them all). */
const refKeys = new WeakMap<RuleRef, string>();

export function uniqRefList(refs: readonly RuleRef[]): RuleRef[] {
  const seen = new Set<string>();
  const out: RuleRef[] = [];
  for (const r of refs) {
    let k = refKeys.get(r);
    if (k === undefined) {
      k = `${r.kind}/${r.namespace ?? ''}/${r.name}#${r.ruleIndex}/${r.section}/${r.entryIndex}`;
      refKeys.set(r, k);
    }
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(r);
  }
  return out;
}

function matchTypeOf(fs: readonly Filter[]): MatchType {
  // The datapath's lookup order: L3+L4, then L4 only, then L3 only, then the all-wildcard entry.
  let best = 0;
  const order: MatchType[] = ['NONE', 'ALL', 'L3_ONLY', 'L4_ONLY', 'L3_L4'];
  for (const f of fs) {
    const l3 = !f.cs.wildcard;
    const l4 = f.entry.portsField !== undefined;
    const rank = l3 && l4 ? 4 : l4 ? 3 : l3 ? 2 : 1;
    if (rank > best) best = rank;
  }
  return order[best]!;
}

function portsText(f: Filter): string {
  if (f.entry.portsField === undefined) return 'all ports';
  return `${f.entry.portsField} ${f.entry.ports.map(formatPortSpec).join(', ')}`;
}

function filterLine(d: TrafficDirection, ep: string, verb: string, f: Filter, peer: PeerInfo): string {
  if (f.synthetic === 'allow-localhost') {
    return `${dirWord(d)} of ${ep}: allowed: traffic from the local host is always allowed (allow-localhost=always)`;
  }
  if (f.synthetic === 'default-allow') {
    return (
      `${dirWord(d)} of ${ep}: allowed: every rule selecting it sets enableDefaultDeny.${dirWord(d)}=false, ` +
      `so an implicit allow-all applies below the denies (${refText(f.entry.ref)})`
    );
  }
  return `${dirWord(d)} of ${ep}: ${verb} by ${refText(f.entry.ref)}: ${f.peer.field} selects ${peer.name}${f.peer.via === undefined ? '' : ` via ${f.peer.via}`}; ${portsText(f)}`;
}

export function decideDirection(
  ctx: DecideContext,
  state: EndpointState,
  d: TrafficDirection,
  peer: PeerInfo,
  flow: FlowRequest,
): DirectionDecision {
  const res = state.resolution;
  const pol = d === 'INGRESS' ? res.ingress : res.egress;
  const ep = state.key;
  const base = { direction: d, endpoint: ep, enforced: pol.enforced };
  if (!pol.enforced) {
    const why =
      res.rules.length === 0
        ? `no policy selects ${ep}`
        : `no rule selecting ${ep} has an ${dirWord(d)} section`;
    return {
      ...base,
      allowed: true,
      matchType: 'NONE',
      allowedBy: [],
      deniedBy: [],
      explanation: [`${why} in ${dirWord(d)}: default allow`],
    };
  }
  const key = flowKey(flow);
  const hits: StateEntry<FilterGroup>[] = [];
  res.mapState.collect(d, peer.id, key.proto, key.port, hits);
  const denies = hits.filter((e) => e.verdict === 'deny');
  if (denies.length > 0) {
    const fs = filtersOf(denies);
    return {
      ...base,
      allowed: false,
      reason: 'POLICY_DENY',
      matchType: matchTypeOf(fs),
      allowedBy: [],
      deniedBy: uniqRefs(fs),
      explanation: fs.map((f) => filterLine(d, ep, 'denied', f, peer)),
    };
  }
  const audits = hits.filter((e) => e.verdict === 'audit');
  const allows = hits.filter((e) => e.verdict === 'allow');
  const redirects = hits.filter((e) => e.verdict === 'redirect');
  const auditLines = (fs: readonly Filter[]): string[] =>
    fs.map((f) => `${filterLine(d, ep, 'would be denied', f, peer)} (${auditWhy(state, f)})`);
  if (allows.length === 0 && redirects.length === 0) {
    const audited = pol.auditDefaultDeny === true;
    // An audited default deny names the (audited) rules that bring it: they would have denied.
    const selectedBy = uniqRefList(
      res.rules.filter((r) => r.enforces[d] && (!audited || r.defaultDeny[d])).map((r) => r.ref),
    );
    const by = selectedBy.length > 0 ? selectedBy.map(refText).join(', ') : 'policyEnforcementMode=always';
    const line =
      `${dirWord(d)} of ${ep} is default-deny (selected by ${by}) and no rule allows ` +
      `${ctx.describeIdentity(peer.id)} on ${key.text}`;
    if (audited) {
      const afs = filtersOf(audits);
      const denyRefs = uniqRefs(afs);
      const out: DirectionDecision = {
        ...base,
        allowed: true,
        matchType: afs.length > 0 ? matchTypeOf(afs) : 'NONE',
        allowedBy: [],
        deniedBy: [],
        audited:
          denyRefs.length > 0
            ? { by: denyRefs, reason: 'POLICY_DENY' }
            : { by: selectedBy, reason: 'POLICY_DENIED' },
        explanation: [
          ...auditLines(afs),
          `${line}: audited (${state.auditMode ? `${ep} is in PolicyAuditMode` : 'only policies in audit mode bring the default deny'}), so the flow passes`,
        ],
      };
      if (state.auditMode && out.audited !== undefined) out.audited.endpointMode = true;
      return out;
    }
    const explanation = [line];
    if (audits.length > 0)
      explanation.push(...auditLines(filtersOf(audits)).map((l) => `${l}; the default deny drops it anyway`));
    return {
      ...base,
      allowed: false,
      reason: 'POLICY_DENIED',
      matchType: 'NONE',
      allowedBy: [],
      deniedBy: [],
      explanation,
    };
  }
  const out = allowOrRedirect(base, d, ep, peer, flow, key.text, allows, redirects);
  if (audits.length > 0 && out.allowed) {
    const afs = filtersOf(audits);
    out.audited = { by: uniqRefs(afs), reason: 'POLICY_DENY' };
    if (state.auditMode) out.audited.endpointMode = true;
    out.explanation.unshift(...auditLines(afs).map((l) => `${l}; audit mode lets it pass`));
  }
  return out;
}

function auditWhy(state: EndpointState, f: Filter): string {
  if (f.rule?.audit === true) return 'the policy is in audit mode';
  return state.auditMode ? `${state.key} is in PolicyAuditMode` : 'audit mode';
}

/** Allow and redirect entries matched: the decision (with L7, when the port is redirected). */
function allowOrRedirect(
  base: Pick<DirectionDecision, 'direction' | 'endpoint' | 'enforced'>,
  d: TrafficDirection,
  ep: string,
  peer: PeerInfo,
  flow: FlowRequest,
  keyText: string,
  allows: StateEntry<FilterGroup>[],
  redirects: StateEntry<FilterGroup>[],
): DirectionDecision {
  const key = { text: keyText };
  if (allows.length > 0) {
    const fs = filtersOf(allows);
    const lines = fs.map((f) => filterLine(d, ep, 'allowed', f, peer));
    const out = allowedDecision(base, fs, lines);
    if (redirects.length > 0) {
      // Cilium merges the rule without L7 as an L7 wildcard: the port stays redirected to the
      // proxy, which allows every request (and the DNS proxy still learns the answers).
      const parser = filtersOf(redirects)[0]!.entry.l7!.parser;
      out.l7 = { parser, allowed: true };
      lines.push(
        `L7 ${parser} rules on this port do not restrict ${peer.name}: a matching rule without L7 rules ` +
          'adds an allow-all L7 rule (still proxied)',
      );
    }
    return out;
  }
  // Only redirects: the proxy decides with the union of their L7 rules.
  const fs = filtersOf(redirects);
  const lines = fs.map((f) => filterLine(d, ep, 'allowed at L3/L4', f, peer));
  const out = allowedDecision(base, fs, lines);
  const req = flow.l7;
  const parsers = [...new Set(fs.map((f) => f.entry.l7!.parser))];
  if (req === undefined) {
    lines.push(
      `L7 ${parsers.join('/')} rules apply on ${key.text}; no request given, so the connection is allowed`,
    );
    return out;
  }
  const want = req.kind === 'http' ? 'http' : req.kind;
  const mine = fs.filter((f) => f.entry.l7!.parser === want);
  const parser = (mine.length > 0 ? mine : fs)[0]!.entry.l7!.parser;
  const sets: L7RuleSet[] = (mine.length > 0 ? mine : fs).map((f) => f.entry.l7!);
  const union = unionL7(sets)!;
  const ukey = (mine.length > 0 ? mine : fs).map((f) => filterUid(f)).join(',');
  const m = matchL7(union, ukey, req);
  out.l7 =
    m.matchedRule === undefined
      ? { parser, allowed: m.allowed }
      : { parser, allowed: m.allowed, matchedRule: m.matchedRule };
  if (m.allowed) {
    lines.push(
      `L7 ${parser}: ${describeRequest(flow)} matches rule ${m.matchedRule ?? '?'} of the ${union.rules.length} rules that apply`,
    );
  } else {
    out.allowed = false;
    out.reason = 'L7_DENIED';
    lines.unshift(
      `${dirWord(d)} of ${ep}: L7 ${parser} denied ${describeRequest(flow)}: ${m.reason ?? 'no rule matched'} ` +
        `(${union.rules.length} rules apply on ${key.text})`,
    );
  }
  return out;
}

/** An allowed decision from the entries that matched (the L7 outcome, if any, is added after). */
function allowedDecision(
  base: Pick<DirectionDecision, 'direction' | 'endpoint' | 'enforced'>,
  fs: Filter[],
  lines: string[],
): DirectionDecision {
  return {
    ...base,
    allowed: true,
    matchType: matchTypeOf(fs),
    allowedBy: uniqRefs(fs),
    deniedBy: [],
    explanation: lines,
  };
}

const uids = new WeakMap<Filter, number>();
let nextUid = 1;
function filterUid(f: Filter): number {
  let u = uids.get(f);
  if (u === undefined) {
    u = nextUid++;
    uids.set(f, u);
  }
  return u;
}

export function describeRequest(flow: FlowRequest): string {
  const r = flow.l7;
  if (r === undefined) return 'the connection';
  switch (r.kind) {
    case 'http':
      return `${r.grpc === true ? 'gRPC ' : ''}${r.method} ${r.path}${r.host !== undefined ? ` (host ${r.host})` : ''}`;
    case 'kafka':
      return `Kafka apiKey ${r.apiKey} v${r.apiVersion} client ${JSON.stringify(r.clientID)} topics [${r.topics.join(', ')}]`;
    case 'dns':
      return `DNS query ${r.query}`;
  }
}
