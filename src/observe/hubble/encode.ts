// GetFlowsResponse{flow, node_name, time} as framed gRPC bytes, the one message GetFlows sends per
// record. A record copied from a shape's template (flow/template.ts: the same record but for the
// time, uuid and l4 source port) is assembled from that shape's bytes, encoded once: protobuf's
// fields are concatenated in field-number order as protobufjs writes them, so the bytes are the
// slow path's exactly, with only the Timestamps, the uuid and the port pair written per record.

import type protobuf from 'protobufjs';
import type { Timestamp } from '../../flow/record.ts';
import { type Shape, shapeOf } from '../../flow/template.ts';
import type { Flow, FlowEvent } from '../../flow/types.ts';
import { parseRFC3339 } from './protojson.ts';
import { hubbleType } from './schema.ts';

/** A gRPC length-prefixed message: 0 (not compressed), the length (big-endian u32), the bytes. */
export function frameMessage(msg: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(msg.length + 5);
  b[0] = 0;
  b.writeUInt32BE(msg.length, 1);
  b.set(msg, 5);
  return b;
}

/** RFC 3339 → google.protobuf.Timestamp; throws on a time protojson would refuse. */
export function timestamp(rfc3339: string): { seconds: number; nanos: number } {
  const p = parseRFC3339(rfc3339);
  if (typeof p === 'string') throw new Error(p);
  return p;
}

interface Types {
  Flow: protobuf.Type;
  Layer4: protobuf.Type;
  GetFlowsResponse: protobuf.Type;
}

/**
 * A record → flow.Flow for encode(). The records are Seawall's own (checked against flow.proto
 * by the strict protojson test of every kind), so the generated fromObject does the conversion
 * (enum names, nested messages): about twice as fast per flow as the general protojson reader.
 * Only the well-known types need their message shape: time (Timestamp) and is_reply (BoolValue).
 */
function flowMessage(t: Types, f: Flow): protobuf.Message {
  const o: Record<string, unknown> = { ...f, time: timestamp(f.time) };
  if (f.is_reply !== undefined) o.is_reply = { value: f.is_reply };
  return t.Flow.fromObject(o);
}

/** The bytes of one shape, between the fields each record writes. */
interface ProtoTemplate {
  /** GetFlowsResponse.node_name (field 1000) as written for this node name. */
  nodeName: string;
  nodeField: Buffer;
  /** Flow fields 2–5 (verdict ... IP), 7–33 (source ... cgroup_id) and 35 on (policies ...). */
  head: Buffer;
  middle: Buffer;
  tail: Buffer;
  /** Flow.l4 (field 6) whole, when the copies keep the template's. */
  l4: Buffer;
  /** Otherwise: the Layer4 oneof's tag and its port pair's fields after source_port (field 1). */
  portTag: number;
  portRest: Buffer;
}

const L4_TAG = { TCP: 0x0a, UDP: 0x12, SCTP: 0x2a } as const;
const FLOW_L4 = 6;
const FLOW_UUID = 34;
const EMPTY = Buffer.alloc(0);

function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeVarint(b: Buffer, at: number, v: number): number {
  while (v >= 128) {
    b[at++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  b[at++] = v;
  return at;
}

/** Top-level fields of an encoded message split where the field numbers pass `cuts` (ascending). */
function splitFields(b: Uint8Array, cuts: readonly number[]): Buffer[] {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const out: Buffer[] = [];
  let i = 0;
  let start = 0;
  let c = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const byte = buf[i++];
      if (byte === undefined) throw new Error('truncated varint');
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
      mul *= 128;
    }
  };
  let last = 0;
  while (i < buf.length) {
    const fieldStart = i;
    const tag = varint();
    const num = Math.floor(tag / 8);
    if (num < last) throw new Error('fields out of order');
    last = num;
    while (c < cuts.length && num > cuts[c]!) {
      out.push(buf.subarray(start, fieldStart));
      start = fieldStart;
      c++;
    }
    switch (tag & 7) {
      case 0:
        varint();
        break;
      case 1:
        i += 8;
        break;
      case 2: {
        const n = varint(); // before `i +=` reads i
        i += n;
        break;
      }
      case 5:
        i += 4;
        break;
      default:
        throw new Error(`wire type ${tag & 7}`);
    }
  }
  out.push(buf.subarray(start));
  while (out.length < cuts.length + 1) out.push(EMPTY);
  return out.map((x) => Buffer.from(x)); // own copies: the encoder's buffer is not kept
}

