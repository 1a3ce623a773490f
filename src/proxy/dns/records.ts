// The DNS proxy's L7 flow records (flow/dns-record.ts has Hubble's shape), in two forms: a Flow
// object (dnsRecord: the tests' and embedders' onFlow), and the compact messages the node proxy
// sends the agent (DNSRecordMessages, compact.ts), which the agent expands into the same Flow.
// Building the object and stringifying it, labels and all, cost about as much as the rest of a
// query; what depends only on the record's shape (the two endpoints, their addresses, transport,
// request or response, verdict) is now sent once per shape, and per record only what varies.
//
// Shapes are cached per pair of the mirror's FlowEndpoint objects (WeakMaps: a snapshot or FQDN
// delta replaces those objects, so a policy change makes new shapes, and what the mirror no longer
// holds is collected), a bounded number per pair. A record whose endpoints are not the mirror's
// objects (no flow endpoint: the identity alone) goes as a full flow message. Records never decide
// traffic: this is only what the agent is told.

import { type DNSRecordInput, dnsFlowRecord } from '../../flow/dns-record.ts';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import { type AnnouncedShape, jsonNumber, ShapeAnnouncer } from '../shapes.ts';
import { type DNSShape, type DNSShapeMessage, MAX_AGENT_SHAPES } from './compact.ts';
import type { QuerySource, RedirectContext } from './proxy.ts';
import { type ParsedAnswer, type ParsedQuery, type Question, rcodeName, typeName } from './wire.ts';

/** One record as the proxy sees it: a query (REQUEST) or the answer relayed (RESPONSE). */
export interface DNSRecordParts {
  ctx: RedirectContext;
  src: QuerySource;
  q: ParsedQuery;
  type: 'REQUEST' | 'RESPONSE';
  verdict: 'FORWARDED' | 'DROPPED';
  a?: ParsedAnswer;
  latencyNs?: number;
  time: Date;
  /** Deterministic ids for tests; random otherwise. */
  uuid?: string;
}

/** Shapes kept per endpoint pair, at most (past it the pair's cache starts over). */
export const MAX_SHAPES_PER_PAIR = 64;

/** The record builder's input (the slow path, and the reference the fast one is tested against). */
export function recordInput(p: DNSRecordParts, nodeName: string): DNSRecordInput {
  const { ctx, src, q, a } = p;
  const client = {
    ip: src.clientIP,
    port: src.clientPort,
    endpoint: ctx.endpoint.flow ?? { identity: ctx.endpoint.identity },
  };
  const serverEp: FlowEndpoint =
    ctx.server.flow ?? (ctx.server.identity !== undefined ? { identity: ctx.server.identity } : {});
  const input: DNSRecordInput = {
    time: p.time,
    nodeName,
    type: p.type,
    verdict: p.verdict,
    transport: src.transport === 'udp' ? 'UDP' : 'TCP',
    client,
    server: { ip: ctx.server.ip, port: ctx.server.port, endpoint: serverEp },
    query: q.question.name,
    qtypes: [typeName(q.question.qtype)],
  };
  if (p.uuid !== undefined) input.uuid = p.uuid;
  if (a !== undefined) {
    input.ips = a.ips;
    input.ttl = a.ttl;
    input.cnames = a.cnames;
    input.rcode = a.rcode;
    input.rcodeText = rcodeName(a.rcode);
    input.rrtypes = a.rrtypes.map(typeName);
  }
  if (p.latencyNs !== undefined) input.latencyNs = p.latencyNs;
  return input;
}

/** The record as a Flow object. */
export function dnsRecord(p: DNSRecordParts, nodeName: string): Flow {
  return dnsFlowRecord(recordInput(p, nodeName));
}

/** A shape as the proxy keeps it (def: the `dns-shape` message line). */
interface Shape extends AnnouncedShape {
  /** What it fixes besides the endpoint pair and the kind (its place in PairShapes). */
  clientIP: string;
  serverIP: string;
}

/**
 * The shapes of one endpoint pair, by kind (transport, type, verdict: kindIndex), each a short list
 * told apart by the two addresses: found by comparing strings, with no key string made and hashed
 * per record (the addresses are new strings with each datagram).
 */
interface PairShapes {
  byKind: Shape[][];
  size: number;
}

function kindIndex(p: DNSRecordParts): number {
  return (
    (p.src.transport === 'udp' ? 0 : 4) + (p.type === 'REQUEST' ? 0 : 2) + (p.verdict === 'FORWARDED' ? 0 : 1)
  );
}

/**
 * The lines a record goes to the agent as (compact.ts): its shape's `dns-shape` message the first
 * time (and again after a loss), then a `dns-flow` message with what varies; a full `flow` message
 * when an endpoint is not one of the mirror's objects. One per proxy.
 */
