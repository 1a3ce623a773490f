// Records of one shape. RecordCache (kernel.ts) builds the record of a kernel event's shape once
// and copies it per packet, changing only the time, the uuid and the l4 source port. Encoders of
// records (the flow log's JSON here, Hubble's protobuf in observe/hubble/encode.ts) keep the bytes
// of a shape per template and fill in only those fields; `shapeOf` says when a record is such a
// copy, untouched since it was made, so that the output is exactly the slow path's.
// The pieces are kept with the template: a new policy revision, identity or endpoint makes
// RecordCache build a new template (and a template nobody holds is collected with its pieces).

import type { Flow, FlowEvent, FlowLayer4 } from './types.ts';

/** A record whose copies the encoders assemble from cached pieces. */
export interface Template {
  readonly flow: Flow;
  /** The record's own keys in order (a copy has these, in this order). */
  readonly keys: readonly string[];
  /** The l4 key whose port pair copies may give their own source port (TCP, UDP, SCTP). */
  readonly portKey: 'TCP' | 'UDP' | 'SCTP' | undefined;
  /** The keys of a copy's own port pair in order: the template's, source_port in its place or last. */
  readonly pairKeys: readonly string[];
  /** The flow log line's pieces: for copies with their own port [0], with the template's l4 [1]. */
  json: [JSONTemplate | null | undefined, JSONTemplate | null | undefined];
  /** The protobuf encoder's bytes (observe/hubble/encode.ts), the same two ways. */
  proto: [unknown, unknown];
  /** Makes a copy (as copyOfShape's spread would) with its own port / with the template's l4. */
  readonly cloneWithPort: Cloner | null;
  readonly cloneKeepL4: Cloner | null;
  /** The shape of every copy that keeps the template's l4 (one object: shapes never change). */
  readonly keepL4: Shape;
  /** Per-template state of other consumers of records (observe/metrics.ts), kept with it. */
  metrics?: unknown;
}

type Cloner = (t: Flow, time: string, uuid: string, sport: number | undefined) => Flow;

/**
 * Copy functions by key order: one object literal per order of a template's keys, so copying is
 * monomorphic (a spread over templates of a dozen different maps is V8's slow generic clone).
 */
const cloners = new Map<string, Cloner | null>();
const MAX_CLONERS = 256;
/** Keys written as they are in the literal (our own field names; anything else is spread). */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function clonerFor(
  keys: readonly string[],
  pk: 'TCP' | 'UDP' | 'SCTP' | undefined,
  pairKeys: readonly string[],
  withPort: boolean,
): Cloner | null {
  const sig = `${withPort ? pk : '-'}|${keys.join(',')}|${withPort ? pairKeys.join(',') : ''}`;
  let c = cloners.get(sig);
  if (c !== undefined) return c;
  c = null;
  const plain = (k: string): boolean => PLAIN_KEY.test(k) && k !== '__proto__';
  if (
    cloners.size < MAX_CLONERS &&
    keys.includes('time') &&
    keys.includes('uuid') &&
    keys.every(plain) &&
    pairKeys.every(plain)
  ) {
    const props = keys.map((k) => {
      if (k === 'time' || k === 'uuid') return `${k}: ${k}`;
      if (k === 'l4' && withPort) {
        const pair = pairKeys.map((p) =>
          p === 'source_port' ? 'source_port: sport' : `${p}: t.l4.${pk}.${p}`,
        );
        return `l4: {${pk}: {${pair.join(', ')}}}`;
      }
      return `${k}: t.${k}`;
    });
    c = new Function('t', 'time', 'uuid', 'sport', `return {${props.join(', ')}};`) as Cloner;
  }
  cloners.set(sig, c);
  return c;
}

/** A record that is a copy of a template: its own time, uuid and (when `sport`) source port. */
export interface Shape {
  readonly template: Template;
  /** The copy's own source port; undefined: the template's l4 object as it is. */
  readonly sport: number | undefined;
}

/**
 * Templates by their `source` endpoint object, which every copy shares (so that nothing is
 * stored per copy): a copy is found by its source and then compared with the template.
 */
