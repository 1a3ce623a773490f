// Kernel event → flow record: the kernel says what happened to the packet (its verdict is the
// truth of the live path); the engine says why (the policies that allowed or denied it).
// Disagreement between the two is reported, never hidden: it means the datapath is wrong.

import { randomUUID } from 'node:crypto';
import type {
  FlowProtocol,
  FlowRequest,
  MapStateEntry,
  PeerRef,
  PolicyEngineAPI,
  TrafficDirection,
} from '../policy/types.ts';
import type { KernelEvent, KernelVerdict } from './nflog.ts';
import { endpointOf, type FlowMeta, flowFromKernelOnly, flowFromVerdict, formatTimestamp } from './record.ts';
import { registerTemplate, type Shape, sameShape, shapedCopy } from './template.ts';
import {
  type DropReasonName,
  type Flow,
  type FlowEndpoint,
  type FlowLayer4,
  type FlowVerdict,
  POLICY_MATCH,
  type TCPFlags,
  type Workload,
} from './types.ts';

const PROTOCOL: Record<number, FlowProtocol> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

export const KERNEL_VERDICT: Record<KernelVerdict, FlowVerdict> = {
  fwd: 'FORWARDED',
  redir: 'REDIRECTED',
  deny: 'DROPPED',
  denied: 'DROPPED',
  spoof: 'DROPPED',
  audit: 'AUDIT',
};

const KERNEL_REASON: Partial<Record<KernelVerdict, DropReasonName>> = {
  deny: 'POLICY_DENY',
  denied: 'POLICY_DENIED',
  spoof: 'INVALID_SOURCE_IP',
};

/** The header was cut short: no ports (TCP, UDP, SCTP) or no type (ICMP), or nothing at all. */
export function truncated(ev: KernelEvent): boolean {
  if (ev.bare) return true;
  if (ev.proto === 6 || ev.proto === 17 || ev.proto === 132) return ev.dport === undefined;
  if (ev.proto === 1 || ev.proto === 58) return ev.icmp === undefined;
  return false;
}

/**
 * The FlowRequest the engine decides for a kernel event; undefined for protocols it has no name
 * for and for cut-short headers (the kernel matched no port; the engine would judge one).
 */
export function flowRequestOf(ev: KernelEvent, src: PeerRef, dst: PeerRef): FlowRequest | undefined {
  const protocol = PROTOCOL[ev.proto];
  if (protocol === undefined || truncated(ev)) return undefined;
  const req: FlowRequest = { src, dst, protocol };
  if (ev.icmp !== undefined) req.icmp = { type: ev.icmp.type, family: ev.proto === 58 ? 'IPv6' : 'IPv4' };
  else if (ev.dport !== undefined) req.dport = ev.dport;
  return req;
}

export interface KernelRecord {
  flow: Flow;
  /**
   * True when the engine, asked about the same flow, reaches the kernel's verdict and reason;
   * also true when it was not asked (`explained` false).
   */
  agrees: boolean;
  engineVerdict: FlowVerdict;
  /**
   * The drop event (type 1, sub_type the drop reason) Cilium sends after the policy verdict of a
   * denied packet: `hubble observe -t drop` finds denials by it. Absent for other verdicts.
   */
  drop?: Flow;
  /**
   * False for packets the engine cannot judge (another IP protocol, a cut-short header, an
   * anti-spoofing drop): the record is the kernel's alone, with no policy explanation.
   */
  explained: boolean;
  /**
   * The shapes (flow/template.ts) of `flow` and `drop` when they are copies of a template, as the
   * copy was made: the flow log's and the gRPC encoder's pieces need no shapeOf.
   */
  shape?: Shape;
  dropShape?: Shape;
}

