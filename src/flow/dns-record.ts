// Hubble L7 DNS flow records, as Hubble's seven parser makes them from the DNS proxy's access log
// (pkg/hubble/parser/seven: decodeDNS, dnsSummary): Type L7, event type 129 (access log),
// observation point always egress, a request from the pod to the server and a response from the
// server to the pod (is_reply), l7.dns with observation_source "proxy". A request carries only
// query, observation_source and qtypes; a response adds ips, ttl, cnames, rcode and rrtypes.
// Type and rcode names are the wire layer's (proxy/dns is above this layer, so they come in as text).

import { randomUUID } from 'node:crypto';
import { formatTimestamp, type Timestamp } from './record.ts';
import { type Flow, type FlowEndpoint, type FlowVerdict, MESSAGE_TYPE } from './types.ts';

export interface DNSPeer {
  ip: string;
  port: number;
  endpoint: FlowEndpoint;
}

export interface DNSRecordInput {
  time: Date | Timestamp;
  /** Deterministic ids for golden tests; random otherwise. */
  uuid?: string;
  nodeName: string;
  type: 'REQUEST' | 'RESPONSE';
  verdict: Extract<FlowVerdict, 'FORWARDED' | 'DROPPED' | 'ERROR'>;
  transport: 'UDP' | 'TCP';
  /** The pod that asked. */
  client: DNSPeer;
  /** The server it asked (the original destination). */
  server: DNSPeer;
  /** Query name, lower-case, fully qualified (as Cilium logs it). */
  query: string;
  /** Hubble's type names, e.g. ["A"]. */
  qtypes: string[];
  /** Response only. */
  ips?: string[];
  ttl?: number;
  cnames?: string[];
  rcode?: number;
  /** gopacket's rcode text (for the summary), e.g. "Query Refused". */
  rcodeText?: string;
  rrtypes?: string[];
  /** Response only: request to response, nanoseconds. */
  latencyNs?: number;
}

/**
 * The record. Its lists and endpoints are copies of the input's, unless `owned`: the input's own
 * objects, made for this record alone (the agent's expansion of a compact record), go in as they are.
 */
export function dnsFlowRecord(r: DNSRecordInput, owned = false): Flow {
  const response = r.type === 'RESPONSE';
  const src = response ? r.server : r.client;
  const dst = response ? r.client : r.server;
  const list = owned ? (xs: string[]) => xs : (xs: string[]) => [...xs];
  const dns: Record<string, unknown> = { query: r.query };
  if (response) {
    if (r.ips !== undefined && r.ips.length > 0) dns.ips = list(r.ips);
    if (r.ttl !== undefined && r.ttl !== 0) dns.ttl = r.ttl;
    if (r.cnames !== undefined && r.cnames.length > 0) dns.cnames = list(r.cnames);
  }
  dns.observation_source = 'proxy';
  if (response && r.rcode !== undefined && r.rcode !== 0) dns.rcode = r.rcode;
  if (r.qtypes.length > 0) dns.qtypes = list(r.qtypes);
  if (response && r.rrtypes !== undefined && r.rrtypes.length > 0) dns.rrtypes = list(r.rrtypes);

  const ports = { source_port: src.port, destination_port: dst.port };
  const l7: Flow['l7'] =
    response && r.latencyNs !== undefined && r.latencyNs > 0
      ? { type: r.type, latency_ns: String(Math.round(r.latencyNs)), dns }
      : { type: r.type, dns };
  // Keys in flow.proto's field order, as protojson prints them; one literal (the agent expands a
  // record per DNS message: a property added at a time was a map change each)
  return {
    time: formatTimestamp(r.time),
    uuid: r.uuid ?? randomUUID(),
    verdict: r.verdict,
    IP: { source: src.ip, destination: dst.ip, ipVersion: src.ip.includes(':') ? 'IPv6' : 'IPv4' },
    l4: r.transport === 'TCP' ? { TCP: ports } : { UDP: ports },
    source: owned ? src.endpoint : { ...src.endpoint },
    destination: owned ? dst.endpoint : { ...dst.endpoint },
    Type: 'L7',
    node_name: r.nodeName,
    l7,
    event_type: { type: MESSAGE_TYPE.ACCESS_LOG },
    traffic_direction: 'EGRESS',
    is_reply: response,
    Summary: dnsSummary(r),
  } as Flow;
}

/** Hubble's DNS summary line ("DNS Query a.com. A", "DNS Answer "1.2.3.4" TTL: 30 (Proxy a.com. A)"). */
export function dnsSummary(r: DNSRecordInput): string {
  const qt = r.qtypes.join(',');
  if (r.type === 'REQUEST') return `DNS Query ${r.query} ${qt}`;
  let answer: string;
  if ((r.rcode ?? 0) !== 0) answer = `RCode: ${r.rcodeText ?? 'Unknown'}`;
  else {
    const parts: string[] = [];
    if (r.ips !== undefined && r.ips.length > 0) parts.push(JSON.stringify(r.ips.join(',')));
    if (r.cnames !== undefined && r.cnames.length > 0)
      parts.push(`CNAMEs: ${JSON.stringify(r.cnames.join(','))}`);
    answer = parts.join(' ');
  }
  return `DNS Answer ${answer} TTL: ${r.ttl ?? 0} (Proxy ${r.query} ${qt})`;
}

/** gopacket's DNSResponseCode.String, as Hubble's DNS summary and its dns metrics print it. */
const RCODE_NAMES: Record<number, string> = {
  0: 'No Error',
  1: 'Format Error',
  2: 'Server Failure',
  3: 'Non-Existent Domain',
  4: 'Not Implemented',
  5: 'Query Refused',
};

export function dnsRcodeName(r: number): string {
  return RCODE_NAMES[r] ?? 'Unknown';
}