const templates = new WeakMap<object, Template>();

/** The port key of a template's l4 that a copy may change (TCP, UDP, SCTP); undefined for others. */
function portKey(l4: FlowLayer4 | undefined): 'TCP' | 'UDP' | 'SCTP' | undefined {
  if (l4 === undefined) return undefined;
  if ('TCP' in l4) return 'TCP';
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  return undefined;
}

/**
 * Makes `t` a template: copies of it (copyOfShape) are then encoded from its cached pieces.
 * RecordCache registers each record it keeps; `t` must not change afterwards.
 */
export function registerTemplate(t: Flow): void {
  if (t.source === undefined) return;
  const k = portKey(t.l4);
  const pair = k === undefined ? {} : (t.l4 as unknown as Record<string, object>)[k];
  const keys = Object.keys(t);
  const pairKeys = Object.keys({ ...pair, source_port: 0 });
  const tp: Template = {
    flow: t,
    keys,
    portKey: k,
    pairKeys,
    json: [undefined, undefined],
    proto: [undefined, undefined],
    cloneWithPort: k === undefined ? null : clonerFor(keys, k, pairKeys, true),
    cloneKeepL4: clonerFor(keys, k, pairKeys, false),
    keepL4: undefined as unknown as Shape,
    metrics: undefined,
  };
  (tp as { keepL4: Shape }).keepL4 = { template: tp, sport: undefined };
  templates.set(t.source, tp);
}

/** A copy and its shape, both known where the copy is made. */
export interface ShapedCopy {
  readonly flow: Flow;
  /** What shapeOf(flow) says of the untouched copy; undefined: encoded whole. */
  readonly shape: Shape | undefined;
}

/**
 * copyOfShape with the copy's shape, so that the flow log and the gRPC encoder are handed it
 * instead of asking shapeOf each. The shape holds while the copy is unchanged: records are never
 * changed once made (a record that gets more fields, destination_names, is a new object).
 */
export function shapedCopy(t: Flow, time: string, uuid: string, sport: number | undefined): ShapedCopy {
  const tp = t.source !== undefined ? templates.get(t.source) : undefined;
  if (tp !== undefined && tp.flow === t) {
    if (sport && tp.portKey !== undefined) {
      const c = tp.cloneWithPort;
      // shapeOf's own conditions on a copy's port
      if (c !== null && Number.isInteger(sport) && sport > 0 && sport <= 0xffffffff)
        return { flow: c(t, time, uuid, sport), shape: { template: tp, sport } };
    } else if (tp.cloneKeepL4 !== null) {
      return { flow: tp.cloneKeepL4(t, time, uuid, sport), shape: tp.keepL4 };
    }
  }
  const flow = spreadCopy(t, time, uuid, sport);
  return { flow, shape: shapeOf(flow) };
}

/**
 * The record of another packet of `t`'s shape: its time, `uuid`, its source port (a zero port is
 * absent, as protojson has it; such packets have a shape of their own). Nested objects other than
 * the l4 port pair are the template's own, shared.
 */
export function copyOfShape(t: Flow, time: string, uuid: string, sport: number | undefined): Flow {
  const tp = t.source !== undefined ? templates.get(t.source) : undefined;
  if (tp !== undefined && tp.flow === t) {
    const c = sport && tp.portKey !== undefined ? tp.cloneWithPort : tp.cloneKeepL4;
    if (c !== null) return c(t, time, uuid, sport);
  }
  return spreadCopy(t, time, uuid, sport);
}

/** copyOfShape by spreading (records that are no template, or keys no literal can hold). */
export function spreadCopy(t: Flow, time: string, uuid: string, sport: number | undefined): Flow {
  const out = { ...t, time, uuid };
  const l4 = t.l4;
  if (l4 !== undefined && sport) {
    if ('TCP' in l4) out.l4 = { TCP: { ...l4.TCP, source_port: sport } };
    else if ('UDP' in l4) out.l4 = { UDP: { ...l4.UDP, source_port: sport } };
    else if ('SCTP' in l4) out.l4 = { SCTP: { ...l4.SCTP, source_port: sport } };
  }
  return out;
}

