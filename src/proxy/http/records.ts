// The lines the HTTP proxy's records go to the agent as (compact.ts): a record's shape once, as an
// `http-shape` message (and again after a loss), then per record an `http-flow` message with what
// varies. The agent expands them into the Flow httpFlowRecord makes from the same input.
//
// Shapes are cached per pair of the mirror's FlowEndpoint objects (WeakMaps: a snapshot replaces
// those objects, so a policy change makes new shapes and what the mirror no longer holds is
// collected), then by the rest of the shape (compared field by field), and last by the admitting policies' object (cached
// per rule set by the proxy, so one per set), a bounded number per endpoint pair. Records never
// decide traffic: this is only what the agent is told.

import { type HTTPRecordInput, httpFlowRecord } from '../../flow/l7-record.ts';
import type { FlowEndpoint } from '../../flow/types.ts';
import { type AnnouncedShape, jsonNumber, jsonPairs, jsonString, ShapeAnnouncer } from '../shapes.ts';
import { type HTTPShape, type HTTPShapeMessage, MAX_AGENT_HTTP_SHAPES } from './compact.ts';

/** Shapes kept per endpoint pair, at most (past it the pair's cache starts over). */
export const MAX_HTTP_SHAPES_PER_PAIR = 64;

/** def: the `http-shape` message line. */
type Shape = AnnouncedShape;

/**
 * What a shape fixes besides its endpoint pair (compared field by field: no key string per record),
 * and its shapes: without admitting policies, and per policies object.
 */
interface ShapeSlot {
  clientIP: string;
  serverIP: string;
  serverPort: number;
  type: HTTPRecordInput['type'];
  verdict: HTTPRecordInput['verdict'];
  direction: HTTPRecordInput['direction'];
  proxyPort: number | undefined;
  nodeName: string;
  none?: Shape;
  by?: WeakMap<object, Shape>;
}

/** The pair's slot for r, if it has one (a pair holds a few: a linear scan beats hashing a key). */
function findSlot(slots: readonly ShapeSlot[], r: HTTPRecordInput): ShapeSlot | undefined {
  for (const s of slots) {
    if (
      s.serverPort === r.server.port &&
      s.type === r.type &&
      s.verdict === r.verdict &&
      s.direction === r.direction &&
      s.proxyPort === r.proxyPort &&
      s.clientIP === r.client.ip &&
      s.serverIP === r.server.ip &&
      s.nodeName === r.nodeName
    )
      return s;
  }
  return undefined;
}

/** One per proxy process. */
export class HTTPRecordMessages {
  private readonly byClient = new WeakMap<FlowEndpoint, WeakMap<FlowEndpoint, ShapeSlot[]>>();
  /** JSON text of the few methods and protocols seen (not per record). */
  private readonly text = new Map<string, string>();
  private nextId = 1;
  private readonly announcer: ShapeAnnouncer;
  /** Shapes built. */
  built = 0;

  /** maxAnnounced: announcements per epoch (shapes.ts); the agent keeps twice as many. */
  constructor(maxAnnounced = MAX_AGENT_HTTP_SHAPES / 2) {
    this.announcer = new ShapeAnnouncer(maxAnnounced);
  }

  /** Records were lost on the way (the channel was full): a shape announcement may be among them. */
  lost(): void {
    this.announcer.lost();
  }

  /** The message line(s) for one record, newlines included. */
  line(r: HTTPRecordInput): string {
    // a kernel-style timestamp (nanoseconds) is not what `t` carries: the full record (the proxy's
    // own records always have a Date)
    if (!(r.time instanceof Date)) return `{"type":"flow","flow":${JSON.stringify(httpFlowRecord(r))}}\n`;
    const shape = this.shape(r);
    let s = this.announcer.prefix(shape);
    s += `{"type":"http-flow","s":${shape.id},"t":${jsonNumber(r.time.getTime())},"cp":${jsonNumber(r.client.port)}`;
    if (r.uuid !== undefined) s += `,"id":${jsonString(r.uuid)}`;
    s += `,"m":${this.json(r.method)},"u":${jsonString(r.url)},"p":${this.json(r.protocol)}`;
    if (r.code !== undefined) s += `,"c":${jsonNumber(r.code)}`;
    if (r.headers !== undefined && r.headers.length > 0) s += `,"h":${jsonPairs(r.headers)}`;
    if (r.latencyNs !== undefined) s += `,"l":${jsonNumber(Number(r.latencyNs))}`;
    if (r.note !== undefined) s += `,"n":${JSON.stringify(r.note)}`;
    return `${s}}\n`;
  }

  private json(v: string): string {
    let j = this.text.get(v);
    if (j === undefined) {
      j = JSON.stringify(v);
      if (this.text.size < 64) this.text.set(v, j);
    }
    return j;
  }

  private shape(r: HTTPRecordInput): Shape {
    const clientEp = r.client.endpoint;
    const serverEp = r.server.endpoint;
    let byServer = this.byClient.get(clientEp);
    if (byServer === undefined) {
      byServer = new WeakMap();
      this.byClient.set(clientEp, byServer);
    }
    let slots = byServer.get(serverEp);
    if (slots === undefined) {
      slots = [];
      byServer.set(serverEp, slots);
    }
    let slot = findSlot(slots, r);
    if (slot === undefined) {
      if (slots.length >= MAX_HTTP_SHAPES_PER_PAIR) slots.length = 0;
      slot = {
        clientIP: r.client.ip,
        serverIP: r.server.ip,
        serverPort: r.server.port,
        type: r.type,
        verdict: r.verdict,
        direction: r.direction,
        proxyPort: r.proxyPort,
        nodeName: r.nodeName,
      };
      slots.push(slot);
    }
    // only a forwarded request's record names the admitting policies (httpFlowRecord)
    const by = r.verdict === 'FORWARDED' && r.type === 'REQUEST' ? r.allowedBy : undefined;
    let s = by === undefined ? slot.none : slot.by?.get(by);
    if (s === undefined) {
      this.built++;
      const shape: HTTPShape = {
        nodeName: r.nodeName,
        type: r.type,
        verdict: r.verdict,
        direction: r.direction,
        client: { ip: r.client.ip, endpoint: clientEp },
        server: { ip: r.server.ip, port: r.server.port, endpoint: serverEp },
      };
      if (r.proxyPort !== undefined) shape.proxyPort = r.proxyPort;
      if (by !== undefined) shape.allowedBy = by;
      const id = this.nextId++;
      const m: HTTPShapeMessage = { type: 'http-shape', id, shape };
      s = { id, def: `${JSON.stringify(m)}\n`, epoch: -1 };
      if (by === undefined) slot.none = s;
      else {
        slot.by ??= new WeakMap();
        slot.by.set(by, s);
      }
    }
    return s;
  }
}
