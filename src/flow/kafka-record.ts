// L7 Kafka flow records of the Kafka proxy, in the shape Hubble gives Cilium's Kafka access-log
// entries (flow.proto: Type L7, event_type 129 = MessageTypeAccessLog, l7{type, kafka}) with
// flow.proto's Kafka message: error_code, api_version, api_key (Cilium's lower-case key name),
// correlation_id, topic. One REQUEST record per topic a request names (one with topic "" for a
// request naming none), as Cilium logs one entry per topic: FORWARDED with error_code 0, or
// DROPPED with the error code the proxy answered (29 TOPIC_AUTHORIZATION_FAILED).

import { randomUUID } from 'node:crypto';
import type { RuleRef } from '../policy/types.ts';
import { formatTimestamp, policiesOf, type Timestamp } from './record.ts';
import { type Flow, type FlowEndpoint, type FlowVerdict, MESSAGE_TYPE } from './types.ts';

export interface KafkaPeer {
  ip: string;
  port: number;
  endpoint: FlowEndpoint;
}

export interface KafkaRecordInput {
  time: Date | Timestamp;
  nodeName: string;
  uuid?: string;
  verdict: Extract<FlowVerdict, 'FORWARDED' | 'DROPPED'>;
  direction: 'INGRESS' | 'EGRESS';
  client: KafkaPeer;
  server: KafkaPeer;
  errorCode: number;
  apiVersion: number;
  /** Cilium's name of the key (`produce`, `fetch`, …), or the number for keys it has no name for. */
  apiKey: string;
  correlationId: number;
  topic: string;
  allowedBy?: { ingress?: readonly RuleRef[]; egress?: readonly RuleRef[] };
  /** Appended to the Summary (a denial's reason). */
  note?: string;
  proxyPort?: number;
}

/** One L7 Kafka flow record. Keys follow flow.proto's field order, as protojson prints them. */
export function kafkaFlowRecord(r: KafkaRecordInput): Flow {
  const flow = { time: formatTimestamp(r.time), uuid: r.uuid ?? randomUUID(), verdict: r.verdict } as Flow;
  flow.IP = {
    source: r.client.ip,
    destination: r.server.ip,
    ipVersion: r.client.ip.includes(':') ? 'IPv6' : 'IPv4',
  };
  flow.l4 = { TCP: { source_port: r.client.port, destination_port: r.server.port } };
  flow.source = r.client.endpoint;
  flow.destination = r.server.endpoint;
  flow.Type = 'L7';
  flow.node_name = r.nodeName;
  const kafka: Record<string, unknown> = {};
  // protojson leaves zero values out
  if (r.errorCode !== 0) kafka.error_code = r.errorCode;
  if (r.apiVersion !== 0) kafka.api_version = r.apiVersion;
  kafka.api_key = r.apiKey;
  if (r.correlationId !== 0) kafka.correlation_id = r.correlationId;
  if (r.topic !== '') kafka.topic = r.topic;
  flow.l7 = { type: 'REQUEST', kafka };
  flow.event_type = { type: MESSAGE_TYPE.ACCESS_LOG };
  flow.traffic_direction = r.direction;
  flow.is_reply = false;
  if (r.proxyPort !== undefined) flow.proxy_port = r.proxyPort;
  // Hubble's seven parser: "Kafka request <api key> correlation id <n> topic '<topic>'"
  const s = `Kafka request ${r.apiKey} correlation id ${r.correlationId} topic '${r.topic}'`;
  flow.Summary = r.note === undefined ? s : `${s}; ${r.note}`;
  if (r.verdict === 'FORWARDED') {
    const eg = policiesOf(r.allowedBy?.egress ?? []);
    const ing = policiesOf(r.allowedBy?.ingress ?? []);
    if (eg.length > 0) flow.egress_allowed_by = eg;
    if (ing.length > 0) flow.ingress_allowed_by = ing;
  }
  return flow;
}