/**
 * When `f` is a template's record but for its own time and uuid (strings) and l4 source port: the
 * template's keys in the template's order with the same values (the same nested objects), the l4
 * the template's own or a port pair of the template's keys and values but for source_port (an
 * integer port). Undefined for any other record, or a copy changed since it was made
 * (destination_names added, ...): those are encoded whole.
 */
export function shapeOf(f: Flow): Shape | undefined {
  const src = f.source;
  if (src === undefined) return undefined;
  const tp = templates.get(src);
  if (tp === undefined || typeof f.time !== 'string' || typeof f.uuid !== 'string') return undefined;
  const t = tp.flow as unknown as Record<string, unknown>;
  const o = f as unknown as Record<string, unknown>;
  const keys = tp.keys;
  let i = 0;
  for (const k in o) {
    if (k !== keys[i++]) return undefined;
    if (o[k] !== t[k] && k !== 'time' && k !== 'uuid' && k !== 'l4') return undefined;
  }
  if (i !== keys.length) return undefined;
  if (f.l4 === tp.flow.l4) return { template: tp, sport: undefined };
  const pk = tp.portKey;
  if (pk === undefined || f.l4 === undefined) return undefined;
  // the copy's own port pair: the template's keys and values but for the source port
  let outer = 0;
  for (const k in f.l4) if (k !== pk || ++outer > 1) return undefined;
  const mine = (f.l4 as unknown as Record<string, Record<string, unknown>>)[pk]!;
  const theirs = (tp.flow.l4 as unknown as Record<string, Record<string, unknown>>)[pk]!;
  const pairKeys = tp.pairKeys;
  let j = 0;
  for (const k in mine) {
    if (k !== pairKeys[j++]) return undefined;
    if (k !== 'source_port' && mine[k] !== theirs[k]) return undefined;
  }
  const sport = mine.source_port;
  if (j !== pairKeys.length || typeof sport !== 'number' || !Number.isInteger(sport)) return undefined;
  if (sport <= 0 || sport > 0xffffffff) return undefined;
  return { template: tp, sport };
}

/** Plain JSON-like values equal in content and key order. */
function deepSame(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepSame(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i] || !deepSame((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
      return false;
  }
  return true;
}

/**
 * Two records of one shape: equal in every field (content and order) but time, uuid and the l4
 * source port. RecordCache keeps its template when the engine, asked again, says the same.
 */
export function sameShape(a: Flow, b: Flow): boolean {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const k = ka[i]!;
    if (k !== kb[i]) return false;
    if (k === 'time' || k === 'uuid') continue;
    const va = (a as unknown as Record<string, unknown>)[k];
    const vb = (b as unknown as Record<string, unknown>)[k];
    if (k === 'l4' && a.l4 !== undefined && b.l4 !== undefined) {
      const pk = portKey(a.l4);
      if (pk !== undefined && pk === portKey(b.l4)) {
        const pa = { ...(va as Record<string, object>)[pk], source_port: 0 };
        const pb = { ...(vb as Record<string, object>)[pk], source_port: 0 };
        if (Object.keys(va as object).length !== 1 || Object.keys(vb as object).length !== 1) return false;
        if (!deepSame(pa, pb)) return false;
        continue;
      }
    }
    if (!deepSame(va, vb)) return false;
  }
  return true;
}

/** The pieces of one shape's flow log line, between the fields each record fills in. */
export interface JSONTemplate {
  nodeName: string | undefined;
  /** parts[0] slot[0] parts[1] slot[1] ... parts[n] */
  parts: string[];
  slots: ('time' | 'uuid' | 'sport')[];
  /** The parts as UTF-8 (LineBatch), and their bytes in all. */
  bytes: Buffer[];
  partBytes: number;
}

