// Flow records in the JSON shape of Hubble's flow.proto, as `hubble observe -o json` prints them
// (protojson with proto field names: zero values are omitted, enums are their names, uint64 values
// are strings, timestamps are RFC 3339 with 0, 3, 6 or 9 fractional digits).
// Field names and enum strings follow cilium/api/v1/flow/flow.proto; numbers follow
// cilium/pkg/monitor/api (message types, policy match types) and the DropReason enum.

export type FlowVerdict =
  | 'FORWARDED'
  | 'DROPPED'
  | 'ERROR'
  | 'AUDIT'
  | 'REDIRECTED'
  | 'TRACED'
  | 'TRANSLATED';

/** The DropReason names Seawall emits (flow.proto's enum; the number is `drop_reason`). */
export const DROP_REASON = {
  /** Anti-spoofing: an endpoint sent from an address not its own. */
  INVALID_SOURCE_IP: 132,
  POLICY_DENIED: 133,
  POLICY_DENY: 181,
} as const;
export type DropReasonName = keyof typeof DROP_REASON;

/** pkg/monitor/api TraceObservationPoints: a trace event's `sub_type` is the index of its name. */
export const TRACE_POINT_NAMES: readonly string[] = [
  'to-endpoint',
  'to-proxy',
  'to-host',
  'to-stack',
  'to-overlay',
  'from-endpoint',
  'from-proxy',
  'from-host',
  'from-stack',
  'from-overlay',
  'from-network',
  'to-network',
];

/** Monitor message types (pkg/monitor/api MessageType*): `event_type.type`. */
export const MESSAGE_TYPE = {
  DROP: 1,
  DEBUG: 2,
  CAPTURE: 3,
  TRACE: 4,
  POLICY_VERDICT: 5,
  ACCESS_LOG: 129,
  AGENT: 130,
} as const;

/** Policy match types (pkg/monitor/api PolicyMatch*): `policy_match_type`. */
export const POLICY_MATCH = {
  NONE: 0,
  L3_ONLY: 1,
  L3_L4: 2,
  L4_ONLY: 3,
  ALL: 4,
  L3_PROTO: 5,
  PROTO_ONLY: 6,
} as const;

/** The lowercase names Hubble's policy metric uses for the match label. */
export const POLICY_MATCH_NAME: Record<number, string> = {
  0: 'none',
  1: 'l3-only',
  2: 'l3-l4',
  3: 'l4-only',
  4: 'all',
  5: 'l3-proto',
  6: 'proto-only',
};

export type FlowTrafficDirection = 'TRAFFIC_DIRECTION_UNKNOWN' | 'INGRESS' | 'EGRESS';
export type FlowType = 'UNKNOWN_TYPE' | 'L3_L4' | 'L7' | 'SOCK';
export type IPVersion = 'IPv4' | 'IPv6';

export type TraceObservationPoint =
  | 'TO_PROXY'
  | 'TO_HOST'
  | 'TO_STACK'
  | 'TO_OVERLAY'
  | 'TO_ENDPOINT'
  | 'FROM_ENDPOINT'
  | 'FROM_PROXY'
  | 'FROM_HOST'
  | 'FROM_STACK'
  | 'FROM_OVERLAY'
  | 'FROM_NETWORK'
  | 'TO_NETWORK';

export interface FlowEthernet {
  source?: string;
  destination?: string;
}

export interface FlowIP {
  source: string;
  destination: string;
  ipVersion: IPVersion;
}

export interface TCPFlags {
  FIN?: true;
  SYN?: true;
  RST?: true;
  PSH?: true;
  ACK?: true;
  URG?: true;
  ECE?: true;
  CWR?: true;
  NS?: true;
}

export interface PortPair {
  source_port?: number;
  destination_port?: number;
}

export interface ICMPInfo {
  type?: number;
  code?: number;
}

/** flow.proto's Layer4: a oneof, so exactly one key. */
export type FlowLayer4 =
  | { TCP: PortPair & { flags?: TCPFlags } }
  | { UDP: PortPair }
  | { SCTP: PortPair }
  | { ICMPv4: ICMPInfo }
  | { ICMPv6: ICMPInfo };

export interface Workload {
  name: string;
  kind: string;
}

export interface FlowEndpoint {
  ID?: number;
  identity?: number;
  cluster_name?: string;
  namespace?: string;
  /** Cilium labels, `source:key=value`, sorted. */
  labels?: string[];
  pod_name?: string;
  workloads?: Workload[];
}

/** flow.proto's Policy: one policy that allowed or denied the flow. */
export interface FlowPolicy {
  name: string;
  namespace?: string;
  labels?: string[];
  /** uint64 in protojson: a decimal string. */
  revision?: string;
  kind?: string;
}

export interface CiliumEventType {
  type: number;
  sub_type?: number;
}

/** L7 record (flow.proto's Layer7); filled by the proxies in a later issue. */
export interface FlowLayer7 {
  type?: 'REQUEST' | 'RESPONSE' | 'SAMPLE';
  latency_ns?: string;
  http?: Record<string, unknown>;
  dns?: Record<string, unknown>;
  kafka?: Record<string, unknown>;
}

export interface Flow {
  time: string;
  uuid: string;
  verdict: FlowVerdict;
  /** Deprecated number form of drop_reason_desc; only for DROPPED. */
  drop_reason?: number;
  ethernet?: FlowEthernet;
  IP?: FlowIP;
  l4?: FlowLayer4;
  source?: FlowEndpoint;
  destination?: FlowEndpoint;
  Type: FlowType;
  node_name?: string;
  source_names?: string[];
  destination_names?: string[];
  l7?: FlowLayer7;
  /** Deprecated twin of is_reply; Cilium writes it too (true on replies only). */
  reply?: boolean;
  event_type?: CiliumEventType;
  traffic_direction?: FlowTrafficDirection;
  policy_match_type?: number;
  trace_observation_point?: TraceObservationPoint;
  drop_reason_desc?: DropReasonName | string;
  is_reply?: boolean;
  proxy_port?: number;
  Summary?: string;
  egress_allowed_by?: FlowPolicy[];
  ingress_allowed_by?: FlowPolicy[];
  egress_denied_by?: FlowPolicy[];
  ingress_denied_by?: FlowPolicy[];
}

/** One line of `hubble observe -o jsonpb`: GetFlowsResponse with its flow. */
export interface FlowEvent {
  flow: Flow;
  node_name?: string;
  time: string;
}