export interface KernelRecordOptions {
  nodeName: string;
  /** Maps an address to the peer the engine knows (endpoint, entity or plain IP). */
  resolve: (ip: string) => PeerRef;
  /** Endpoint id of a local endpoint by peer, for the ID of the non-subject side. */
  endpointIdOf?: (peer: PeerRef) => number | undefined;
  /**
   * The local endpoint of an id (the NFLOG prefix's): the sender of an anti-spoofing drop, whose
   * source address is forged, and the subject of a bare IP header, which has no addresses.
   */
  endpointById?: (id: number) => PeerRef | undefined;
  policyRevision?: number;
  /** The owners (Deployment, ...) of a local pod, for `workloads`. */
  workloadsOf?: (peer: PeerRef) => readonly Workload[] | undefined;
  /**
   * The MapState of a local pod (the datapath's), to tell L3-Proto and Proto-only matches (port
   * wildcard entries) from L3-L4 and L4-only ones as the datapath's lookup does.
   */
  entriesOf?: (peer: PeerRef) => readonly MapStateEntry[] | undefined;
}

/** The datapath's lookup order (Cilium's policy map): most specific match first. */
const LOOKUP_RANK = (identityWild: boolean, protoWild: boolean, portWild: boolean): number =>
  protoWild ? (identityWild ? 1 : 2) : portWild ? (identityWild ? 3 : 4) : identityWild ? 5 : 6;

/**
 * Cilium's policy_match_type for an allowed packet from the entry its lookup finds: L3-L4 (2),
 * L4-only (3), L3-Proto (5: identity and protocol, any port), Proto-only (6: protocol, any port
 * and peer), L3-only (1), all (4). Undefined when no entry allows it (the engine's answer stands).
 */
export function datapathMatchType(
  entries: readonly MapStateEntry[],
  direction: TrafficDirection,
  peerIdentity: number,
  proto: number,
  port: number | undefined,
): number | undefined {
  let best: { rank: number; type: number } | undefined;
  const fullRange = proto === 1 || proto === 58 ? 255 : 65535;
  for (const e of entries) {
    const k = e.key;
    if (k.direction !== direction || e.verdict === 'deny') continue;
    if (k.identity !== 0 && k.identity !== peerIdentity) continue;
    if (k.proto !== 0 && k.proto !== proto) continue;
    const portWild = k.proto === 0 || (k.portLo === 0 && k.portHi >= fullRange);
    if (!portWild && (port === undefined || port < k.portLo || port > k.portHi)) continue;
    const idWild = k.identity === 0;
    const rank = LOOKUP_RANK(idWild, k.proto === 0, portWild);
    if (best !== undefined && best.rank >= rank) continue;
    const type =
      k.proto === 0
        ? idWild
          ? POLICY_MATCH.ALL
          : POLICY_MATCH.L3_ONLY
        : portWild
          ? idWild
            ? POLICY_MATCH.PROTO_ONLY
            : POLICY_MATCH.L3_PROTO
          : idWild
            ? POLICY_MATCH.L4_ONLY
            : POLICY_MATCH.L3_L4;
    best = { rank, type };
  }
  return best?.type;
}

