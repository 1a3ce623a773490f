// The engine's contract with its consumers (policytest/, datapath/, proxy/, flow/, cli/).
// Names follow Cilium: Identity, MapState, Verdict, TrafficDirection, DerivedFrom.

import type { DNSCache } from '../fqdn/cache.ts';
import type { IdentityBackend } from '../identity/backend.ts';
import type { Issue, SourcePos } from '../policy-api/issue.ts';
import type { PolicyObject, PortRuleDNS, PortRuleHTTP, PortRuleKafka } from '../policy-api/types.ts';

export type TrafficDirection = 'INGRESS' | 'EGRESS';

/** Agent's --enable-policy. */
export type EnforcementMode = 'default' | 'always' | 'never';

/** IANA protocol numbers, as the datapath keys them. 0 = any (TCP, UDP and SCTP for L4 rules). */
export const PROTO = { ANY: 0, ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58, SCTP: 132 } as const;
export type ProtoNumber = number;

export type FlowProtocol = 'TCP' | 'UDP' | 'SCTP' | 'ICMP' | 'ICMPv6';

/** A numeric security identity (Cilium's numbering: 1 host, 2 world, …, ≥256 cluster). */
export type NumericIdentity = number;

/** Which rule of which policy produced something: for explanations and Hubble's *_by fields. */
export interface RuleRef {
  /** CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | NetworkPolicy */
  kind: string;
  name: string;
  /** Absent for cluster-wide policies. */
  namespace?: string;
  /** Index into `specs` (0 for `spec`; specs follow spec). */
  ruleIndex: number;
  /** ingress | ingressDeny | egress | egressDeny (KNP: ingress | egress). */
  section: string;
  /** Index of the entry in that section; -1 for a synthetic entry. */
  entryIndex: number;
  /** Where the entry stands in its file. */
  pos: SourcePos;
}

/** The L7 rules that apply to one redirected (peer, port): the union of all matching entries. */
export type L7RuleSet =
  | { parser: 'http'; rules: PortRuleHTTP[] }
  | { parser: 'kafka'; rules: PortRuleKafka[] }
  | { parser: 'dns'; rules: PortRuleDNS[] };

/**
 * One MapState key, as Cilium's policy map has it: direction, peer identity (0 = any peer),
 * protocol (0 = any of TCP/UDP/SCTP) and an inclusive destination port range (0–65535 = all).
 * For ICMP/ICMPv6 the "port" is the ICMP type, as in Cilium.
 */
export interface MapStateKey {
  direction: TrafficDirection;
  identity: NumericIdentity;
  proto: ProtoNumber;
  portLo: number;
  portHi: number;
}

/**
 * `audit`: a deny of a policy in audit mode (annotation policy.seawall.dev/audit-mode: "true") or
 * of an endpoint in PolicyAuditMode: it decides nothing, but a flow it covers that the rest of the
 * map lets pass is reported AUDIT (it would have been dropped). See decide.ts for the precedence.
 */
export type MapStateVerdict = 'allow' | 'deny' | 'redirect' | 'audit';

export interface MapStateEntry {
  key: MapStateKey;
  verdict: MapStateVerdict;
  /** For `redirect`: which L7 parser and rules the proxy applies. */
  l7?: L7RuleSet;
  /** Rules this entry came from. */
  derivedFrom: RuleRef[];
}

export interface DirectionPolicy {
  /** Policy applies in this direction (some selecting rule has a section for it, or mode always). */
  enforced: boolean;
  /** With enforcement: traffic no entry allows is dropped. False = implicit allow-all below denies. */
  defaultDeny: boolean;
  /**
   * The default deny is audited: only audited policies bring it (or the endpoint is in
   * PolicyAuditMode). What it would drop passes, reported AUDIT. Consumers that ignore this
   * field enforce the default deny: fail closed.
   */
  auditDefaultDeny?: true;
}

/** The distilled policy of one endpoint: what the datapath and the proxies enforce. */
export interface EndpointPolicy {
  endpoint: string; // namespace/name
  identity: NumericIdentity;
  ingress: DirectionPolicy;
  egress: DirectionPolicy;
  entries: MapStateEntry[];
  /** Rules selecting this endpoint, for `policy show`. */
  selectedBy: RuleRef[];
}

