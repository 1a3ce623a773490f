// Typed API objects of cilium.io/v2 (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy) and
// networking.k8s.io/v1 NetworkPolicy, as decoded from YAML/JSON. Field names are the API's.
// Every object that an explanation may point at carries `pos` (where it starts in its file).
// Optional fields are absent when the source omits them; an empty list stays an empty list,
// because Cilium gives `[]` and absent different meanings (see cilium-semantics.md §3.2).

import type { SourcePos } from './issue.ts';

export interface Located {
  pos: SourcePos;
}

// ---------------------------------------------------------------- selectors

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement extends Located {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

/** Kubernetes LabelSelector as Cilium's EndpointSelector uses it (keys may carry a source). */
export interface EndpointSelector extends Located {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

// ---------------------------------------------------------------- peers

export type Entity =
  | 'all'
  | 'world'
  | 'cluster'
  | 'host'
  | 'init'
  | 'ingress'
  | 'unmanaged'
  | 'remote-node'
  | 'health'
  | 'none'
  | 'kube-apiserver';

export interface CIDRRule extends Located {
  cidr?: string;
  cidrGroupRef?: string;
  cidrGroupSelector?: EndpointSelector;
  except?: string[];
}

export interface FQDNSelector extends Located {
  matchName?: string;
  matchPattern?: string;
}

export interface K8sServiceNamespace {
  serviceName?: string;
  namespace?: string;
}

export interface ServiceSelector {
  selector: EndpointSelector;
  namespace?: string;
}

export interface Service extends Located {
  k8sService?: K8sServiceNamespace;
  k8sServiceSelector?: ServiceSelector;
}

export interface AWSGroup {
  labels?: Record<string, string>;
  securityGroupsIds?: string[];
  securityGroupsNames?: string[];
  region?: string;
}

export interface Groups extends Located {
  aws?: AWSGroup;
}

// ---------------------------------------------------------------- L4

/** TCP | UDP | SCTP | ANY, plus the extended IP protocols Cilium knows. */
export type L4Proto =
  | 'TCP'
  | 'UDP'
  | 'SCTP'
  | 'ANY'
  | 'VRRP'
  | 'IGMP'
  | 'GRE'
  | 'IPIP'
  | 'IPV6'
  | 'ESP'
  | 'AH';

export interface PortProtocol extends Located {
  /** As written: a decimal number or an IANA service name; absent when omitted. */
  port?: string;
  endPort?: number;
  /** Upper-cased; absent = ANY. */
  protocol?: L4Proto;
}

export interface ICMPField extends Located {
  family?: 'IPv4' | 'IPv6';
  /** A number 0–255 or a CamelCase name such as EchoRequest. */
  type: number | string;
}

export interface ICMPRule extends Located {
  fields: ICMPField[];
}

// ---------------------------------------------------------------- L7

export interface HeaderMatch extends Located {
  name: string;
  value?: string;
  secret?: { namespace?: string; name: string };
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

export interface PortRuleHTTP extends Located {
  path?: string;
  method?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HeaderMatch[];
}

export interface PortRuleKafka extends Located {
  role?: string;
  apiKey?: string;
  apiVersion?: string;
  clientID?: string;
  topic?: string;
}

export interface PortRuleDNS extends Located {
  matchName?: string;
  matchPattern?: string;
}

export interface L7Rules extends Located {
  http?: PortRuleHTTP[];
  kafka?: PortRuleKafka[];
  dns?: PortRuleDNS[];
  l7proto?: string;
  l7?: Record<string, string>[];
}

export interface TLSContext {
  secret: { namespace?: string; name: string };
  trustedCA?: string;
  certificate?: string;
  privateKey?: string;
}

export interface Listener {
  envoyConfig: { kind?: string; name: string };
  name: string;
  priority?: number;
}

export interface PortRule extends Located {
  ports?: PortProtocol[];
  rules?: L7Rules;
  serverNames?: string[];
  terminatingTLS?: TLSContext;
  originatingTLS?: TLSContext;
  listener?: Listener;
}

/** The deny variant of PortRule: ports only. */
export interface PortDenyRule extends Located {
  ports?: PortProtocol[];
}

export interface Authentication {
  mode: 'disabled' | 'required' | 'test-always-fail';
}

// ---------------------------------------------------------------- rules

interface IngressCommon extends Located {
  fromEndpoints?: EndpointSelector[];
  fromRequires?: EndpointSelector[];
  fromCIDR?: string[];
  fromCIDRSet?: CIDRRule[];
  fromEntities?: Entity[];
  fromNodes?: EndpointSelector[];
  fromGroups?: Groups[];
  icmps?: ICMPRule[];
}

export interface IngressRule extends IngressCommon {
  toPorts?: PortRule[];
  authentication?: Authentication;
}

export interface IngressDenyRule extends IngressCommon {
  toPorts?: PortDenyRule[];
}

interface EgressCommon extends Located {
  toEndpoints?: EndpointSelector[];
  toRequires?: EndpointSelector[];
  toCIDR?: string[];
  toCIDRSet?: CIDRRule[];
  toEntities?: Entity[];
  toServices?: Service[];
  toNodes?: EndpointSelector[];
  toGroups?: Groups[];
  icmps?: ICMPRule[];
}

export interface EgressRule extends EgressCommon {
  toPorts?: PortRule[];
  toFQDNs?: FQDNSelector[];
  authentication?: Authentication;
}

export interface EgressDenyRule extends EgressCommon {
  toPorts?: PortDenyRule[];
}

export interface DefaultDenyConfig {
  ingress?: boolean;
  egress?: boolean;
}

/** One Cilium rule: a CNP's `spec` or one of its `specs`. */
export interface Rule extends Located {
  endpointSelector?: EndpointSelector;
  nodeSelector?: EndpointSelector;
  ingress?: IngressRule[];
  ingressDeny?: IngressDenyRule[];
  egress?: EgressRule[];
  egressDeny?: EgressDenyRule[];
  enableDefaultDeny?: DefaultDenyConfig;
  labels?: Array<{ key: string; value?: string; source?: string }>;
  description?: string;
  log?: { value?: string };
}

// ---------------------------------------------------------------- objects

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
}

export interface CiliumNetworkPolicy extends Located {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumNetworkPolicy';
  metadata: ObjectMeta;
  spec?: Rule;
  specs?: Rule[];
}

export interface CiliumClusterwideNetworkPolicy extends Located {
  apiVersion: 'cilium.io/v2';
  kind: 'CiliumClusterwideNetworkPolicy';
  metadata: ObjectMeta;
  spec?: Rule;
  specs?: Rule[];
}

// Kubernetes NetworkPolicy (networking.k8s.io/v1)

export interface K8sLabelSelector extends Located {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface IPBlock extends Located {
  cidr: string;
  except?: string[];
}

export interface NetworkPolicyPeer extends Located {
  podSelector?: K8sLabelSelector;
  namespaceSelector?: K8sLabelSelector;
  ipBlock?: IPBlock;
}

export interface NetworkPolicyPort extends Located {
  /** Absent = TCP. */
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  /** A number or a named port; absent = all ports of the protocol. */
  port?: number | string;
  endPort?: number;
}

export interface NetworkPolicyIngressRule extends Located {
  from?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule extends Located {
  to?: NetworkPolicyPeer[];
  ports?: NetworkPolicyPort[];
}

export interface NetworkPolicySpec extends Located {
  podSelector: K8sLabelSelector;
  policyTypes?: Array<'Ingress' | 'Egress'>;
  ingress?: NetworkPolicyIngressRule[];
  egress?: NetworkPolicyEgressRule[];
}

export interface NetworkPolicy extends Located {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: ObjectMeta;
  spec: NetworkPolicySpec;
}

export type PolicyObject = CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | NetworkPolicy;

/** Non-policy objects met while loading: passed over, but kept for endpoint discovery. */
export interface OtherObject extends Located {
  apiVersion: string;
  kind: string;
  /** The plain decoded value (e.g. a Deployment), for consumers that read workloads. */
  value: unknown;
}

/** What loading one or more sources yields: every policy that decoded, every issue found. */
export interface LoadResult {
  /** Policies without errors. */
  policies: PolicyObject[];
  others: OtherObject[];
  /** Policies left out because they have errors. */
  rejected: number;
  issues: import('./issue.ts').Issue[];
  /** Files read (for the summary line). */
  files: string[];
}