/**
 * Encodes GetFlowsResponse messages for flow records, framed for gRPC. `encode` throws for a
 * record flow.proto cannot hold (never for Seawall's own: the strict protojson tests).
 */
export class FlowResponseEncoder {
  private readonly t: Types = {
    Flow: hubbleType('flow.Flow'),
    Layer4: hubbleType('flow.Layer4'),
    GetFlowsResponse: hubbleType('observer.GetFlowsResponse'),
  };
  /** Records assembled from their shape's bytes, and encoded whole. */
  templated = 0;
  encoded = 0;

  constructor(private readonly nodeName: string) {}

  /**
   * The framed GetFlowsResponse of one ring entry's event. `shape`: its flow's, as the copy was
   * made (FlowRing.shapeOf); else shapeOf is asked.
   */
  encode(event: FlowEvent, shape?: Shape): Buffer {
    const nodeName = event.node_name ?? this.nodeName;
    const f = event.flow;
    const s = event.time === f.time ? (shape ?? shapeOf(f)) : undefined;
    const ts = s !== undefined ? parseRFC3339(f.time) : undefined;
    if (s !== undefined && typeof ts === 'object' && ts.seconds >= 0) {
      const both = s.template.proto as [ProtoTemplate | null | undefined, ProtoTemplate | null | undefined];
      const which = s.sport === undefined ? 1 : 0;
      let tp = both[which];
      if (tp === undefined || (tp !== null && tp.nodeName !== nodeName)) {
        tp = this.template(s, nodeName);
        both[which] = tp;
      }
      if (tp !== null) {
        this.templated++;
        return assemble(tp, ts, f.uuid, s.sport);
      }
    }
    this.encoded++;
    return this.slow(event, nodeName);
  }

  /** The whole message through protobufjs (the reference the templates must equal). */
  slow(event: FlowEvent, nodeName: string = event.node_name ?? this.nodeName): Buffer {
    const msg = {
      flow: flowMessage(this.t, event.flow),
      node_name: nodeName,
      time: timestamp(event.time),
    };
    return frameMessage(this.t.GetFlowsResponse.encode(msg).finish());
  }

  private nodeFields = new Map<string, Buffer>();
  /** GetFlowsResponse.node_name as protobufjs writes it (one per node name). */
  private nodeField(name: string): Buffer {
    let b = this.nodeFields.get(name);
    if (b === undefined) {
      b = Buffer.from(this.t.GetFlowsResponse.encode({ node_name: name }).finish());
      if (this.nodeFields.size < 64) this.nodeFields.set(name, b);
    }
    return b;
  }

  /** null: this shape is encoded whole (a template that does not encode says so there). */
  private template(s: Shape, nodeName: string): ProtoTemplate | null {
    const t = this.t;
    try {
      const tf = s.template.flow;
      const rest: Record<string, unknown> = { ...tf };
      delete rest.time;
      delete rest.uuid;
      delete rest.l4;
      if (tf.is_reply !== undefined) rest.is_reply = { value: tf.is_reply };
      const [head, middle, tail] = splitFields(t.Flow.encode(t.Flow.fromObject(rest)).finish(), [
        FLOW_L4,
        FLOW_UUID,
      ]) as [Buffer, Buffer, Buffer];
      const nodeField = this.nodeField(nodeName);
      const l4 = tf.l4;
      let whole = EMPTY;
      let portTag = 0;
      let portRest = EMPTY;
      if (s.sport === undefined) {
        if (l4 !== undefined) {
          const only = Buffer.from(t.Flow.encode(t.Flow.fromObject({ l4 })).finish());
          whole = only;
        }
      } else {
        const k = s.template.portKey!;
        const pair = { ...(l4 as unknown as Record<string, Record<string, unknown>>)[k] };
        delete pair.source_port;
        const enc = t.Layer4.encode(t.Layer4.fromObject({ [k]: pair })).finish();
        // Layer4{k: pair}: the oneof's tag, the pair's length, the pair's fields
        const b = Buffer.from(enc);
        if (b[0] !== L4_TAG[k]) return null;
        let i = 1;
        while (b[i]! >= 0x80) i++;
        portTag = L4_TAG[k];
        portRest = b.subarray(i + 1);
      }
      return { nodeName, nodeField, head, middle, tail, l4: whole, portTag, portRest };
    } catch {
      return null;
    }
  }
}

