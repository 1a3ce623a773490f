// Conntrack events → Hubble trace events (type 4), as Cilium emits them at its default monitor
// aggregation (`medium`): a trace when a connection's state changes, not one per packet. The
// kernel's conntrack in the node namespace says when a connection starts (NEW: the original
// direction's first packet), when its first reply passes (TCP SYN_RECV: the SYN-ACK; UDP/ICMP:
// the update that clears UNREPLIED) and when the handshake completes (TCP ESTABLISHED: the
// original direction's first ACK). Each of these is one trace event with Cilium's fields:
// verdict FORWARDED, `trace_observation_point` TO_ENDPOINT (delivered to a local pod) or TO_STACK
// (handed to the node's stack: the host, the world), `is_reply` (and the deprecated `reply`) from
// the direction, and `traffic_direction` by Cilium's rule for traces (threefour parser,
// decodeTrafficDirection: EGRESS when "the emitting endpoint is the packet's source" differs from
// "the packet is a reply").
//
// Not emitted (Cilium's medium level does): the traces of FIN/RST and of the first PSH per
// direction (conntrack's FIN states do not say which side sent the FIN) and the periodic report
// of a long connection (CT_REPORT_INTERVAL). Denied packets make no conntrack entry: their
// records are the policy verdict and the drop.
//
// The input is `conntrack -E -o timestamp,id` lines (conntrack-tools); parsing is pure.

import type { PeerRef, PolicyEngineAPI } from '../policy/types.ts';
import { layer4From } from './kernel.ts';
import { endpointOf, formatTimestamp, summaryOf } from './record.ts';
import {
  type Flow,
  MESSAGE_TYPE,
  type TCPFlags,
  type TraceObservationPoint,
  type Workload,
} from './types.ts';

export type ConntrackEventType = 'NEW' | 'UPDATE' | 'DESTROY';

export interface ConntrackTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  /** ICMP type and code (and echo id). */
  icmp?: { type: number; code: number };
}

export interface ConntrackEvent {
  time: { seconds: number; nanos: number };
  type: ConntrackEventType;
  /** IANA protocol number. */
  proto: number;
  /** TCP state (SYN_SENT, SYN_RECV, ESTABLISHED, ...); absent for other protocols. */
  state?: string;
  /** No reply seen yet. */
  unreplied: boolean;
  orig: ConntrackTuple;
  reply: ConntrackTuple;
  /** The kernel's conntrack id (unique while the entry lives). */
  id: number;
}

const PROTO_NUMBER: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, sctp: 132, icmpv6: 58 };

/**
 * One line of `conntrack -E -o timestamp,id`:
 * `[1796124558.341005]\t    [NEW] tcp      6 120 SYN_SENT src=… dst=… sport=… dport=… [UNREPLIED] src=… … id=808724389`.
 * Undefined for anything else (the summary line at exit, another family).
 */
export function parseConntrackLine(line: string): ConntrackEvent | undefined {
  const m = /^\[(\d+)\.(\d{1,9})\]\s+\[(NEW|UPDATE|DESTROY)\]\s+(\S+)\s+(\d+)\s+(.*)$/.exec(line.trim());
  if (m === null) return undefined;
  const proto = Number(m[5]);
  if (PROTO_NUMBER[m[4]!] !== undefined && PROTO_NUMBER[m[4]!] !== proto) return undefined;
  const words = m[6]!.split(/\s+/);
  let i = 0;
  // DESTROY lines carry no timeout; NEW/UPDATE start with it
  if (/^\d+$/.test(words[0] ?? '')) i++;
  let state: string | undefined;
  if (words[i] !== undefined && /^[A-Z_]+$/.test(words[i]!)) state = words[i++];
  const tuples: ConntrackTuple[] = [];
  let cur: Partial<ConntrackTuple> & { type?: number; code?: number } = {};
  let unreplied = false;
  let id: number | undefined;
  const flush = (): void => {
    if (cur.src === undefined || cur.dst === undefined) return;
    const t: ConntrackTuple = { src: cur.src, dst: cur.dst };
    if (cur.sport !== undefined) t.sport = cur.sport;
    if (cur.dport !== undefined) t.dport = cur.dport;
    if (cur.type !== undefined) t.icmp = { type: cur.type, code: cur.code ?? 0 };
    tuples.push(t);
    cur = {};
  };
  for (; i < words.length; i++) {
    const w = words[i]!;
    if (w === '[UNREPLIED]') {
      unreplied = true;
      continue;
    }
    if (w.startsWith('[')) continue; // [ASSURED], [OFFLOAD], ...
    const eq = w.indexOf('=');
    if (eq < 0) continue;
    const k = w.slice(0, eq);
    const v = w.slice(eq + 1);
    if (k === 'src') {
      flush();
      cur.src = v;
    } else if (k === 'dst') cur.dst = v;
    else if (k === 'sport') cur.sport = Number(v);
    else if (k === 'dport') cur.dport = Number(v);
    else if (k === 'type') cur.type = Number(v);
    else if (k === 'code') cur.code = Number(v);
    // the entry's id is the last word; an ICMP tuple's `id=` (the echo id) comes before it
    else if (k === 'id' && i === words.length - 1) id = Number(v);
  }
  flush();
  if (tuples.length !== 2 || id === undefined || !Number.isFinite(id)) return undefined;
  const nanos = Number(m[2]!.padEnd(9, '0'));
  const ev: ConntrackEvent = {
    time: { seconds: Number(m[1]), nanos },
    type: m[3] as ConntrackEventType,
    proto,
    unreplied,
    orig: tuples[0]!,
    reply: tuples[1]!,
    id,
  };
  if (state !== undefined && proto === 6) ev.state = state;
  return ev;
}

