// The HTTP proxy's records on the wire to the agent, compact, as the DNS proxy's are: a record's
// shape (node, request or response, verdict, direction, the two endpoints with their addresses,
// the server's port, the proxy port and the admitting policies) is sent once as an `http-shape`
// message with an id, and each record as an `http-flow` message with only what varies (time,
// client port, method, url, protocol, status, headers, latency, note). The agent expands them
// (expandHTTPFlow) into exactly the Flow httpFlowRecord makes from the same input. A full flow
// message per record (endpoints and labels stringified twice a request) was about three quarters
// of the records' cost in the proxy.
//
// Ids are the proxy process's own: the agent keeps the shapes per process (agent/proxy.ts). A shape
// is announced in the same batch as its first record, so the two arrive or are lost together;
// after a loss every shape is announced again. A record whose shape the agent lacks is counted
// lost, never guessed. Only flow/ below: the agent loads this without the proxy.

import { type HTTPRecordInput, httpFlowRecord } from '../../flow/l7-record.ts';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import type { RuleRef } from '../../policy/types.ts';
import { copyJSON, ShapeTable } from '../shapes.ts';

/** What a shape fixes. */
export interface HTTPShape {
  nodeName: string;
  type: 'REQUEST' | 'RESPONSE';
  verdict: 'FORWARDED' | 'DROPPED';
  direction: 'INGRESS' | 'EGRESS';
  client: { ip: string; endpoint: FlowEndpoint };
  server: { ip: string; port: number; endpoint: FlowEndpoint };
  proxyPort?: number;
  /** Forwarded requests only (the only records that name them). */
  allowedBy?: { ingress?: readonly RuleRef[]; egress?: readonly RuleRef[] };
}

export interface HTTPShapeMessage {
  type: 'http-shape';
  id: number;
  shape: HTTPShape;
}

/** One record: its shape's id and what varies. */
export interface HTTPFlowMessage {
  type: 'http-flow';
  /** Shape id. */
  s: number;
  /** Time, epoch ms (what `new Date()` holds). */
  t: number;
  /** Client port. */
  cp: number;
  /** The record's uuid when the proxy made one (otherwise the agent makes it). */
  id?: string;
  /** Method, url, protocol. */
  m: string;
  u: string;
  p: string;
  /** Status (responses). */
  c?: number;
  /** Headers as the record shows them (secrets already redacted). */
  h?: Array<[string, string]>;
  /** Request to response, ns. */
  l?: number;
  /** The Summary's note (a denial's reason, a LOG action). */
  n?: string;
}

/** The input of httpFlowRecord a record message stands for (endpoints are the caller's). */
export function httpRecordInput(
  s: HTTPShape,
  m: HTTPFlowMessage,
  client: FlowEndpoint,
  server: FlowEndpoint,
  uuid?: string,
): HTTPRecordInput {
  const input: HTTPRecordInput = {
    time: new Date(m.t),
    nodeName: s.nodeName,
    type: s.type,
    verdict: s.verdict,
    direction: s.direction,
    client: { ip: s.client.ip, port: m.cp, endpoint: client },
    server: { ip: s.server.ip, port: s.server.port, endpoint: server },
    method: m.m,
    url: m.u,
    protocol: m.p,
  };
  const id = m.id ?? uuid;
  if (id !== undefined) input.uuid = id;
  if (m.c !== undefined) input.code = m.c;
  if (m.h !== undefined) input.headers = m.h;
  if (m.l !== undefined) input.latencyNs = m.l;
  if (s.allowedBy !== undefined) input.allowedBy = s.allowedBy;
  if (m.n !== undefined) input.note = m.n;
  if (s.proxyPort !== undefined) input.proxyPort = s.proxyPort;
  return input;
}

/**
 * A shape as the agent keeps it: its endpoints as JSON values (what a JSON round trip leaves of
 * them), copied per record (copyJSON) so that each record has its own objects.
 */
interface ExpandableShape {
  shape: HTTPShape;
  client: FlowEndpoint;
  server: FlowEndpoint;
}

/** The Flow a record message stands for (httpFlowRecord's, byte for byte once encoded). */
function expand(x: ExpandableShape, m: HTTPFlowMessage, uuid?: string): Flow {
  return httpFlowRecord(httpRecordInput(x.shape, m, copyJSON(x.client), copyJSON(x.server), uuid));
}

/**
 * Shapes the agent keeps per proxy process. The proxy announces at most half as many between two
 * rounds of announcing every shape again (records.ts), so a shape in use is never the one evicted.
 */
export const MAX_AGENT_HTTP_SHAPES = 65_536;

/**
 * The agent's side, per proxy process: shapes by id, and records expanded into Flows. Returns
 * undefined for a record whose shape never came (lost with its batch): the caller counts it lost.
 */
export class HTTPFlowExpander {
  private readonly shapes: ShapeTable<ExpandableShape>;

  /** Most shapes kept (least recently used out first). */
  constructor(max = MAX_AGENT_HTTP_SHAPES) {
    this.shapes = new ShapeTable(max);
  }

  shape(m: HTTPShapeMessage): void {
    this.shapes.set(m.id, {
      shape: m.shape,
      client: JSON.parse(JSON.stringify(m.shape.client.endpoint)) as FlowEndpoint,
      server: JSON.parse(JSON.stringify(m.shape.server.endpoint)) as FlowEndpoint,
    });
  }

  /** `uuid` when the record carries none (the tests' fixed one); otherwise httpFlowRecord makes one. */
  flow(m: HTTPFlowMessage, uuid?: string): Flow | undefined {
    const x = this.shapes.get(m.s);
    return x === undefined ? undefined : expand(x, m, uuid);
  }

  get size(): number {
    return this.shapes.size;
  }
}