/**
 * What changed in one endpoint's MapState since the last drain, for consumers that follow it
 * incrementally (the datapath). `full`: start over from endpointPolicy() (first drain, the log
 * overflowed, a direction's enforced/defaultDeny changed, or the endpoint is unknown); the lists
 * are empty then. Entries with the same key and verdict but different L7 parsers are separate
 * entries. Removed entries carry no provenance (`derivedFrom` empty, no `l7`).
 */
export interface EndpointChanges {
  identity: NumericIdentity;
  full: boolean;
  removed: MapStateEntry[];
  added: MapStateEntry[];
}

// ---------------------------------------------------------------- flows and verdicts

export type PeerRef =
  | { kind: 'endpoint'; name: string; namespace: string }
  | { kind: 'ip'; ip: string }
  | { kind: 'entity'; entity: 'host' | 'remote-node' | 'kube-apiserver' | 'world' };

export type L7Request =
  | {
      kind: 'http';
      method: string;
      path: string;
      host?: string;
      headers?: Record<string, string>;
      /** HTTP/2 gRPC call (POST /pkg.Svc/Method). */
      grpc?: boolean;
    }
  | {
      kind: 'kafka';
      apiKey: number;
      apiVersion: number;
      clientID: string;
      topics: string[];
    }
  | { kind: 'dns'; query: string; qtype: string };

export interface FlowRequest {
  src: PeerRef;
  dst: PeerRef;
  protocol: FlowProtocol;
  /** Destination port; absent for ICMP. */
  dport?: number;
  icmp?: { type: number; family: 'IPv4' | 'IPv6' };
  l7?: L7Request;
}

/** Hubble's drop reasons used by policy, plus the L7 refusal. */
export type DenyReason = 'POLICY_DENIED' | 'POLICY_DENY' | 'L7_DENIED';

/** Hubble's policy_match_type names. */
export type MatchType = 'L3_ONLY' | 'L3_L4' | 'L4_ONLY' | 'ALL' | 'NONE';

export interface DirectionDecision {
  direction: TrafficDirection;
  /** The subject endpoint whose policy decided (namespace/name). */
  endpoint: string;
  enforced: boolean;
  allowed: boolean;
  reason?: DenyReason;
  matchType: MatchType;
  /** Allow entries that matched (empty when default-allow or denied). */
  allowedBy: RuleRef[];
  /** Deny entries that matched. */
  deniedBy: RuleRef[];
  /**
   * Set when the direction lets the flow pass only because of audit mode: the policies (and rules)
   * that would have denied it, and how (POLICY_DENY: an explicit deny; POLICY_DENIED: the
   * default deny they bring). `endpointMode`: the endpoint's PolicyAuditMode made them audit.
   */
  audited?: { by: RuleRef[]; reason: 'POLICY_DENY' | 'POLICY_DENIED'; endpointMode?: true };
  /** L7 outcome when the matching entry redirects to a proxy. */
  l7?: { parser: L7RuleSet['parser']; allowed: boolean; matchedRule?: number };
  /** Human explanation lines, most important first. */
  explanation: string[];
}

export interface Verdict {
  /** Whether the connection goes through (true for AUDIT: audit mode lets it pass). */
  allowed: boolean;
  /**
   * Hubble's verdict enum string. AUDIT: policy would drop the flow but audit mode (of a policy
   * or of the endpoint) lets it pass; the audited direction's `audited` says who would have.
   */
  verdict: 'FORWARDED' | 'DROPPED' | 'AUDIT';
  reason?: DenyReason;
  /**
   * The direction whose decision is final (the denying one, else the audited one, or ingress when
   * both allow).
   */
  decidedBy?: TrafficDirection;
  egress?: DirectionDecision;
  ingress?: DirectionDecision;
  srcIdentity: NumericIdentity;
  dstIdentity: NumericIdentity;
  /** Summary explanation for humans. */
  explanation: string[];
}

// ---------------------------------------------------------------- the engine facade