/** One trace event to emit: which direction the packet went and its TCP flags. */
export interface TracePoint {
  reply: boolean;
  flags?: TCPFlags;
}

/** Connections whose first reply was reported, bounded (oldest forgotten first). */
const MAX_TRACKED = 65536;

/**
 * Which trace events a conntrack event stands for; remembers per connection what was reported,
 * so an UPDATE that changes nothing Cilium would trace (a timeout refresh) gives none.
 */
export class ConntrackTracer {
  private readonly replied = new Map<number, true>();

  points(ev: ConntrackEvent): TracePoint[] {
    if (ev.type === 'DESTROY') {
      this.replied.delete(ev.id);
      return [];
    }
    if (ev.type === 'NEW') {
      this.replied.delete(ev.id); // an id is reused only after its entry went
      return [{ reply: false, ...(ev.proto === 6 ? { flags: { SYN: true } } : {}) }];
    }
    if (ev.proto === 6) {
      if (ev.state === 'SYN_RECV' && this.remember(ev.id))
        return [{ reply: true, flags: { SYN: true, ACK: true } }];
      if (ev.state === 'ESTABLISHED') {
        // a SYN_RECV we missed (the tracer started mid-handshake) still gets its reply trace
        const first = this.remember(ev.id);
        const ack: TracePoint = { reply: false, flags: { ACK: true } };
        return first ? [{ reply: true, flags: { SYN: true, ACK: true } }, ack] : this.once(ev.id, ack);
      }
      return [];
    }
    if (!ev.unreplied && this.remember(ev.id)) return [{ reply: true }];
    return [];
  }

  private readonly established = new Set<number>();
  private once(id: number, p: TracePoint): TracePoint[] {
    if (this.established.has(id)) return [];
    this.established.add(id);
    if (this.established.size > MAX_TRACKED) this.established.delete(this.established.values().next().value!);
    return [p];
  }

  /** True the first time for this id. */
  private remember(id: number): boolean {
    if (this.replied.has(id)) return false;
    this.replied.set(id, true);
    if (this.replied.size > MAX_TRACKED) this.replied.delete(this.replied.keys().next().value!);
    return true;
  }
}

export interface TraceRecordOptions {
  nodeName: string;
  resolve: (ip: string) => PeerRef;
  endpointIdOf?: (peer: PeerRef) => number | undefined;
  workloadsOf?: (peer: PeerRef) => readonly Workload[] | undefined;
  uuid?: string;
}

/** Cilium's observation point numbers (pkg/monitor/api TraceToLxc = 0, TraceToStack = 3). */
const OBS_NUMBER: Partial<Record<TraceObservationPoint, number>> = { TO_ENDPOINT: 0, TO_STACK: 3 };

/**
 * The trace record of one packet of a connection, or undefined when neither side is a local pod
 * (the node's own traffic: Cilium's endpoint programs do not see it).
 */
export function traceRecordOf(
  engine: PolicyEngineAPI,
  ev: ConntrackEvent,
  point: TracePoint,
  o: TraceRecordOptions,
): Flow | undefined {
  const t = point.reply ? ev.reply : ev.orig;
  const src = o.resolve(t.src);
  const dst = o.resolve(t.dst);
  const srcId = src.kind === 'endpoint' ? o.endpointIdOf?.(src) : undefined;
  const dstId = dst.kind === 'endpoint' ? o.endpointIdOf?.(dst) : undefined;
  if (srcId === undefined && dstId === undefined) return undefined;
  // delivered to a local pod, else handed to the stack by the sending pod
  const obs: TraceObservationPoint = dstId !== undefined ? 'TO_ENDPOINT' : 'TO_STACK';
  const emitter = dstId !== undefined ? dstId : srcId;
  const direction = (emitter === srcId) !== point.reply ? 'EGRESS' : 'INGRESS';
  const l4 = layer4From(ev.proto, t, point.flags);
  const flow = {
    time: formatTimestamp(ev.time),
    uuid: o.uuid ?? crypto.randomUUID(),
    verdict: 'FORWARDED',
  } as Flow;
  flow.IP = { source: t.src, destination: t.dst, ipVersion: t.src.includes(':') ? 'IPv6' : 'IPv4' };
  if (l4 !== undefined) flow.l4 = l4;
  flow.source = endpointOf(engine, src, engine.identityOf(src), srcId, o.workloadsOf?.(src));
  flow.destination = endpointOf(engine, dst, engine.identityOf(dst), dstId, o.workloadsOf?.(dst));
  flow.Type = 'L3_L4';
  flow.node_name = o.nodeName;
  if (point.reply) flow.reply = true;
  const sub = OBS_NUMBER[obs]!;
  flow.event_type = sub === 0 ? { type: MESSAGE_TYPE.TRACE } : { type: MESSAGE_TYPE.TRACE, sub_type: sub };
  flow.traffic_direction = direction;
  flow.trace_observation_point = obs;
  flow.is_reply = point.reply;
  const summary = summaryOf(l4);
  if (summary !== '') flow.Summary = summary;
  return flow;
}
