// Builds Hubble flow records from the engine's verdicts. One record per policy verdict on a new
// connection, for the direction that decided (or the one the kernel observed).

import { randomUUID } from 'node:crypto';
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

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protojson prints a Timestamp. */
export function formatTimestamp(t: Date | Timestamp): string {
  const { seconds, nanos } = timestampOf(t);
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
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
  return ep;
}

/** Cilium's policy labels (io.cilium.k8s.policy.*), sorted as Cilium sorts a label array. */
function policyLabels(ref: RuleRef): string[] {
  const out = [
    `k8s:io.cilium.k8s.policy.derived-from=${ref.kind}`,
    `k8s:io.cilium.k8s.policy.name=${ref.name}`,
  ];
  if (ref.namespace !== undefined) out.push(`k8s:io.cilium.k8s.policy.namespace=${ref.namespace}`);
  return out.sort();
}

/** One Policy per distinct kind/namespace/name, in first-seen order. */
export function policiesOf(refs: readonly RuleRef[], revision?: number): FlowPolicy[] {
  const seen = new Set<string>();
  const out: FlowPolicy[] = [];
  for (const r of refs) {
    const key = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
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

const ICMP4_NAMES: Record<number, string> = {
  0: 'EchoReply',
  3: 'DestinationUnreachable',
  5: 'Redirect',
  8: 'EchoRequest',
  11: 'TimeExceeded',
  13: 'TimestampRequest',
  14: 'TimestampReply',
};
const ICMP6_NAMES: Record<number, string> = {
  1: 'DestinationUnreachable',
  3: 'TimeExceeded',
  128: 'EchoRequest',
  129: 'EchoReply',
  135: 'NeighborSolicitation',
  136: 'NeighborAdvertisement',
};
const FLAG_ORDER: (keyof TCPFlags)[] = ['SYN', 'FIN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

/** Hubble's one-line Summary: "TCP Flags: SYN", "UDP", "ICMPv4 EchoRequest". */
export function summaryOf(l4: FlowLayer4 | undefined): string {
  if (l4 === undefined) return '';
  if ('TCP' in l4) {
    const f = l4.TCP.flags ?? {};
    const names = FLAG_ORDER.filter((k) => f[k]);
    return `TCP Flags: ${names.join(', ')}`;
  }
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  if ('ICMPv4' in l4) {
    const t = l4.ICMPv4.type ?? 0;
    return `ICMPv4 ${ICMP4_NAMES[t] ?? `Type${t}`}`;
  }
  const t = l4.ICMPv6.type ?? 0;
  return `ICMPv6 ${ICMP6_NAMES[t] ?? `Type${t}`}`;
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
  flow.source = endpointOf(engine, req.src, verdict.srcIdentity, meta.srcEndpointID);
  flow.destination = endpointOf(engine, req.dst, verdict.dstIdentity, meta.dstEndpointID);
  flow.Type = 'L3_L4';
  flow.node_name = meta.nodeName;
  flow.event_type =
    meta.eventKind === 'drop' && reason !== undefined
      ? { type: MESSAGE_TYPE.DROP, sub_type: DROP_REASON[reason] }
      : { type: MESSAGE_TYPE.POLICY_VERDICT };
  flow.traffic_direction = direction;
  const match = decision !== undefined ? MATCH_NUMBER[decision.matchType] : POLICY_MATCH.NONE;
  if (match !== 0) flow.policy_match_type = match;
  if (reason !== undefined) flow.drop_reason_desc = reason;
  flow.is_reply = false;
  flow.Summary = summaryOf(l4);

  if (decision !== undefined) {
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
  flow.is_reply = false;
  const summary = summaryOf(m.l4);
  if (summary !== '') flow.Summary = summary;
  return flow;
}
