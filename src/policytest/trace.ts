// One flow explained step by step (`seawall trace`): who the peers are (identity and labels), how
// an FQDN resolves and whether the source's DNS proxy would have learnt it, then the egress and
// ingress decisions with the rules that made them, then the verdict.

import { SeawallError } from '../core/errors.ts';
import { bareName } from '../fqdn/name.ts';
import type {
  FlowProtocol,
  FlowRequest,
  L7Request,
  PeerRef,
  PolicyEngineAPI,
  Verdict,
} from '../policy/types.ts';
import { directionLines, formatRuleRef } from './explain.ts';
import { peerForEndpoint, resolveReference } from './parse.ts';
import type { Scenario } from './scenario.ts';
import { peerLabel } from './types.ts';

export interface PeerInput {
  pod?: string;
  ip?: string;
  entity?: string;
  fqdn?: string;
}

export interface TraceInput {
  from: PeerInput;
  to: PeerInput;
  protocol: FlowProtocol;
  port?: number;
  icmpType?: number;
  l7?: L7Request;
}

export interface TracePeer {
  ref: string;
  peer: PeerRef;
  identity: number;
  labels: string[];
}

export interface TraceResult {
  src: TracePeer;
  dst: TracePeer;
  request: FlowRequest;
  fqdn?: { name: string; ip: string; learnt: boolean; via?: string };
  verdict: Verdict;
}

export class TraceError extends SeawallError {
  override name = 'TraceError';
}

function peerRef(input: PeerInput, side: 'from' | 'to'): string {
  const given = [input.pod, input.ip, input.entity, input.fqdn].filter((x) => x !== undefined);
  if (given.length !== 1) {
    const opts =
      side === 'from'
        ? '--from-pod, --from-ip or --from-entity'
        : '--to-pod, --to-ip, --to-fqdn or --to-entity';
    throw new TraceError('bad-peer', `give exactly one of ${opts}`);
  }
  return given[0]!;
}

function resolve(
  input: PeerInput,
  side: 'from' | 'to',
  sc: Scenario,
): { peer: PeerRef; fqdn?: { name: string; ip: string } } {
  const ref = peerRef(input, side);
  if (input.pod !== undefined && !ref.includes('/')) {
    const eps = sc.endpoints.filter((e) => e.name === ref && !e.external);
    if (eps.length !== 1)
      throw new TraceError('unknown-endpoint', `no unique pod named "${ref}"; write NAMESPACE/NAME`);
    return { peer: peerForEndpoint(eps[0]!) };
  }
  if (input.fqdn !== undefined && !sc.dns.some((d) => d.name === bareName(ref))) {
    throw new TraceError(
      'unknown-fqdn',
      `${ref} is not in the scenario's dns records; add it to the PolicyTest's spec.dns`,
    );
  }
  const r = resolveReference(ref, side, sc);
  if ('error' in r) throw new TraceError(r.code, r.error);
  return r;
}

/** Decides the flow on `engine` (already holding the scenario), learning DNS the way Cilium would. */
export function trace(engine: PolicyEngineAPI, sc: Scenario, input: TraceInput, nowMs = 1000): TraceResult {
  const src = resolve(input.from, 'from', sc);
  const dst = resolve(input.to, 'to', sc);
  const request: FlowRequest = { src: src.peer, dst: dst.peer, protocol: input.protocol };
  if (input.protocol === 'ICMP' || input.protocol === 'ICMPv6') {
    const family = input.protocol === 'ICMP' ? 'IPv4' : 'IPv6';
    request.icmp = { type: input.icmpType ?? (family === 'IPv4' ? 8 : 128), family };
  } else if (input.port !== undefined) request.dport = input.port;
  else throw new TraceError('missing-port', `a ${input.protocol} flow needs --port`);
  if (input.l7) request.l7 = input.l7;

  let fqdn: TraceResult['fqdn'];
  if (dst.fqdn) {
    const rec = sc.dns.find((d) => d.name === dst.fqdn!.name)!;
    const via = learnThroughDNS(engine, sc, src.peer, rec.name, nowMs - 1);
    if (via !== undefined) engine.learnDNS(rec.name, rec.ips, rec.ttl, nowMs - 1);
    fqdn = { ...dst.fqdn, learnt: via !== undefined, ...(via !== undefined ? { via } : {}) };
  }
  const verdict = engine.decide(request, nowMs);
  const out: TraceResult = {
    src: describePeer(engine, peerRef(input.from, 'from'), src.peer),
    dst: describePeer(engine, peerRef(input.to, 'to'), dst.peer),
    request,
    verdict,
  };
  if (fqdn) out.fqdn = fqdn;
  return out;
}