export function recordFromKernelEvent(
  engine: PolicyEngineAPI,
  ev: KernelEvent,
  o: KernelRecordOptions,
): KernelRecord {
  if (ev.verdict === 'spoof' || ev.bare) return kernelOnlyRecord(engine, ev, o);
  const src = o.resolve(ev.srcIP);
  const dst = o.resolve(ev.dstIP);
  const req = flowRequestOf(ev, src, dst);
  if (req === undefined) return kernelOnlyRecord(engine, ev, o, src, dst);
  const verdict = engine.decide(req, ev.time.seconds * 1000);
  const direction: TrafficDirection = ev.dir === 'in' ? 'INGRESS' : 'EGRESS';
  const kernelVerdict = KERNEL_VERDICT[ev.verdict];
  const decision = direction === 'INGRESS' ? verdict.ingress : verdict.egress;

  let engineVerdict: FlowVerdict;
  let engineReason: DropReasonName | undefined;
  if (decision === undefined) engineVerdict = verdict.allowed ? 'FORWARDED' : 'DROPPED';
  else if (!decision.allowed) engineVerdict = 'DROPPED';
  else if (decision.audited !== undefined) engineVerdict = 'AUDIT';
  else engineVerdict = decision.l7 !== undefined ? 'REDIRECTED' : 'FORWARDED';
  if (engineVerdict === 'DROPPED') {
    engineReason = (decision?.reason ?? verdict.reason) === 'POLICY_DENY' ? 'POLICY_DENY' : 'POLICY_DENIED';
  }
  const kernelReason = KERNEL_REASON[ev.verdict];

  const meta: FlowMeta = {
    time: ev.time,
    nodeName: o.nodeName,
    srcIP: ev.srcIP,
    dstIP: ev.dstIP,
    observationDirection: direction,
    verdictOverride: kernelVerdict,
  };
  if (kernelReason !== undefined) meta.dropReasonOverride = kernelReason;
  if (ev.sport !== undefined) meta.sport = ev.sport;
  if (ev.dport !== undefined) meta.dport = ev.dport;
  if (ev.tcpFlags !== undefined) meta.tcpFlags = ev.tcpFlags;
  if (ev.icmp !== undefined && ev.icmp.code !== 0) meta.icmpCode = ev.icmp.code;
  if (o.policyRevision !== undefined) meta.policyRevision = o.policyRevision;
  const sw = src.kind === 'endpoint' ? o.workloadsOf?.(src) : undefined;
  if (sw !== undefined) meta.srcWorkloads = [...sw];
  const dw = dst.kind === 'endpoint' ? o.workloadsOf?.(dst) : undefined;
  if (dw !== undefined) meta.dstWorkloads = [...dw];
  if (decision?.allowed && (decision.matchType === 'L3_L4' || decision.matchType === 'L4_ONLY')) {
    const subject = direction === 'INGRESS' ? dst : src;
    const entries = subject.kind === 'endpoint' ? o.entriesOf?.(subject) : undefined;
    const peerId = direction === 'INGRESS' ? verdict.srcIdentity : verdict.dstIdentity;
    const port = ev.icmp !== undefined ? ev.icmp.type : ev.dport;
    const m = entries && datapathMatchType(entries, direction, peerId, ev.proto, port);
    if (m === POLICY_MATCH.L3_PROTO || m === POLICY_MATCH.PROTO_ONLY) meta.policyMatchOverride = m;
  }
  const other = o.endpointIdOf?.(direction === 'INGRESS' ? src : dst);
  if (direction === 'INGRESS') {
    meta.dstEndpointID = ev.endpointId;
    if (other !== undefined) meta.srcEndpointID = other;
  } else {
    meta.srcEndpointID = ev.endpointId;
    if (other !== undefined) meta.dstEndpointID = other;
  }
  const flow = flowFromVerdict(engine, req, verdict, meta);
  // Cilium: a policy verdict (type 5) and then a drop notification (type 1) for a denied packet
  const drop =
    flow.verdict === 'DROPPED'
      ? flowFromVerdict(engine, req, verdict, { ...meta, eventKind: 'drop' })
      : undefined;
  // A kernel event never carries an L7 request, so the engine answers FORWARDED where the kernel
  // sent the connection to the proxy (REDIRECTED): at L3/L4 that is the same verdict.
  const sameVerdict =
    engineVerdict === kernelVerdict || (kernelVerdict === 'REDIRECTED' && engineVerdict === 'FORWARDED');
  return {
    flow,
    ...(drop !== undefined ? { drop } : {}),
    agrees: sameVerdict && engineReason === kernelReason,
    engineVerdict,
    explained: true,
  };
}

/** The l4 of a packet whose header was decoded in full; none otherwise (as Hubble). */
function layer4Of(ev: KernelEvent): FlowLayer4 | undefined {
  if (truncated(ev)) return undefined;
  return layer4From(ev.proto, ev, ev.tcpFlags);
}