/** Stand-ins no record holds (a control character and a per-process random tag). */
const TAG = `\u0001${Math.random().toString(36).slice(2, 12)}`;
const STAND_IN = { time: `${TAG}t`, uuid: `${TAG}u`, sport: `${TAG}p` } as const;
const QUOTED = {
  time: JSON.stringify(STAND_IN.time),
  uuid: JSON.stringify(STAND_IN.uuid),
  sport: JSON.stringify(STAND_IN.sport),
} as const;

function jsonTemplate(s: Shape, nodeName: string | undefined): JSONTemplate | null {
  const t = s.template.flow;
  const probe: Record<string, unknown> = { ...t, time: STAND_IN.time, uuid: STAND_IN.uuid };
  if (s.sport !== undefined) {
    const k = s.template.portKey!;
    probe.l4 = { [k]: { ...(t.l4 as unknown as Record<string, object>)[k], source_port: STAND_IN.sport } };
  }
  const event: Record<string, unknown> = { flow: probe, node_name: nodeName, time: STAND_IN.time };
  const text = JSON.stringify(event);
  const parts: string[] = [];
  const slots: JSONTemplate['slots'] = [];
  let from = 0;
  for (;;) {
    let at = -1;
    let slot: JSONTemplate['slots'][number] | undefined;
    for (const k of ['time', 'uuid', 'sport'] as const) {
      const i = text.indexOf(QUOTED[k], from);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        slot = k;
      }
    }
    if (slot === undefined) break;
    parts.push(text.slice(from, at));
    slots.push(slot);
    from = at + QUOTED[slot].length;
  }
  parts.push(text.slice(from));
  // the flow's time and uuid, the event's time and the port once each: else the slow path
  const count = (k: string): number => slots.filter((x) => x === k).length;
  if (count('time') !== 2 || count('uuid') !== 1 || count('sport') !== (s.sport === undefined ? 0 : 1))
    return null;
  const bytes = parts.map((p) => Buffer.from(p, 'utf8'));
  return { nodeName, parts, slots, bytes, partBytes: bytes.reduce((n, b) => n + b.length, 0) };
}

const EVENT_KEYS = ['flow', 'node_name', 'time'];

/** The event has FlowSink's keys in FlowSink's order (the pieces are cut for that order). */
function sinkOrder(event: FlowEvent): boolean {
  let i = 0;
  for (const k in event) if (k !== EVENT_KEYS[i++]) return false;
  return i === 3;
}

/** The shape flowEventJSON writes `event` by (the one given, else shapeOf's), if any. */
function eventShape(event: FlowEvent, shape: Shape | undefined): Shape | undefined {
  const f = event.flow;
  return event.time === f.time && sinkOrder(event) ? (shape ?? shapeOf(f)) : undefined;
}

/** The pieces of lines of shape `s` for this node name; null: written whole (JSON.stringify). */
function piecesFor(s: Shape, nodeName: string | undefined): JSONTemplate | null {
  const both = s.template.json;
  const which = s.sport === undefined ? 1 : 0;
  let tp = both[which];
  if (tp === undefined || (tp !== null && tp.nodeName !== nodeName)) {
    tp = jsonTemplate(s, nodeName);
    both[which] = tp;
  }
  return tp;
}

/**
 * The flow log line of `event` (`hubble observe -o jsonpb`'s shape): JSON.stringify(event), from
 * the cached pieces of its shape when its flow is an untouched copy. `shape`: the flow's, as
 * shapedCopy gave it (else shapeOf is asked).
 */
export function flowEventJSON(event: FlowEvent, shape?: Shape): string {
  const f = event.flow;
  const s = eventShape(event, shape);
  const tp = s === undefined ? null : piecesFor(s, event.node_name);
  if (s === undefined || tp === null) return JSON.stringify(event);
  const time = JSON.stringify(f.time);
  const uuid = JSON.stringify(f.uuid);
  const sport = s.sport === undefined ? '' : String(s.sport);
  const { parts, slots } = tp;
  let out = parts[0]!;
  for (let i = 0; i < slots.length; i++) {
    const k = slots[i];
    out += (k === 'time' ? time : k === 'uuid' ? uuid : sport) + parts[i + 1]!;
  }
  return out;
}

