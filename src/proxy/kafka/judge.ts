// Judges one Kafka request against the rule sets of its connection, with l7/kafka's matcher (the
// one `decide` runs through policy/l7match), so the proxy and the offline engine agree: every
// side with Kafka rules must admit the request; a side's rules are the union of its matching
// redirect entries (Cilium's L7 wildcard is one empty rule, which admits every request).

import type { FlowEndpoint, FlowTrafficDirection } from '../../flow/types.ts';
import { compileKafkaRules, type KafkaPolicy, matchKafka } from '../../l7/kafka.ts';
import type { RuleRef } from '../../policy/types.ts';
import type { PortRuleKafka } from '../../policy-api/types.ts';
import type { HostPort } from '../http/context.ts';

export interface KafkaRuleSet {
  direction: 'INGRESS' | 'EGRESS';
  /** Treated as immutable: compiled once per array. Empty admits nothing. */
  rules: readonly PortRuleKafka[];
  policies?: readonly RuleRef[];
}

/** What the agent's mirror says about one redirected connection (never from the traffic). */
export interface KafkaContext {
  sourceIdentity: number;
  source: FlowEndpoint;
  destination: FlowEndpoint;
  originalDst: HostPort;
  direction: Exclude<FlowTrafficDirection, 'TRAFFIC_DIRECTION_UNKNOWN'>;
  /** Asked again for every request: a policy change applies to the next request. */
  ruleSets: () => readonly KafkaRuleSet[];
}

export interface KafkaJudgement {
  allowed: boolean;
  reason?: string;
  allowedBy?: { ingress?: RuleRef[]; egress?: RuleRef[] };
}

export interface JudgedRequest {
  apiKey: number;
  apiVersion: number;
  clientID: string;
  topics: string[];
}

const compiled = new WeakMap<readonly PortRuleKafka[], KafkaPolicy>();

function policyOf(rules: readonly PortRuleKafka[]): KafkaPolicy {
  let p = compiled.get(rules);
  if (p === undefined) {
    p = compileKafkaRules(rules);
    compiled.set(rules, p);
  }
  return p;
}

export function judgeKafka(sets: readonly KafkaRuleSet[], req: JudgedRequest): KafkaJudgement {
  if (sets.length === 0) return { allowed: false, reason: 'no Kafka rule set for this connection' };
  const allowedBy: { ingress?: RuleRef[]; egress?: RuleRef[] } = {};
  for (const s of sets) {
    const m = matchKafka(policyOf(s.rules), req);
    if (!m.allowed)
      return { allowed: false, reason: `${s.direction.toLowerCase()}: ${m.reason ?? 'denied'}` };
    const refs = [...(s.policies ?? [])];
    if (s.direction === 'INGRESS') allowedBy.ingress = refs;
    else allowedBy.egress = refs;
  }
  return { allowed: true, allowedBy };
}