/**
 * Hubble's l4 for a protocol and its ports (or ICMP type and code): zero fields left out, as
 * protojson does. The one builder of kernel events and conntrack traces.
 */
export function layer4From(
  proto: number,
  t: { sport?: number; dport?: number; icmp?: { type: number; code: number } },
  flags: TCPFlags | undefined,
): FlowLayer4 | undefined {
  const ports = (): { source_port?: number; destination_port?: number } => {
    const p: { source_port?: number; destination_port?: number } = {};
    if (t.sport) p.source_port = t.sport;
    if (t.dport) p.destination_port = t.dport;
    return p;
  };
  switch (proto) {
    case 6:
      return { TCP: { ...ports(), flags: flags ?? {} } };
    case 17:
      return { UDP: ports() };
    case 132:
      return { SCTP: ports() };
    case 1:
    case 58: {
      const icmp: { type?: number; code?: number } = {};
      if (t.icmp?.type) icmp.type = t.icmp.type;
      if (t.icmp?.code) icmp.code = t.icmp.code;
      return proto === 1 ? { ICMPv4: icmp } : { ICMPv6: icmp };
    }
  }
  return undefined;
}

/**
 * The record of a packet the engine cannot judge. Its subject endpoint is the prefix's (the
 * sender for egress, the receiver for ingress); the other side is resolved from its address, or,
 * without addresses (a bare header), known by the identity the chain put in the mark. An
 * anti-spoofing drop names the sending endpoint as its source, never the forged address's owner.
 */
function kernelOnlyRecord(
  engine: PolicyEngineAPI,
  ev: KernelEvent,
  o: KernelRecordOptions,
  src?: PeerRef,
  dst?: PeerRef,
): KernelRecord {
  const direction: TrafficDirection = ev.dir === 'in' ? 'INGRESS' : 'EGRESS';
  const verdict = KERNEL_VERDICT[ev.verdict];
  const subject = ev.verdict === 'spoof' || ev.bare ? o.endpointById?.(ev.endpointId) : undefined;
  const side = (peer: PeerRef | undefined, isSubject: boolean): FlowEndpoint => {
    if (isSubject) {
      const p = subject ?? peer;
      return endpointOf(engine, p, p !== undefined ? engine.identityOf(p) : 0, ev.endpointId);
    }
    if (peer !== undefined) return endpointOf(engine, peer, engine.identityOf(peer), o.endpointIdOf?.(peer));
    // no address: the identity the endpoint chain looked up for the peer (a spoof has none)
    return endpointOf(engine, undefined, ev.verdict === 'spoof' ? 0 : (ev.mark ?? 0), undefined);
  };
  const source = side(src, direction === 'EGRESS');
  const destination = side(ev.bare ? undefined : (dst ?? o.resolve(ev.dstIP)), direction === 'INGRESS');
  const reason = KERNEL_REASON[ev.verdict];
  const m = {
    time: ev.time,
    nodeName: o.nodeName,
    verdict,
    ...(reason !== undefined ? { dropReason: reason } : {}),
    direction,
    ...(ev.bare ? {} : { ip: { source: ev.srcIP, destination: ev.dstIP } }),
    ...(layer4Of(ev) !== undefined ? { l4: layer4Of(ev)! } : {}),
    source,
    destination,
    // Cilium reports an invalid source as a drop notification, not a policy verdict
    eventKind: ev.verdict === 'spoof' ? ('drop' as const) : ('policy-verdict' as const),
  };
  const flow = flowFromKernelOnly(m);
  const drop =
    verdict === 'DROPPED' && m.eventKind === 'policy-verdict'
      ? flowFromKernelOnly({ ...m, eventKind: 'drop' })
      : undefined;
  return {
    flow,
    ...(drop !== undefined ? { drop } : {}),
    agrees: true,
    engineVerdict: verdict,
    explained: false,
  };
}