/** Timestamp{seconds, nanos}: both written, as protobufjs writes a plain object's own fields. */
function timestampLength(seconds: number, nanos: number): number {
  return 2 + varintLength(seconds) + varintLength(nanos);
}

function writeTimestamp(b: Buffer, at: number, seconds: number, nanos: number): number {
  b[at++] = 0x08;
  at = writeVarint(b, at, seconds);
  b[at++] = 0x10;
  return writeVarint(b, at, nanos);
}

/** `part` into `b` at `at` (TypedArray set: no Buffer.copy per piece); returns the end. */
function put(b: Buffer, at: number, part: Buffer): number {
  b.set(part, at);
  return at + part.length;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** The framed message of one copy: the template's bytes around its time, uuid and port. */
function assemble(tp: ProtoTemplate, ts: Timestamp, uuid: string, sport: number | undefined): Buffer {
  const { seconds, nanos } = ts;
  const tsLen = timestampLength(seconds, nanos);
  const ascii = isAscii(uuid);
  const uuidLen = ascii ? uuid.length : Buffer.byteLength(uuid);
  let pairLen = 0;
  let l4Len = 0;
  let l4Field = tp.l4.length;
  if (sport !== undefined) {
    pairLen = 1 + varintLength(sport) + tp.portRest.length;
    l4Len = 1 + varintLength(pairLen) + pairLen;
    l4Field = 1 + varintLength(l4Len) + l4Len;
  }
  const flowLen =
    1 +
    varintLength(tsLen) +
    tsLen +
    tp.head.length +
    l4Field +
    tp.middle.length +
    2 +
    varintLength(uuidLen) +
    uuidLen +
    tp.tail.length;
  const msgLen = 1 + varintLength(flowLen) + flowLen + tp.nodeField.length + 2 + 1 + tsLen;
  const b = Buffer.allocUnsafe(5 + msgLen);
  b[0] = 0;
  b.writeUInt32BE(msgLen, 1);
  let at = 5;
  b[at++] = 0x0a; // GetFlowsResponse.flow
  at = writeVarint(b, at, flowLen);
  b[at++] = 0x0a; // Flow.time
  at = writeVarint(b, at, tsLen);
  at = writeTimestamp(b, at, seconds, nanos);
  at = put(b, at, tp.head);
  if (sport === undefined) at = put(b, at, tp.l4);
  else {
    b[at++] = 0x32; // Flow.l4
    at = writeVarint(b, at, l4Len);
    b[at++] = tp.portTag;
    at = writeVarint(b, at, pairLen);
    b[at++] = 0x08; // source_port
    at = writeVarint(b, at, sport);
    at = put(b, at, tp.portRest);
  }
  at = put(b, at, tp.middle);
  b[at++] = 0x92; // Flow.uuid (34, length-delimited)
  b[at++] = 0x02;
  at = writeVarint(b, at, uuidLen);
  if (ascii) for (let i = 0; i < uuid.length; i++) b[at++] = uuid.charCodeAt(i);
  else at += b.write(uuid, at, 'utf8');
  at = put(b, at, tp.tail);
  at = put(b, at, tp.nodeField);
  b[at++] = 0xca; // GetFlowsResponse.time (1001, length-delimited)
  b[at++] = 0x3e;
  b[at++] = tsLen;
  writeTimestamp(b, at, seconds, nanos);
  return b;
}
