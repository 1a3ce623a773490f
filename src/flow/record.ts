// Builds Hubble flow records from the engine's verdicts. One record per policy verdict on a new
// connection, for the direction that decided (or the one the kernel observed).

import { createHash, randomUUID } from 'node:crypto';
import type {
  DirectionDecision,
  FlowRequest,
  PeerRef,
  PolicyEngineAPI,
  RuleRef,
  TrafficDirection,
  Verdict,
} from '../policy/types.ts';
import {
  DROP_REASON,
  type DropReasonName,
  type Flow,
  type FlowEndpoint,
  type FlowEthernet,
  type FlowLayer4,
  type FlowPolicy,
  type FlowVerdict,
  MESSAGE_TYPE,
  POLICY_MATCH,
  type TCPFlags,
  type Workload,
} from './types.ts';

/** A time with nanosecond precision (what protobuf's Timestamp holds). */
export interface Timestamp {
  seconds: number;
  nanos: number;
}

export function timestampOf(t: Date | Timestamp): Timestamp {
  if (t instanceof Date) {
    const ms = t.getTime();
    const seconds = Math.floor(ms / 1000);
    return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
  }
  return t;
}

let lastSeconds = Number.NaN;
let lastBase = '';

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protojson prints a Timestamp. */
export function formatTimestamp(t: Date | Timestamp): string {
  const { seconds, nanos } = timestampOf(t);
  // kernel events come many per second: the date part is made once per second
  if (seconds !== lastSeconds) {
    lastSeconds = seconds;
    lastBase = new Date(seconds * 1000).toISOString().slice(0, 19);
  }
  const base = lastBase;
  if (nanos === 0) return `${base}Z`;
  let frac = String(nanos).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${base}.${frac}Z`;
}

export interface FlowMeta {
  time: Date | Timestamp;
  nodeName: string;
  srcIP: string;
  dstIP: string;
  sport?: number;
  dport?: number;
  /** The direction whose policy hook saw the packet; default: the verdict's deciding direction. */
  observationDirection?: TrafficDirection;
  /** The kernel's verdict when it differs from the engine's (a redirect, or a live/offline mismatch). */
  verdictOverride?: FlowVerdict;
  /** The kernel's drop reason (its log prefix says deny or denied). */
  dropReasonOverride?: DropReasonName;
  /** Endpoint IDs (the numeric ids the datapath logs) of local endpoints. */
  srcEndpointID?: number;
  dstEndpointID?: number;
  tcpFlags?: TCPFlags;
  icmpCode?: number;
  ethernet?: FlowEthernet;
  /** Deterministic ids for golden tests; random otherwise. */
  uuid?: string;
  /** Revision of the policy repository when the verdict was taken. */
  policyRevision?: number;
  /** Emit a drop event (type 1) instead of a policy-verdict event (type 5). */
  eventKind?: 'policy-verdict' | 'drop';
  /** The match type as the datapath's lookup found it (L3-Proto, Proto-only), over the engine's. */
  policyMatchOverride?: number;
  /** The owners (a Deployment, ...) of the source and destination pods. */
  srcWorkloads?: Workload[];
  dstWorkloads?: Workload[];
}

const MATCH_NUMBER: Record<DirectionDecision['matchType'], number> = {
  NONE: POLICY_MATCH.NONE,
  L3_ONLY: POLICY_MATCH.L3_ONLY,
  L3_L4: POLICY_MATCH.L3_L4,
  L4_ONLY: POLICY_MATCH.L4_ONLY,
  ALL: POLICY_MATCH.ALL,
};

function ipVersion(ip: string): 'IPv4' | 'IPv6' {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

/** A Flow endpoint: the peer (absent: only its identity is known) with its identity's labels. */
export function endpointOf(
  engine: PolicyEngineAPI,
  peer: PeerRef | undefined,
  identity: number,
  id: number | undefined,
  workloads?: readonly Workload[],
): FlowEndpoint {
  const ep: FlowEndpoint = {};
  if (id !== undefined && id !== 0 && (peer === undefined || peer.kind === 'endpoint')) ep.ID = id;
  if (identity !== 0) ep.identity = identity;
  if (peer?.kind === 'endpoint') {
    ep.cluster_name = engine.config.clusterName;
    ep.namespace = peer.namespace;
  }
  const labels = identity !== 0 ? [...engine.labelsOf(identity)].sort() : [];
  if (labels.length > 0) ep.labels = labels;
  if (peer?.kind === 'endpoint') ep.pod_name = peer.name;
  if (peer?.kind === 'endpoint' && workloads !== undefined && workloads.length > 0)
    ep.workloads = workloads.map((w) => ({ name: w.name, kind: w.kind }));
  return ep;
}

/**
 * The uid Kubernetes would give the policy object. Seawall reads policies from files, which carry
 * none, so one is derived from kind/namespace/name (a name-based UUID, RFC 4122 version 5 layout):
 * stable across restarts and the same on every node, as a real uid is for one object.
 */
export function policyUID(ref: Pick<RuleRef, 'kind' | 'namespace' | 'name'>): string {
  const key = `${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
  let u = policyUIDs.get(key);
  if (u === undefined) {
    const h = createHash('sha1').update(`seawall-policy:${key}`).digest();
    h[6] = (h[6]! & 0x0f) | 0x50;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const x = h.subarray(0, 16).toString('hex');
    u = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
    policyUIDs.set(key, u);
  }
  return u;
}
const policyUIDs = new Map<string, string>();

/**
 * Cilium's policy labels (io.cilium.k8s.policy.derived-from, name, namespace, uid), sorted as
 * Cilium sorts a label array.
 */
function policyLabels(ref: RuleRef): string[] {
  const out = [
    `k8s:io.cilium.k8s.policy.derived-from=${ref.kind}`,
    `k8s:io.cilium.k8s.policy.name=${ref.name}`,
  ];
  if (ref.namespace !== undefined) out.push(`k8s:io.cilium.k8s.policy.namespace=${ref.namespace}`);
  out.push(`k8s:io.cilium.k8s.policy.uid=${policyUID(ref)}`);
  return out.sort();
}

/**
 * The agent's own allow-localhost entry: Cilium labels it
 * `reserved:io.cilium.policy.derived-from=allow-localhost-ingress` and gives it no name or kind.
 */
const ALLOW_LOCALHOST_LABEL = 'reserved:io.cilium.policy.derived-from=allow-localhost-ingress';
function isAllowLocalhost(r: RuleRef): boolean {
  return r.kind === 'AgentConfig' && r.name === 'allow-localhost';
}

/** One Policy per distinct kind/namespace/name, in first-seen order. */
export function policiesOf(refs: readonly RuleRef[], revision?: number): FlowPolicy[] {
  const seen = new Set<string>();
  const out: FlowPolicy[] = [];
  for (const r of refs) {
    const key = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (isAllowLocalhost(r)) {
      const p = { labels: [ALLOW_LOCALHOST_LABEL] } as FlowPolicy;
      if (revision !== undefined && revision !== 0) p.revision = String(revision);
      out.push(p);
      continue;
    }
    const p: FlowPolicy = { name: r.name };
    if (r.namespace !== undefined) p.namespace = r.namespace;
    p.labels = policyLabels(r);
    if (revision !== undefined && revision !== 0) p.revision = String(revision);
    p.kind = r.kind;
    out.push(p);
  }
  return out;
}

function layer4(req: FlowRequest, meta: FlowMeta): FlowLayer4 | undefined {
  const ports = (): { source_port?: number; destination_port?: number } => {
    const p: { source_port?: number; destination_port?: number } = {};
    if (meta.sport) p.source_port = meta.sport;
    const dport = meta.dport ?? req.dport;
    if (dport) p.destination_port = dport;
    return p;
  };
  switch (req.protocol) {
    case 'TCP':
      return { TCP: { ...ports(), flags: meta.tcpFlags ?? { SYN: true } } };
    case 'UDP':
      return { UDP: ports() };
    case 'SCTP':
      return { SCTP: ports() };
    case 'ICMP':
    case 'ICMPv6': {
      const icmp: { type?: number; code?: number } = {};
      if (req.icmp?.type) icmp.type = req.icmp.type;
      if (meta.icmpCode) icmp.code = meta.icmpCode;
      const v6 = req.protocol === 'ICMPv6' || req.icmp?.family === 'IPv6';
      return v6 ? { ICMPv6: icmp } : { ICMPv4: icmp };
    }
  }
  return undefined;
}

// Type and code names as Hubble prints them (gopacket's ICMPv4TypeCode/ICMPv6TypeCode String()).
const ICMP4: Record<number, [string, Record<number, string>?]> = {
  0: ['EchoReply'],
  3: [
    'DestinationUnreachable',
    {
      0: 'Net',
      1: 'Host',
      2: 'Protocol',
      3: 'Port',
      4: 'FragmentationNeeded',
      5: 'SourceRoutingFailed',
      6: 'NetUnknown',
      7: 'HostUnknown',
      8: 'SourceIsolated',
      9: 'NetAdminProhibited',
      10: 'HostAdminProhibited',
      11: 'NetTOS',
      12: 'HostTOS',
      13: 'CommAdminProhibited',
      14: 'HostPrecedence',
      15: 'PrecedenceCutoff',
    },
  ],
  4: ['SourceQuench'],
  5: ['Redirect', { 0: 'Net', 1: 'Host', 2: 'TOS+Net', 3: 'TOS+Host' }],
  8: ['EchoRequest'],
  9: ['RouterAdvertisement'],
  10: ['RouterSolicitation'],
  11: ['TimeExceeded', { 0: 'TTLExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  12: ['ParameterProblem', { 0: 'PointerIndicatesError', 1: 'MissingOption', 2: 'BadLength' }],
  13: ['TimestampRequest'],
  14: ['TimestampReply'],
  15: ['InfoRequest'],
  16: ['InfoReply'],
  17: ['AddressMaskRequest'],
  18: ['AddressMaskReply'],
};
const ICMP6: Record<number, [string, Record<number, string>?]> = {
  1: [
    'DestinationUnreachable',
    {
      0: 'NoRouteToDst',
      1: 'AdminProhibited',
      2: 'BeyondScopeOfSrc',
      3: 'AddressUnreachable',
      4: 'PortUnreachable',
      5: 'SrcAddressFailedPolicy',
      6: 'RejectRouteToDst',
    },
  ],
  2: ['PacketTooBig'],
  3: ['TimeExceeded', { 0: 'HopLimitExceeded', 1: 'FragmentReassemblyTimeExceeded' }],
  4: [
    'ParameterProblem',
    { 0: 'ErroneousHeaderField', 1: 'UnrecognizedNextHeader', 2: 'UnrecognizedIPv6Option' },
  ],
  128: ['EchoRequest'],
  129: ['EchoReply'],
  130: ['MulticastListenerQuery'],
  131: ['MulticastListenerReport'],
  132: ['MulticastListenerDone'],
  133: ['RouterSolicitation'],
  134: ['RouterAdvertisement'],
  135: ['NeighborSolicitation'],
  136: ['NeighborAdvertisement'],
  137: ['Redirect'],
  143: ['MulticastListenerReportV2'],
};

/** `DestinationUnreachable(Port)`, `EchoRequest`, `EchoRequest(Code: 1)`, `42(0)`. */
export function icmpTypeCodeName(family: 'IPv4' | 'IPv6', t: number, c: number): string {
  return icmpTypeCode(family === 'IPv4' ? ICMP4 : ICMP6, t, c);
}

function icmpTypeCode(table: typeof ICMP4, t: number, c: number): string {
  const info = table[t];
  if (info === undefined) return `${t}(${c})`;
  const [name, codes] = info;
  if (codes === undefined) return c === 0 ? name : `${name}(Code: ${c})`;
  const code = codes[c];
  return code === undefined ? `${name}(Code: ${c})` : `${name}(${code})`;
}

// Hubble's order (threefour parser, getTCPFlags): SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS.
const FLAG_ORDER: (keyof TCPFlags)[] = ['SYN', 'ACK', 'RST', 'FIN', 'PSH', 'URG', 'ECE', 'CWR', 'NS'];

/** Hubble's one-line Summary: "TCP Flags: SYN, ACK", "UDP", "ICMPv4 DestinationUnreachable(Port)". */
export function summaryOf(l4: FlowLayer4 | undefined): string {
  if (l4 === undefined) return '';
  if ('TCP' in l4) {
    const f = l4.TCP.flags ?? {};
    const names = FLAG_ORDER.filter((k) => f[k]);
    return `TCP Flags: ${names.join(', ')}`;
  }
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  if ('ICMPv4' in l4) return `ICMPv4 ${icmpTypeCode(ICMP4, l4.ICMPv4.type ?? 0, l4.ICMPv4.code ?? 0)}`;
  return `ICMPv6 ${icmpTypeCode(ICMP6, l4.ICMPv6.type ?? 0, l4.ICMPv6.code ?? 0)}`;
}

/**
 * The Hubble verdict of the L3/L4 policy decision: an L7-redirected connection is REDIRECTED, an
 * audited one (policy would drop it, audit mode lets it pass) AUDIT.
 */
export function flowVerdictOf(v: Verdict, d: DirectionDecision | undefined): FlowVerdict {
  if (v.verdict === 'AUDIT') return 'AUDIT';
  if (v.reason === 'L7_DENIED' || d?.l7 !== undefined) return 'REDIRECTED';
  return v.allowed ? 'FORWARDED' : 'DROPPED';
}

/**
 * The flow record of one policy verdict. The direction is the kernel's observation point when
 * known, else the engine's deciding direction (ingress when both allow).
 */
export function flowFromVerdict(
  engine: PolicyEngineAPI,
  req: FlowRequest,
  verdict: Verdict,
  meta: FlowMeta,
): Flow {
  const direction: TrafficDirection = meta.observationDirection ?? verdict.decidedBy ?? 'INGRESS';
  const decision = direction === 'INGRESS' ? verdict.ingress : verdict.egress;
  const fv = meta.verdictOverride ?? flowVerdictOf(verdict, decision);
  const dropped = fv === 'DROPPED';
  const engineReason =
    (decision?.reason ?? verdict.reason) === 'POLICY_DENY' ? 'POLICY_DENY' : 'POLICY_DENIED';
  const reason: DropReasonName | undefined = dropped ? (meta.dropReasonOverride ?? engineReason) : undefined;

  // Keys are assigned in flow.proto's field order, as protojson prints them.
  const flow = {
    time: formatTimestamp(meta.time),
    uuid: meta.uuid ?? randomUUID(),
    verdict: fv,
  } as Flow;
  if (reason !== undefined) flow.drop_reason = DROP_REASON[reason];
  if (meta.ethernet !== undefined) flow.ethernet = meta.ethernet;
  flow.IP = { source: meta.srcIP, destination: meta.dstIP, ipVersion: ipVersion(meta.srcIP) };
  const l4 = layer4(req, meta);
  if (l4 !== undefined) flow.l4 = l4;
  flow.source = endpointOf(engine, req.src, verdict.srcIdentity, meta.srcEndpointID, meta.srcWorkloads);
  flow.destination = endpointOf(engine, req.dst, verdict.dstIdentity, meta.dstEndpointID, meta.dstWorkloads);
  flow.Type = 'L3_L4';
  flow.node_name = meta.nodeName;
  flow.event_type =
    meta.eventKind === 'drop' && reason !== undefined
      ? { type: MESSAGE_TYPE.DROP, sub_type: DROP_REASON[reason] }
      : { type: MESSAGE_TYPE.POLICY_VERDICT };
  flow.traffic_direction = direction;
  const match =
    meta.policyMatchOverride ??
    (decision !== undefined ? MATCH_NUMBER[decision.matchType] : POLICY_MATCH.NONE);
  if (match !== 0 && meta.eventKind !== 'drop') flow.policy_match_type = match;
  if (reason !== undefined) flow.drop_reason_desc = reason;
  // Cilium's parser: is_reply false on a forwarded policy verdict, absent on a denied one and on drops
  if (!dropped && meta.eventKind !== 'drop') flow.is_reply = false;
  flow.Summary = summaryOf(l4);

  // Cilium correlates policies on policy verdicts only (policy/correlation CorrelatePolicy)
  if (decision !== undefined && meta.eventKind !== 'drop') {
    const allowed = policiesOf(decision.allowedBy, meta.policyRevision);
    // AUDIT: the policies that would have denied it (Hubble names them in *_denied_by)
    const deniers =
      fv === 'AUDIT' && decision.audited !== undefined ? decision.audited.by : decision.deniedBy;
    const denied = policiesOf(deniers, meta.policyRevision);
    const prefix = direction === 'INGRESS' ? 'ingress' : 'egress';
    if (allowed.length > 0 && !dropped) flow[`${prefix}_allowed_by`] = allowed;
    if (denied.length > 0) flow[`${prefix}_denied_by`] = denied;
  }
  return flow;
}

/** What the kernel alone says about a packet the engine cannot judge (see flowFromKernelOnly). */
export interface KernelOnlyMeta {
  time: Date | Timestamp;
  nodeName: string;
  verdict: FlowVerdict;
  /** Required for DROPPED. */
  dropReason?: DropReasonName;
  direction: TrafficDirection;
  /** Absent when the packet's addresses are unknown (a bare IP header). */
  ip?: { source: string; destination: string };
  l4?: FlowLayer4;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  /** A drop event (type 1, drop reason as sub type) rather than a policy verdict (type 5). */
  eventKind?: 'policy-verdict' | 'drop';
  uuid?: string;
}

/**
 * The record of a packet with no engine verdict behind it: a protocol the engine has no name for,
 * a header cut short (no ports), an anti-spoofing drop. Same shape as flowFromVerdict's, without
 * policy fields (no match type, no *_allowed_by / *_denied_by); no l4 when the protocol or its
 * header is unknown, as Hubble does.
 */
export function flowFromKernelOnly(m: KernelOnlyMeta): Flow {
  const dropped = m.verdict === 'DROPPED';
  const reason = dropped ? (m.dropReason ?? 'POLICY_DENIED') : undefined;
  const flow = { time: formatTimestamp(m.time), uuid: m.uuid ?? randomUUID(), verdict: m.verdict } as Flow;
  if (reason !== undefined) flow.drop_reason = DROP_REASON[reason];
  if (m.ip !== undefined) flow.IP = { ...m.ip, ipVersion: ipVersion(m.ip.source) };
  if (m.l4 !== undefined) flow.l4 = m.l4;
  flow.source = m.source;
  flow.destination = m.destination;
  flow.Type = 'L3_L4';
  flow.node_name = m.nodeName;
  flow.event_type =
    m.eventKind === 'drop' && reason !== undefined
      ? { type: MESSAGE_TYPE.DROP, sub_type: DROP_REASON[reason] }
      : { type: MESSAGE_TYPE.POLICY_VERDICT };
  flow.traffic_direction = m.direction;
  if (reason !== undefined) flow.drop_reason_desc = reason;
  if (!dropped && m.eventKind !== 'drop') flow.is_reply = false;
  const summary = summaryOf(m.l4);
  if (summary !== '') flow.Summary = summary;
  return flow;
}