/**
 * Cilium's toFQDNs knows an IP only after the source's lookup passed a DNS L7 rule. Looks for a
 * DNS server (any endpoint, port 53 UDP) the source may query for `name` through such a rule.
 */
function learnThroughDNS(
  engine: PolicyEngineAPI,
  sc: Scenario,
  src: PeerRef,
  name: string,
  now: number,
): string | undefined {
  for (const ep of sc.endpoints) {
    const dst = peerForEndpoint(ep);
    const v = engine.decide(
      { src, dst, protocol: 'UDP', dport: 53, l7: { kind: 'dns', query: name, qtype: 'A' } },
      now,
    );
    if (v.allowed && v.egress?.l7?.parser === 'dns' && v.egress.l7.allowed) return peerLabel(dst);
  }
  return undefined;
}

function describePeer(engine: PolicyEngineAPI, ref: string, peer: PeerRef): TracePeer {
  const identity = engine.identityOf(peer);
  return { ref, peer, identity, labels: engine.labelsOf(identity) };
}

/** CIDR identities carry one label per prefix length; the most specific one says enough. */
function shortLabels(labels: readonly string[]): string {
  const cidr = labels.filter((l) => l.startsWith('cidr:'));
  if (cidr.length <= 2) return labels.join(', ') || '(no labels)';
  const bits = (l: string) => Number(l.slice(l.lastIndexOf('/') + 1)) || 0;
  const best = cidr.reduce((a, b) => (bits(b) > bits(a) ? b : a));
  const rest = labels.filter((l) => !l.startsWith('cidr:'));
  return [best, ...rest].join(', ') + ` (+${cidr.length - 1} broader cidr: labels)`;
}

function describeRequest(r: FlowRequest): string {
  const port =
    r.dport !== undefined
      ? `${r.dport}/${r.protocol}`
      : r.icmp
        ? `${r.protocol} type ${r.icmp.type}`
        : r.protocol;
  const l7 = r.l7;
  if (!l7) return port;
  switch (l7.kind) {
    case 'http':
      return `${port} ${l7.grpc ? 'gRPC' : 'HTTP'} ${l7.method} ${l7.path}${l7.host ? ` (host ${l7.host})` : ''}`;
    case 'kafka':
      return `${port} Kafka apiKey ${l7.apiKey} v${l7.apiVersion} clientID "${l7.clientID}" topics [${l7.topics.join(', ')}]`;
    case 'dns':
      return `${port} DNS ${l7.qtype} ${l7.query}`;
  }
}

export function formatTrace(t: TraceResult): string {
  const lines: string[] = [];
  const peer = (p: TracePeer) => `${p.ref}${p.ref !== peerLabel(p.peer) ? ` (${peerLabel(p.peer)})` : ''}`;
  lines.push(`Flow: ${peer(t.src)} → ${peer(t.dst)} ${describeRequest(t.request)}`);
  lines.push(`1. Source identity ${t.src.identity}: ${shortLabels(t.src.labels)}`);
  lines.push(`2. Destination identity ${t.dst.identity}: ${shortLabels(t.dst.labels)}`);
  let n = 3;
  if (t.fqdn) {
    lines.push(`${n++}. DNS: ${t.fqdn.name} resolves to ${t.fqdn.ip}`);
    lines.push(
      t.fqdn.learnt
        ? `   the source's lookup through ${t.fqdn.via} passes a DNS rule, so the DNS proxy learns ${t.fqdn.ip} for toFQDNs selectors`
        : `   no DNS rule on the source's egress lets a lookup of ${t.fqdn.name} through to any DNS server: toFQDNs selectors never learn ${t.fqdn.ip}`,
    );
  }
  const v = t.verdict;
  lines.push(`${n++}. Egress:`);
  lines.push(
    ...(v.egress
      ? directionLines(v.egress)
      : ['source is outside the cluster: no egress policy applies']
    ).map((l) => `   ${l}`),
  );
  lines.push(`${n++}. Ingress:`);
  lines.push(
    ...(v.ingress
      ? directionLines(v.ingress)
      : ['destination is outside the cluster: no ingress policy applies']
    ).map((l) => `   ${l}`),
  );
  const audited = (v.decidedBy === 'EGRESS' ? v.egress : v.ingress)?.audited;
  const reason = v.reason
    ? ` (${v.reason})`
    : v.verdict === 'AUDIT' && audited !== undefined
      ? ` (would be ${audited.reason} by ${audited.by.map(formatRuleRef).join('; ') || 'policyEnforcementMode=always'})`
      : '';
  const by = v.decidedBy ? `, decided by ${v.decidedBy.toLowerCase()}` : '';
  lines.push(`Verdict: ${v.verdict}${reason}${by}`);
  return `${lines.join('\n')}\n`;
}
