// Records of one shape. RecordCache (kernel.ts) builds the record of a kernel event's shape once
// and copies it per packet, changing only the time, the uuid and the l4 source port. Encoders of
// records (the flow log's JSON here, Hubble's protobuf in observe/hubble/encode.ts) keep the bytes
// of a shape per template and fill in only those fields; `shapeOf` says when a record is such a
// copy, untouched since it was made, so that the output is exactly the slow path's.
// The caches are keyed by the template object: a new policy revision, identity or endpoint makes
// RecordCache build a new template (and a template nobody holds is collected with its bytes).

import type { Timestamp } from './record.ts';
import type { Flow, FlowEvent, FlowLayer4 } from './types.ts';

/** What a copy of a template was made with. */
export interface Shape {
  readonly template: Flow;
  /** The copy's time, as numbers and as text (what `copy.time` must still be). */
  readonly ts: Timestamp;
  readonly time: string;
  readonly uuid: string;
  /** The l4 source port given to the copy; undefined: the template's l4 object as it is. */
  readonly sport: number | undefined;
  /** Own keys of the template (a copy with more or fewer was changed after it was made). */
  readonly keys: number;
}

const shapes = new WeakMap<Flow, Shape>();
const keyCounts = new WeakMap<Flow, number>();

function keysOf(t: Flow): number {
  let n = keyCounts.get(t);
  if (n === undefined) {
    n = 0;
    for (const _ in t) n++;
    keyCounts.set(t, n);
  }
  return n;
}

/** The port key of a template's l4 that a copy may change (TCP, UDP, SCTP); undefined for others. */
function portKey(l4: FlowLayer4): 'TCP' | 'UDP' | 'SCTP' | undefined {
  if ('TCP' in l4) return 'TCP';
  if ('UDP' in l4) return 'UDP';
  if ('SCTP' in l4) return 'SCTP';
  return undefined;
}

/**
 * The record of another packet of `t`'s shape: its time, `uuid`, its source port (a zero port is
 * absent, as protojson has it; such packets have a shape of their own). Nested objects other than
 * the l4 port pair are the template's own, shared.
 */
export function copyOfShape(
  t: Flow,
  ts: Timestamp,
  time: string,
  uuid: string,
  sport: number | undefined,
): Flow {
  const out = { ...t, time, uuid };
  const l4 = t.l4;
  let given: number | undefined;
  if (l4 !== undefined && sport) {
    const k = portKey(l4);
    if (k === 'TCP') out.l4 = { TCP: { ...(l4 as { TCP: object }).TCP, source_port: sport } };
    else if (k === 'UDP') out.l4 = { UDP: { ...(l4 as { UDP: object }).UDP, source_port: sport } };
    else if (k === 'SCTP') out.l4 = { SCTP: { ...(l4 as { SCTP: object }).SCTP, source_port: sport } };
    if (k !== undefined && Number.isInteger(sport)) given = sport;
  }
  shapes.set(out, { template: t, ts, time, uuid, sport: given, keys: keysOf(t) });
  return out;
}

/**
 * The shape `f` was copied from, when `f` still is that copy: the same keys as the template with
 * the same values (the same nested objects), except its own time, uuid and l4 source port.
 * Undefined for any other record, or a copy changed since (destination_names added, ...).
 */
export function shapeOf(f: Flow): Shape | undefined {
  const s = shapes.get(f);
  if (s === undefined || f.time !== s.time || f.uuid !== s.uuid) return undefined;
  const t = s.template as unknown as Record<string, unknown>;
  const o = f as unknown as Record<string, unknown>;
  let n = 0;
  for (const k in o) {
    n++;
    if (o[k] !== t[k] && k !== 'time' && k !== 'uuid' && k !== 'l4') return undefined;
  }
  if (n !== s.keys) return undefined;
  if (f.l4 === s.template.l4) return s.sport === undefined ? s : undefined;
  if (s.sport === undefined || f.l4 === undefined || s.template.l4 === undefined) return undefined;
  // the copy's own port pair: the template's keys and values but for the source port
  const k = portKey(s.template.l4);
  if (k === undefined) return undefined;
  let outer = 0;
  for (const _ in f.l4) outer++;
  const mine = (f.l4 as unknown as Record<string, Record<string, unknown> | undefined>)[k];
  if (outer !== 1 || mine === undefined) return undefined;
  const theirs = (s.template.l4 as unknown as Record<string, Record<string, unknown>>)[k]!;
  let inner = 0;
  for (const key in mine) {
    inner++;
    if (key === 'source_port') {
      if (mine[key] !== s.sport) return undefined;
    } else if (mine[key] !== theirs[key]) return undefined;
  }
  let want = 0;
  for (const key in theirs) if (key !== 'source_port') want++;
  return inner === want + 1 ? s : undefined;
}

/** The pieces of one shape's flow log line, between the fields each record fills in. */
interface JSONTemplate {
  nodeName: string | undefined;
  /** parts[0] slot[0] parts[1] slot[1] ... parts[n] */
  parts: string[];
  slots: ('time' | 'uuid' | 'sport')[];
}

/** Per template: the pieces for copies with their own port [0] and with the template's [1]. */
const jsonTemplates = new WeakMap<Flow, [JSONTemplate | null | undefined, JSONTemplate | null | undefined]>();

/** Stand-ins no record holds (a control character and a per-process random tag). */
const TAG = `\u0001${Math.random().toString(36).slice(2, 12)}`;
const STAND_IN = { time: `${TAG}t`, uuid: `${TAG}u`, sport: `${TAG}p` } as const;
const QUOTED = {
  time: JSON.stringify(STAND_IN.time),
  uuid: JSON.stringify(STAND_IN.uuid),
  sport: JSON.stringify(STAND_IN.sport),
} as const;

function jsonTemplate(s: Shape, nodeName: string | undefined): JSONTemplate | null {
  const t = s.template;
  const probe: Record<string, unknown> = { ...t, time: STAND_IN.time, uuid: STAND_IN.uuid };
  if (s.sport !== undefined) {
    const k = portKey(t.l4!)!;
    probe.l4 = { [k]: { ...(t.l4 as Record<string, object>)[k], source_port: STAND_IN.sport } };
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
  return { nodeName, parts, slots };
}

const EVENT_KEYS = ['flow', 'node_name', 'time'];

/** The event has FlowSink's keys in FlowSink's order (the pieces are cut for that order). */
function sinkOrder(event: FlowEvent): boolean {
  let i = 0;
  for (const k in event) if (k !== EVENT_KEYS[i++]) return false;
  return i === 3;
}

/**
 * The flow log line of `event` (`hubble observe -o jsonpb`'s shape): JSON.stringify(event), from
 * the cached pieces of its shape when its flow is an untouched copy.
 */
export function flowEventJSON(event: FlowEvent): string {
  const f = event.flow;
  const s = event.time === f.time && sinkOrder(event) ? shapeOf(f) : undefined;
  if (s === undefined) return JSON.stringify(event);
  let both = jsonTemplates.get(s.template);
  if (both === undefined) {
    both = [undefined, undefined];
    jsonTemplates.set(s.template, both);
  }
  const which = s.sport === undefined ? 1 : 0;
  let tp = both[which];
  if (tp === undefined || (tp !== null && tp.nodeName !== event.node_name)) {
    tp = jsonTemplate(s, event.node_name);
    both[which] = tp;
  }
  if (tp === null) return JSON.stringify(event);
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