export class DNSRecordMessages {
  private byClient = new WeakMap<FlowEndpoint, WeakMap<FlowEndpoint, PairShapes>>();
  private readonly typeJSON = new Map<number, string>();
  /**
   * `,"query",["A"]` per question object: the wire parser hands the same object for a query seen
   * before (wire.ts's memo), so a repeated name is escaped once, not per record.
   */
  private questionJSON = new WeakMap<Question, string>();
  /** `,ips,ttl,cnames,rcode,rrtypes` per answer body (wire.ts's memo shares one frozen body among equal answers). */
  private answerJSON = new WeakMap<object, string>();
  private nextId = 1;
  private readonly announcer: ShapeAnnouncer;
  /** Shapes built (each should be built once per endpoint pair and kind). */
  built = 0;

  /** maxAnnounced: announcements per epoch (shapes.ts); the agent keeps twice as many. */
  constructor(
    private readonly nodeName: string,
    maxAnnounced = MAX_AGENT_SHAPES / 2,
  ) {
    this.announcer = new ShapeAnnouncer(maxAnnounced);
  }

  /** Records were lost on the way (the channel was full): a shape announcement may be among them. */
  lost(): void {
    this.announcer.lost();
  }

  /** The message line(s) for one record, newlines included. */
  line(p: DNSRecordParts): string {
    const clientEp = p.ctx.endpoint.flow;
    const serverEp = p.ctx.server.flow;
    if (clientEp === undefined || serverEp === undefined)
      return `{"type":"flow","flow":${JSON.stringify(dnsRecord(p, this.nodeName))}}\n`;
    const shape = this.shape(p, clientEp, serverEp);
    const { q, a } = p;
    let s = this.announcer.prefix(shape);
    // compact.ts's DNSFlowFields, in order
    s += `{"type":"dns-flow","v":[${shape.id},${p.time.getTime()},${jsonNumber(p.src.clientPort)},${jsonNumber(p.ctx.server.port)}`;
    s += this.question(q);
    s += p.latencyNs !== undefined ? `,${jsonNumber(p.latencyNs)}` : ',null';
    if (a !== undefined) s += this.answer(a);
    return `${s}]}\n`;
  }

  private question(q: ParsedQuery): string {
    const question = q.question;
    // only a question the memo shares repeats: caching any other's text would only retain it
    let j = q.remembered === true ? this.questionJSON.get(question) : undefined;
    if (j === undefined) {
      j = `,${JSON.stringify(question.name)},[${this.type(question.qtype)}]`;
      if (q.remembered === true) this.questionJSON.set(question, j);
    }
    return j;
  }

  private answer(a: ParsedAnswer): string {
    const body = a.body;
    let j = body !== undefined ? this.answerJSON.get(body) : undefined;
    if (j === undefined) {
      let rr = '';
      for (let i = 0; i < a.rrtypes.length; i++) rr += (i === 0 ? '' : ',') + this.type(a.rrtypes[i]!);
      j = `,${JSON.stringify(a.ips)},${jsonNumber(a.ttl)},${JSON.stringify(a.cnames)},${jsonNumber(a.rcode)},[${rr}]`;
      if (body !== undefined) this.answerJSON.set(body, j);
    }
    return j;
  }

  /** A type's name as JSON text. */
  private type(t: number): string {
    let j = this.typeJSON.get(t);
    if (j === undefined) {
      j = JSON.stringify(typeName(t));
      if (this.typeJSON.size < 256) this.typeJSON.set(t, j);
    }
    return j;
  }

  private shape(p: DNSRecordParts, clientEp: FlowEndpoint, serverEp: FlowEndpoint): Shape {
    let byServer = this.byClient.get(clientEp);
    if (byServer === undefined) {
      byServer = new WeakMap();
      this.byClient.set(clientEp, byServer);
    }
    let pair = byServer.get(serverEp);
    if (pair === undefined) {
      pair = { byKind: [], size: 0 };
      byServer.set(serverEp, pair);
    }
    const kind = kindIndex(p);
    const clientIP = p.src.clientIP;
    const serverIP = p.ctx.server.ip;
    let s: Shape | undefined;
    for (const x of pair.byKind[kind] ?? []) {
      if (x.clientIP === clientIP && x.serverIP === serverIP) {
        s = x;
        break;
      }
    }
    if (s === undefined) {
      this.built++;
      const shape: DNSShape = {
        nodeName: this.nodeName,
        type: p.type,
        verdict: p.verdict,
        transport: p.src.transport === 'udp' ? 'UDP' : 'TCP',
        client: { ip: p.src.clientIP, endpoint: clientEp },
        server: { ip: p.ctx.server.ip, endpoint: serverEp },
      };
      const id = this.nextId++;
      s = { id, def: encodeShape({ type: 'dns-shape', id, shape }), epoch: -1, clientIP, serverIP };
      if (pair.size >= MAX_SHAPES_PER_PAIR) {
        pair.byKind = [];
        pair.size = 0;
      }
      const list = pair.byKind[kind];
      if (list === undefined) pair.byKind[kind] = [s];
      else list.push(s);
      pair.size++;
    }
    return s;
  }
}

function encodeShape(m: DNSShapeMessage): string {
  return `${JSON.stringify(m)}\n`;
}
