// The DNS proxy's records on the wire to the agent, compact: a record's shape (what depends only
// on the two endpoints, their addresses, transport, request or response and verdict) is sent once
// as a `dns-shape` message with an id, and each record as a `dns-flow` message with only what varies
// (time, ports, the l7.dns fields). The agent expands them (expandDNSFlow) into exactly the Flow
// dnsFlowRecord makes from the same input. A full flow message per record was ~1 kB of JSON built
// and written by the proxy; this is ~150 bytes.
//
// Ids are the proxy process's own: the agent keeps the shapes per process (agent/proxy.ts). A shape
// is announced ahead of its first record in the same batch, so the two arrive or are lost together;
// after a loss every shape is announced again. A record whose shape the agent lacks is counted lost.
// Only flow/ below: the agent loads this without the DNS wire parser.

import { type DNSRecordInput, dnsFlowRecord, dnsRcodeName } from '../../flow/dns-record.ts';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import { copyJSON, ShapeTable } from '../shapes.ts';

/** What a shape fixes. */
export interface DNSShape {
  nodeName: string;
  type: 'REQUEST' | 'RESPONSE';
  verdict: 'FORWARDED' | 'DROPPED';
  transport: 'UDP' | 'TCP';
  client: { ip: string; endpoint: FlowEndpoint };
  server: { ip: string; endpoint: FlowEndpoint };
}

export interface DNSShapeMessage {
  type: 'dns-shape';
  id: number;
  shape: DNSShape;
}

/**
 * One record: its shape's id and what varies, by position (a third cheaper for the agent to parse
 * than the same under keys): shape id, time (epoch ms, what `new Date()` holds), client port, server
 * port, query name, qtypes (Hubble's type names), request-to-response ns (null: not measured); and
 * for the answer relayed (a response) its ips, ttl, cnames, rcode and rrtypes.
 */
export type DNSFlowFields =
  | [s: number, t: number, cp: number, sp: number, q: string, qt: string[], l: number | null]
  | [
      s: number,
      t: number,
      cp: number,
      sp: number,
      q: string,
      qt: string[],
      l: number | null,
      ips: string[],
      ttl: number,
      cnames: string[],
      rcode: number,
      rrtypes: string[],
    ];

export interface DNSFlowMessage {
  type: 'dns-flow';
  v: DNSFlowFields;
}

/** A record message (tests, and the proxy's line builder's reference). */
export function dnsFlowMessage(
  f: { s: number; t: number; cp: number; sp: number; q: string; qt: string[]; l?: number },
  r?: { ips: string[]; ttl: number; cnames: string[]; rcode: number; rrtypes: string[] },
): DNSFlowMessage {
  const head = [f.s, f.t, f.cp, f.sp, f.q, f.qt, f.l ?? null] as const;
  return {
    type: 'dns-flow',
    v: r === undefined ? [...head] : [...head, r.ips, r.ttl, r.cnames, r.rcode, r.rrtypes],
  };
}

/**
 * A shape as the agent keeps it: its endpoints as JSON values (what a JSON round trip leaves of
 * them), copied per record so that each record has its own objects. Parsing their text per record
 * did the same at about twice the cost, the larger part of an expansion.
 */
export interface ExpandableShape {
  shape: DNSShape;
  client: FlowEndpoint;
  server: FlowEndpoint;
}

export function expandableShape(shape: DNSShape): ExpandableShape {
  return {
    shape,
    client: JSON.parse(JSON.stringify(shape.client.endpoint)) as FlowEndpoint,
    server: JSON.parse(JSON.stringify(shape.server.endpoint)) as FlowEndpoint,
  };
}

/**
 * The Flow a record message stands for (dnsFlowRecord's, byte for byte once encoded). The message's
 * lists become the Flow's: a message is expanded once.
 */
export function expandDNSFlow(x: ExpandableShape, m: DNSFlowMessage, uuid?: string): Flow {
  const s = x.shape;
  const v = m.v;
  const input: DNSRecordInput = {
    time: new Date(v[1]),
    nodeName: s.nodeName,
    type: s.type,
    verdict: s.verdict,
    transport: s.transport,
    client: { ip: s.client.ip, port: v[2], endpoint: copyJSON(x.client) },
    server: { ip: s.server.ip, port: v[3], endpoint: copyJSON(x.server) },
    query: v[4],
    qtypes: v[5],
  };
  if (uuid !== undefined) input.uuid = uuid;
  if (v.length === 12) {
    input.ips = v[7];
    input.ttl = v[8];
    input.cnames = v[9];
    input.rcode = v[10];
    input.rcodeText = dnsRcodeName(v[10]);
    input.rrtypes = v[11];
  }
  if (v[6] !== null) input.latencyNs = v[6];
  // the message's lists and the endpoint copies are this record's alone
  return dnsFlowRecord(input, true);
}

/**
 * Shapes the agent keeps per proxy process. The proxy announces at most half as many between two
 * rounds of announcing every shape again (records.ts), so a shape in use is never the one evicted.
 */
export const MAX_AGENT_SHAPES = 65_536;

/**
 * The agent's side, per proxy process: shapes by id, and records expanded into Flows. Returns
 * undefined for a record whose shape never came (lost with its batch): the caller counts it lost.
 */
export class DNSFlowExpander {
  private readonly shapes: ShapeTable<ExpandableShape>;
  /** Records whose shape was unknown. */
  unknown = 0;

  /** Most shapes kept (a proxy announces one per endpoint pair and kind; past it, the oldest go). */
  constructor(max = MAX_AGENT_SHAPES) {
    this.shapes = new ShapeTable(max);
  }

  shape(m: DNSShapeMessage): void {
    this.shapes.set(m.id, expandableShape(m.shape));
  }

  flow(m: DNSFlowMessage): Flow | undefined {
    const x = this.shapes.get(m.v[0]);
    if (x === undefined) {
      this.unknown++;
      return undefined;
    }
    return expandDNSFlow(x, m);
  }

  get size(): number {
    return this.shapes.size;
  }
}
