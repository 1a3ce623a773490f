// L7 flow records of the HTTP proxy, in the shape Hubble gives Envoy's access-log entries
// (flow.proto: Type L7, event_type 129 = MessageTypeAccessLog, l7{type, latency_ns, http}).
// A request is one record from client to server; its response is another with source and
// destination swapped and is_reply true, as Hubble shows them.

import { randomUUID } from 'node:crypto';
import type { RuleRef } from '../policy/types.ts';
import { formatTimestamp, policiesOf, type Timestamp } from './record.ts';
import { type Flow, type FlowEndpoint, type FlowVerdict, MESSAGE_TYPE } from './types.ts';

export interface L7Peer {
  ip: string;
  port: number;
  endpoint: FlowEndpoint;
}

export interface HTTPRecordInput {
  time: Date | Timestamp;
  nodeName: string;
  uuid?: string;
  type: 'REQUEST' | 'RESPONSE';
  verdict: Extract<FlowVerdict, 'FORWARDED' | 'DROPPED'>;
  /** The redirect's direction (the proxy's side of the connection). */
  direction: 'INGRESS' | 'EGRESS';
  /** Client and server of the request (the record swaps them for a response). */
  client: L7Peer;
  server: L7Peer;
  method: string;
  /** `http://host/path?query` (Hubble's url). */
  url: string;
  /** HTTP/1.0, HTTP/1.1, HTTP/2. */
  protocol: string;
  /** Response status (responses only). */
  code?: number;
  /** Request or response headers as the proxy saw them (values to keep out already replaced). */
  headers?: ReadonlyArray<readonly [string, string]>;
  /** Request → response headers, for responses. */
  latencyNs?: bigint | number;
  /** The policies whose rules admitted the request, per direction. */
  allowedBy?: { ingress?: readonly RuleRef[]; egress?: readonly RuleRef[] };
  /** Why the record is what it is, appended to the Summary (a denial's reason, a LOG action). */
  note?: string;
  proxyPort?: number;
}

/** One L7 HTTP flow record. Keys follow flow.proto's field order, as protojson prints them. */
export function httpFlowRecord(r: HTTPRecordInput): Flow {
  const reply = r.type === 'RESPONSE';
  const from = reply ? r.server : r.client;
  const to = reply ? r.client : r.server;
  const flow = {
    time: formatTimestamp(r.time),
    uuid: r.uuid ?? randomUUID(),
    verdict: r.verdict,
  } as Flow;
  flow.IP = { source: from.ip, destination: to.ip, ipVersion: from.ip.includes(':') ? 'IPv6' : 'IPv4' };
  flow.l4 = { TCP: { source_port: from.port, destination_port: to.port } };
  flow.source = from.endpoint;
  flow.destination = to.endpoint;
  flow.Type = 'L7';
  flow.node_name = r.nodeName;
  const http: Record<string, unknown> = {};
  if (r.code !== undefined && r.code !== 0) http.code = r.code;
  http.method = r.method;
  http.url = r.url;
  http.protocol = r.protocol;
  if (r.headers !== undefined && r.headers.length > 0) {
    http.headers = r.headers.map(([key, value]) => ({ key, value }));
  }
  flow.l7 = { type: r.type };
  if (reply && r.latencyNs !== undefined) flow.l7.latency_ns = String(r.latencyNs);
  flow.l7.http = http;
  flow.event_type = { type: MESSAGE_TYPE.ACCESS_LOG };
  flow.traffic_direction = r.direction;
  flow.is_reply = reply;
  if (r.proxyPort !== undefined) flow.proxy_port = r.proxyPort;
  flow.Summary = summary(r);
  if (r.verdict === 'FORWARDED' && !reply) {
    const ing = policiesOf(r.allowedBy?.ingress ?? []);
    const eg = policiesOf(r.allowedBy?.egress ?? []);
    if (eg.length > 0) flow.egress_allowed_by = eg;
    if (ing.length > 0) flow.ingress_allowed_by = ing;
  }
  return flow;
}

/** Hubble's L7 summaries: `HTTP/1.1 GET http://…` and `HTTP/1.1 200 3ms (GET http://…)`. */
function summary(r: HTTPRecordInput): string {
  let s: string;
  if (r.type === 'REQUEST') s = `${r.protocol} ${r.method} ${r.url}`;
  else {
    const ms = r.latencyNs === undefined ? 0 : Math.round(Number(r.latencyNs) / 1e6);
    s = `${r.protocol} ${r.code ?? 0} ${ms}ms (${r.method} ${r.url})`;
  }
  return r.note === undefined ? s : `${s}; ${r.note}`;
}
