// The DNS proxy's L7 flow records (flow/dns-record.ts has Hubble's shape), in two forms: a Flow
// object (dnsRecord: the tests' and embedders' onFlow) and the flow message's JSON line, exactly
// `encode({ type: 'flow', flow: dnsRecord(...) })` (DNSRecordLines: the node proxy's records to the
// agent). Building the object and stringifying it, labels and all, cost about as much as the rest of
// a query; the line is text spliced instead: what depends only on the record's shape (the two
// endpoints, their addresses, transport, request or response, verdict) is made once per shape, and
// per record only the time, uuid, ports, latency, the l7.dns fields and the summary.
//
// Shapes are cached per pair of the mirror's FlowEndpoint objects (WeakMaps: a snapshot or FQDN
// delta replaces those objects, so a policy change starts a fresh cache, and what the mirror no
// longer holds is collected), a bounded number per pair. A record whose endpoints are not the
// mirror's objects (no flow endpoint: the identity alone) takes the slow path. Records never decide
// traffic: this is only what the agent is told.

import { randomUUID } from 'node:crypto';
import { type DNSRecordInput, dnsFlowRecord, dnsSummary } from '../../flow/dns-record.ts';
import { formatTimestamp } from '../../flow/record.ts';
import { type Flow, type FlowEndpoint, MESSAGE_TYPE } from '../../flow/types.ts';
import type { QuerySource, RedirectContext } from './proxy.ts';
import { type ParsedAnswer, type ParsedQuery, rcodeName, typeName } from './wire.ts';

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

/** What a shape fixes: the text around the per-record fields. */
interface Shape {
  /** Up to the verdict through `"source_port":`. */
  head: string;
  /** The source's port is the client's (a request) or the server's (a response). */
  response: boolean;
  /** From the ports' end through the l7 type. */
  middle: string;
  /** From l7's end through `"Summary":`. */
  tail: string;
}

const HEAD = '{"type":"flow","flow":{"time":"';
const DNS_SOURCE = ',"observation_source":"proxy"';

/** JSON's number text (JSON.stringify's: NaN and infinities are null). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

/** The JSON lines of DNS flow messages, with the shape cache (one per proxy). */
export class DNSRecordLines {
  private byClient = new WeakMap<FlowEndpoint, WeakMap<FlowEndpoint, Map<string, Shape>>>();
  private readonly qtypes = new Map<number, string>();
  /** Shapes built (for tests and the bench: each should be built once). */
  built = 0;

  constructor(private readonly nodeName: string) {}

  /** The flow message line (newline included): what `encode({ type: 'flow', flow: dnsRecord(p) })` gives. */
  line(p: DNSRecordParts): string {
    const clientEp = p.ctx.endpoint.flow;
    const serverEp = p.ctx.server.flow;
    if (clientEp === undefined || serverEp === undefined)
      return `{"type":"flow","flow":${JSON.stringify(dnsRecord(p, this.nodeName))}}\n`;
    const shape = this.shape(p, clientEp, serverEp);
    const { q, a, src } = p;
    const response = shape.response;
    const serverPort = p.ctx.server.port;
    let s = `${HEAD}${formatTimestamp(p.time)}","uuid":"${p.uuid ?? randomUUID()}${shape.head}`;
    s += response
      ? `${num(serverPort)},"destination_port":${num(src.clientPort)}`
      : `${num(src.clientPort)},"destination_port":${num(serverPort)}`;
    s += shape.middle;
    if (response && p.latencyNs !== undefined && p.latencyNs > 0)
      s += `,"latency_ns":${JSON.stringify(String(Math.round(p.latencyNs)))}`;
    const query = q.question.name;
    const qtypes = this.qtypesJSON(q.question.qtype);
    s += `,"dns":{"query":${JSON.stringify(query)}`;
    let summaryInput: Pick<
      DNSRecordInput,
      'type' | 'query' | 'qtypes' | 'rcode' | 'rcodeText' | 'ips' | 'ttl' | 'cnames'
    >;
    const qt = [typeName(q.question.qtype)];
    if (response && a !== undefined) {
      if (a.ips.length > 0) s += `,"ips":${JSON.stringify(a.ips)}`;
      if (a.ttl !== 0) s += `,"ttl":${num(a.ttl)}`;
      if (a.cnames.length > 0) s += `,"cnames":${JSON.stringify(a.cnames)}`;
      s += DNS_SOURCE;
      if (a.rcode !== 0) s += `,"rcode":${num(a.rcode)}`;
      s += `,"qtypes":${qtypes}`;
      if (a.rrtypes.length > 0) s += `,"rrtypes":${JSON.stringify(a.rrtypes.map(typeName))}`;
      summaryInput = {
        type: p.type,
        query,
        qtypes: qt,
        rcode: a.rcode,
        rcodeText: rcodeName(a.rcode),
        ips: a.ips,
        ttl: a.ttl,
        cnames: a.cnames,
      };
    } else {
      s += `${DNS_SOURCE},"qtypes":${qtypes}`;
      summaryInput = { type: p.type, query, qtypes: qt };
    }
    s += `}${shape.tail}${JSON.stringify(dnsSummary(summaryInput as DNSRecordInput))}}}\n`;
    return s;
  }