/**
 * Flow log lines gathered as bytes for one write: a line of a shape with pieces is its pieces'
 * bytes (encoded once per shape) around its time, uuid and port, so no line is built as a string
 * and encoded again; any other line is JSON.stringify's, encoded. The bytes are flowEventJSON's
 * text and a newline, line for line.
 */
export class LineBatch {
  private buf: Buffer;
  /** Bytes in use; ends[i]: where line i ends (after its newline). */
  used = 0;
  readonly ends: number[] = [];

  constructor(private readonly capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  get lines(): number {
    return this.ends.length;
  }

  /** The lines so far (a view: valid until the next add or clear). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  /** Line i's bytes, its newline included (a view, as bytes()). */
  line(i: number): Buffer {
    return this.buf.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }

  clear(): void {
    this.used = 0;
    this.ends.length = 0;
    if (this.buf.length > 2 * this.capacity) this.buf = Buffer.allocUnsafe(this.capacity); // after a long line
  }

  /** Appends `event`'s line; `shape`: its flow's as the copy was made (else shapeOf is asked). */
  add(event: FlowEvent, shape?: Shape): void {
    const f = event.flow;
    const s = eventShape(event, shape);
    const tp = s === undefined ? null : piecesFor(s, event.node_name);
    if (s === undefined || tp === null) {
      this.addText(JSON.stringify(event));
      return;
    }
    const time = f.time;
    const uuid = f.uuid;
    const sport = s.sport;
    // quoted, at most 6 bytes a UTF-16 unit (\uXXXX); the port's digits; the newline
    this.room(tp.partBytes + 6 * (2 * time.length + uuid.length) + 6 + 11);
    const b = this.buf;
    const { bytes, slots } = tp;
    let at = this.used;
    b.set(bytes[0]!, at);
    at += bytes[0]!.length;
    // the flow's time and the event's are one string (eventShape): encoded once, then copied
    let timeAt = -1;
    let timeEnd = -1;
    for (let i = 0; i < slots.length; i++) {
      const k = slots[i];
      if (k === 'sport') at = writeDigits(b, at, sport!);
      else if (k === 'uuid') at = writeJSONString(b, at, uuid);
      else if (timeAt < 0) {
        timeAt = at;
        at = writeJSONString(b, at, time);
        timeEnd = at;
      } else {
        b.copyWithin(at, timeAt, timeEnd);
        at += timeEnd - timeAt;
      }
      const part = bytes[i + 1]!;
      b.set(part, at);
      at += part.length;
    }
    b[at++] = 0x0a;
    this.used = at;
    this.ends.push(at);
  }

  private addText(line: string): void {
    this.room(3 * line.length + 1);
    let at = this.used;
    at += this.buf.write(line, at, 'utf8');
    this.buf[at++] = 0x0a;
    this.used = at;
    this.ends.push(at);
  }

  /** At least n bytes free after `used` (a larger buffer for what is there and a long line). */
  private room(n: number): void {
    if (this.used + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.capacity, 2 * (this.used + n)));
    this.buf.copy(b, 0, 0, this.used);
    this.buf = b;
  }
}

/**
 * JSON.stringify(str)'s bytes at `at`; returns the end. Printable ASCII without quote or
 * backslash (times and uuids) byte by byte, anything else through JSON.stringify.
 */
function writeJSONString(b: Buffer, at: number, str: string): number {
  const start = at;
  b[at++] = 0x22;
  for (let i = 0; i < str.length; i++) {
    const c = str.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c)
      return start + b.write(JSON.stringify(str), start, 'utf8');
    b[at++] = c;
  }
  b[at++] = 0x22;
  return at;
}

/** String(n)'s bytes for a positive integer port (shapeOf's: 1 to 2^32-1); returns the end. */
function writeDigits(b: Buffer, at: number, n: number): number {
  let digits = 1;
  for (let v = n; v >= 10; v = Math.floor(v / 10)) digits++;
  let end = at + digits;
  for (let v = n; end > at; v = Math.floor(v / 10)) b[--end] = 0x30 + (v % 10);
  return at + digits;
}