/** The record of `ev` as a copy of the template `t` of its shape. */
function copyOf(t: KernelRecord, ev: KernelEvent): KernelRecord {
  const time = formatTimestamp(ev.time);
  const c = shapedCopy(t.flow, time, randomUUID(), ev.sport);
  const out: KernelRecord = {
    flow: c.flow,
    agrees: t.agrees,
    engineVerdict: t.engineVerdict,
    explained: t.explained,
  };
  if (c.shape !== undefined) out.shape = c.shape;
  if (t.drop !== undefined) {
    const d = shapedCopy(t.drop, time, randomUUID(), ev.sport);
    out.drop = d.flow;
    if (d.shape !== undefined) out.dropShape = d.shape;
  }
  return out;
}

/** Two records of one shape that say the same (a refreshed template may stay). */
function sameRecord(a: KernelRecord, b: KernelRecord): boolean {
  if (a.agrees !== b.agrees || a.engineVerdict !== b.engineVerdict || a.explained !== b.explained)
    return false;
  if (!sameShape(a.flow, b.flow)) return false;
  return a.drop === undefined ? b.drop === undefined : b.drop !== undefined && sameShape(a.drop, b.drop);
}

interface CacheEntry {
  at: number;
  rev: number | undefined;
  rec: KernelRecord;
}

const VERDICT_INDEX: Record<KernelVerdict, number> = {
  fwd: 0,
  redir: 1,
  deny: 2,
  denied: 3,
  spoof: 4,
  audit: 5,
};

/** Per verdict and direction: endpoint id → source address → destination address → shapes. */
type Kind = Map<number, Map<string, Map<string, Map<number, CacheEntry>>>>;

function freshKinds(): Kind[] {
  return Array.from({ length: 12 }, () => new Map());
}

/** The TCP flags a shape is told apart by, as bits (SYN 1, ACK 2, FIN 4, RST 8, PSH 16, URG 32). */
function flagBits(f: NonNullable<KernelEvent['tcpFlags']>): number {
  return (
    (f.SYN ? 1 : 0) |
    (f.ACK ? 2 : 0) |
    (f.FIN ? 4 : 0) |
    (f.RST ? 8 : 0) |
    (f.PSH ? 16 : 0) |
    (f.URG ? 32 : 0)
  );
}

const isByte = (x: number): boolean => Number.isInteger(x) && x >= 0 && x <= 255;

/**
 * The shape's protocol, destination port or ICMP type and code, TCP flags and whether it has a
 * source port, as one integer (below 2^53); -1 when a field is outside what the kernel writes.
 */
function shapeKey(ev: KernelEvent): number {
  const { proto, dport, icmp } = ev;
  if (!isByte(proto)) return -1;
  let dp = 65536;
  if (dport !== undefined) {
    if (!Number.isInteger(dport) || dport < 0 || dport > 65535) return -1;
    dp = dport;
  }
  let ic = 0;
  if (icmp !== undefined) {
    if (!isByte(icmp.type) || !isByte(icmp.code)) return -1;
    ic = 1 + icmp.type * 256 + icmp.code;
  }
  const flags = ev.tcpFlags === undefined ? 64 : flagBits(ev.tcpFlags);
  return (((proto * 65537 + dp) * 65537 + ic) * 128 + flags) * 2 + (ev.sport ? 0 : 1);
}

/** The whole shape as a string, for events shapeKey cannot number (the policy revision is in the entry). */
function stringKey(ev: KernelEvent): string {
  const flags = ev.tcpFlags === undefined ? '' : flagBits(ev.tcpFlags);
  return `${ev.verdict}|${ev.dir}|${ev.endpointId}|${ev.srcIP}|${ev.dstIP}|${ev.proto}|${ev.dport ?? ''}|${ev.icmp?.type ?? ''}/${ev.icmp?.code ?? ''}|${flags}|${ev.sport ? '' : 'n'}`;
}

/** How long a cached record explains later packets of the same shape (ms). */
export const RECORD_CACHE_TTL_MS = 1000;
/** Shapes kept at most; past it the cache starts again. */
export const RECORD_CACHE_MAX = 8192;