  private qtypesJSON(qtype: number): string {
    let t = this.qtypes.get(qtype);
    if (t === undefined) {
      t = JSON.stringify([typeName(qtype)]);
      if (this.qtypes.size < 256) this.qtypes.set(qtype, t);
    }
    return t;
  }

  private shape(p: DNSRecordParts, clientEp: FlowEndpoint, serverEp: FlowEndpoint): Shape {
    let byServer = this.byClient.get(clientEp);
    if (byServer === undefined) {
      byServer = new WeakMap();
      this.byClient.set(clientEp, byServer);
    }
    let shapes = byServer.get(serverEp);
    if (shapes === undefined) {
      shapes = new Map();
      byServer.set(serverEp, shapes);
    }
    const key = `${p.src.clientIP}|${p.ctx.server.ip}|${p.src.transport}|${p.type}|${p.verdict}`;
    let s = shapes.get(key);
    if (s === undefined) {
      s = this.build(p, clientEp, serverEp);
      if (shapes.size >= MAX_SHAPES_PER_PAIR) shapes.clear();
      shapes.set(key, s);
    }
    return s;
  }

  // Field order and presence as dnsFlowRecord assigns them (protojson's order); the fast-path test
  // compares every shape with it byte for byte.
  private build(p: DNSRecordParts, clientEp: FlowEndpoint, serverEp: FlowEndpoint): Shape {
    this.built++;
    const response = p.type === 'RESPONSE';
    const client = { ip: p.src.clientIP, ep: clientEp };
    const server = { ip: p.ctx.server.ip, ep: serverEp };
    const src = response ? server : client;
    const dst = response ? client : server;
    const ip = { source: src.ip, destination: dst.ip, ipVersion: src.ip.includes(':') ? 'IPv6' : 'IPv4' };
    const l4 = p.src.transport === 'tcp' ? 'TCP' : 'UDP';
    return {
      head: `","verdict":${JSON.stringify(p.verdict)},"IP":${JSON.stringify(ip)},"l4":{"${l4}":{"source_port":`,
      response,
      middle:
        `}},"source":${JSON.stringify(src.ep)},"destination":${JSON.stringify(dst.ep)},"Type":"L7",` +
        `"node_name":${JSON.stringify(this.nodeName)},"l7":{"type":${JSON.stringify(p.type)}`,
      tail:
        `},"event_type":${JSON.stringify({ type: MESSAGE_TYPE.ACCESS_LOG })},"traffic_direction":"EGRESS",` +
        `"is_reply":${response},"Summary":`,
    };
  }
}
