// What the agent tells the proxy about one redirected connection. The proxy never derives any of
// it from the traffic: the source identity comes from the ipcache (the agent's lookup of the
// connection's source address), never from a header.

import type { FlowEndpoint, FlowTrafficDirection } from '../../flow/types.ts';
import type { RuleRef } from '../../policy/types.ts';
import type { PortRuleHTTP } from '../../policy-api/types.ts';

export interface HostPort {
  address: string;
  port: number;
}

/**
 * The HTTP rules of one direction's redirect entry (the union of the matching MapState entries,
 * as `decide` unions them). Cilium's L7 wildcard (a rule without L7 on the same port) is one
 * empty rule `{pos}`, which admits every request; an empty `rules` list admits none.
 */
export interface HTTPRuleSet {
  // Treated as immutable: rules and decisions are cached per object, so a change is a new set.
  direction: 'INGRESS' | 'EGRESS';
  rules: readonly PortRuleHTTP[];
  /** The rules' policies, for the records' *_allowed_by. */
  policies?: readonly RuleRef[];
  /** Namespace of the policy: where a `secret` without namespace is looked up. */
  namespace?: string;
}

export interface RedirectContext {
  /** Numeric security identity of the source, from the ipcache. */
  sourceIdentity: number;
  /** The endpoints as the flow records show them (identity, labels, namespace, pod). */
  source: FlowEndpoint;
  destination: FlowEndpoint;
  /** Where the client connected before nftables redirected it; the proxy forwards there. */
  originalDst: HostPort;
  /** The redirect's direction: ingress on the destination's node, egress on the source's. */
  direction: Exclude<FlowTrafficDirection, 'TRAFFIC_DIRECTION_UNKNOWN'>;
  /**
   * Every rule set a request must pass (the source's egress and the destination's ingress when
   * both have HTTP rules). A function is asked again for every request, so a policy change
   * applies to the next request on a kept-alive connection.
   */
  ruleSets: readonly HTTPRuleSet[] | (() => readonly HTTPRuleSet[]);
}

/** What the proxy knows about an accepted connection when it asks for its context. */
export interface ConnectionInfo {
  remote: HostPort;
  /** The proxy's own listening address. */
  local: HostPort;
  originalDst: HostPort;
}

/** The agent's answer; undefined (unknown connection) closes it without forwarding anything. */
export type RedirectLookup = (
  conn: ConnectionInfo,
) => RedirectContext | undefined | Promise<RedirectContext | undefined>;