/**
 * Records of kernel events of the same shape (verdict, direction, endpoint, addresses, protocol,
 * destination port or ICMP type/code, TCP flags) under one policy revision differ only in time,
 * uuid and source port: the engine is asked once per shape and second, and later events get a
 * copy with their own time, uuid and port. The kernel's verdict is each event's own; at most the
 * explanation (the policies, the match type) is up to RECORD_CACHE_TTL_MS behind a change the
 * revision does not show (an identity learnt from DNS). A record asked again that says what the
 * kept one said leaves that one the template (flow/template.ts), so the encoders' pieces of its
 * shape live as long as the explanation does.
 */
export class RecordCache {
  /**
   * Kept records by verdict and direction, endpoint, source and destination address, then a
   * number of the rest of the shape (shapeKey): no key string per event (building and hashing one
   * cost most of a cached record's look-up). Events whose fields no number holds go by string.
   */
  private byKind = freshKinds();
  private readonly odd = new Map<string, CacheEntry>();
  private kept = 0;
  hits = 0;
  misses = 0;

  /** The map that holds `ev`'s shape under `key` (a number), or the string-keyed one. */
  private placeOf(ev: KernelEvent, key: number): Map<number | string, CacheEntry> {
    if (key < 0) return this.odd as Map<number | string, CacheEntry>;
    const kind = this.byKind[VERDICT_INDEX[ev.verdict] * 2 + (ev.dir === 'in' ? 0 : 1)]!;
    let bySrc = kind.get(ev.endpointId);
    if (bySrc === undefined) {
      bySrc = new Map();
      kind.set(ev.endpointId, bySrc);
    }
    let byDst = bySrc.get(ev.srcIP);
    if (byDst === undefined) {
      byDst = new Map();
      bySrc.set(ev.srcIP, byDst);
    }
    let shapes = byDst.get(ev.dstIP);
    if (shapes === undefined) {
      shapes = new Map();
      byDst.set(ev.dstIP, shapes);
    }
    return shapes as Map<number | string, CacheEntry>;
  }

  record(
    engine: PolicyEngineAPI,
    ev: KernelEvent,
    o: KernelRecordOptions,
    nowMs: number = Date.now(),
  ): KernelRecord {
    if (ev.bare || ev.verdict === 'spoof') return recordFromKernelEvent(engine, ev, o);
    const n = shapeKey(ev);
    const key = n >= 0 ? n : stringKey(ev);
    const place = this.placeOf(ev, n);
    const rev = o.policyRevision;
    const found = place.get(key);
    // a record of another policy revision is not this one's (revisions only grow)
    const hit = found !== undefined && found.rev === rev ? found : undefined;
    if (hit !== undefined && nowMs - hit.at < RECORD_CACHE_TTL_MS && nowMs >= hit.at) {
      this.hits++;
      return copyOf(hit.rec, ev);
    }
    this.misses++;
    const rec = recordFromKernelEvent(engine, ev, o);
    if (hit !== undefined && sameRecord(hit.rec, rec)) {
      // the same explanation: the template stays, and with it the encoders' pieces of its shape
      hit.at = nowMs;
      return copyOf(hit.rec, ev);
    }
    registerTemplate(rec.flow);
    if (rec.drop !== undefined) registerTemplate(rec.drop);
    if (found === undefined) {
      if (this.kept >= RECORD_CACHE_MAX) {
        this.byKind = freshKinds();
        this.odd.clear();
        this.kept = 0;
        this.placeOf(ev, n).set(key, { at: nowMs, rev, rec });
      } else place.set(key, { at: nowMs, rev, rec });
      this.kept++;
    } else place.set(key, { at: nowMs, rev, rec });
    // the template's own record goes out as a copy too: its shape is its copies' (with the
    // packet's port), so the encoders build one set of pieces per shape, not a second for it
    return copyOf(rec, ev);
  }
}