export interface ContainerPort {
  name?: string;
  port: number;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

/** A workload (pod) or an outside address, as PolicyTest files and manifests describe them. */
export interface EndpointSpec {
  name: string;
  /** Absent for outside addresses. */
  namespace?: string;
  /** Pod labels (k8s source); the engine derives Cilium's identity labels itself. */
  labels: Record<string, string>;
  serviceAccount?: string;
  ip: string;
  /** Default node-1. */
  node?: string;
  ports?: ContainerPort[];
  /** An address outside the cluster: gets a CIDR identity, never a pod identity. */
  external?: boolean;
}

export interface EngineConfig {
  enforcementMode: EnforcementMode;
  /** io.cilium.k8s.policy.cluster; default "default". */
  clusterName: string;
  /** The node this engine acts for (reserved:host); default node-1. */
  localNode: string;
  /**
   * Agent's --policy-audit-mode: every endpoint in PolicyAuditMode (each policy drop becomes an
   * AUDIT verdict). Default false.
   */
  policyAuditMode?: boolean;
}

/** Per-endpoint options, as `cilium-dbg endpoint config` sets them. */
export interface EndpointOptions {
  /** PolicyAuditMode: what policy would drop passes, reported AUDIT (or the agent-wide default). */
  policyAuditMode?: boolean;
}

/** What an engine is given rather than builds: the node's shared state. */
export interface EngineDeps {
  /** Identities and the ipcache (default: a new memory backend, identity/backend.ts). */
  identity?: IdentityBackend;
  /** The node's DNS cache, shared by its pods and fed by the DNS proxy (default: a new one). */
  dns?: DNSCache;
}

/** Builds an engine (the real one is in default-engine.ts; tests may pass a stand-in). */
export type EngineFactory = (config: Partial<EngineConfig>, deps?: EngineDeps) => PolicyEngineAPI;

/**
 * The one policy engine. Offline tools and the live agent both drive it; every verdict in
 * Seawall comes from `decide`. Implemented by `PolicyEngine` in src/policy/engine.ts, and for tests
 * by `FakeEngine` in src/policy/testing/fake-engine.ts.
 */
export interface PolicyEngineAPI {
  readonly config: EngineConfig;
  upsertNamespace(name: string, labels: Record<string, string>): void;
  upsertEndpoint(ep: EndpointSpec): void;
  removeEndpoint(namespace: string | undefined, name: string): void;
  /**
   * Sets one endpoint's options (PolicyAuditMode), kept across upserts of the endpoint. False when
   * no such pod is known. Optional: engines without per-endpoint options leave it out.
   */
  setEndpointOptions?(namespace: string | undefined, name: string, opts: EndpointOptions): boolean;
  /** Per-endpoint options in effect (the agent-wide default included). */
  endpointOptions?(namespace: string | undefined, name: string): Required<EndpointOptions> | undefined;
  /** Adds or replaces a policy (keyed by kind/namespace/name). Returns resolution errors. */
  upsertPolicy(p: PolicyObject): Issue[];
  removePolicy(kind: string, namespace: string | undefined, name: string): void;
  /** Records a DNS answer seen by the DNS proxy (name → IPs for ttl seconds from `now`). */
  learnDNS(name: string, ips: string[], ttlSeconds: number, nowMs?: number): void;
  /** Decides one new connection. Pure with respect to engine state. */
  decide(flow: FlowRequest, nowMs?: number): Verdict;
  /** The distilled policy of one endpoint (the datapath's input). */
  endpointPolicy(namespace: string | undefined, name: string): EndpointPolicy;
  /**
   * Entry-level changes of one endpoint's policy since the previous call. The first call for an
   * endpoint starts the log and answers `full`; an engine that keeps no log answers `full` always.
   */
  drainEndpointChanges(namespace: string | undefined, name: string): EndpointChanges;
  /** Numeric identity of an endpoint, entity or IP (CIDR identity for outside addresses). */
  identityOf(peer: PeerRef): NumericIdentity;
  /** Labels of a numeric identity (source:key=value), for flow records. */
  labelsOf(id: NumericIdentity): string[];
  // Objects that peers refer to.
  /** A Service for toServices: labels, pod selector (absent = selector-less), backend addresses. */
  upsertService(
    namespace: string,
    name: string,
    labels: Record<string, string>,
    selector?: Record<string, string>,
    addresses?: readonly string[],
  ): Issue[];
  removeService(namespace: string, name: string): Issue[];
  /** A CiliumCIDRGroup for cidrGroupRef / cidrGroupSelector. */
  upsertCIDRGroup(name: string, labels: Record<string, string>, cidrs: readonly string[]): Issue[];
  removeCIDRGroup(name: string): Issue[];
  /** A node for fromNodes/toNodes (remote nodes with labels get their own identities). */
  upsertNode(name: string, labels: Record<string, string>, ip: string): void;
  removeNode(name: string): void;
}
