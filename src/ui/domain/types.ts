// What the UI's domain works on: Hubble flow records (the flow log's shape) with, when the UI was
// given the policies, the rules the engine says matched each flow, with file:line.

import type { Flow } from '../../flow/types.ts';

/** One rule entry that allowed or denied a flow (a RuleRef with its position flattened). */
export interface RuleHit {
  /** CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | NetworkPolicy */
  kind: string;
  name: string;
  namespace?: string;
  ruleIndex: number;
  /** ingress | ingressDeny | egress | egressDeny */
  section: string;
  /** -1 for a synthetic entry (e.g. KNP's implicit allow of a whole section). */
  entryIndex: number;
  file: string;
  line: number;
  column: number;
  direction: 'INGRESS' | 'EGRESS';
  effect: 'allow' | 'deny';
}

/** A flow as the UI holds it: the flow-log line, a sequence number, and the rule hits. */
export interface UIFlow {
  /** Arrival order (unique per UI session; rows are keyed by it). */
  seq: number;
  flow: Flow;
  node_name?: string;
  time: string;
  rules: RuleHit[];
}

/** The key every rule-entry view uses: one per (policy, rule, section, entry). */
export function ruleKey(
  r: Pick<RuleHit, 'kind' | 'namespace' | 'name' | 'ruleIndex' | 'section' | 'entryIndex'>,
): string {
  return `${r.kind}/${r.namespace ?? ''}/${r.name}#${r.ruleIndex}/${r.section}/${r.entryIndex}`;
}

export function policyName(r: { kind: string; name: string; namespace?: string }): string {
  return `${r.kind} ${r.namespace !== undefined && r.namespace !== '' ? `${r.namespace}/` : ''}${r.name}`;
}

/** `CiliumNetworkPolicy shop/backend-ingress ingress[0] (policies/backend.yaml:12:7)` */
export function ruleText(r: RuleHit): string {
  const rule = r.ruleIndex > 0 ? ` specs[${r.ruleIndex}]` : '';
  const entry = r.entryIndex >= 0 ? `${r.section}[${r.entryIndex}]` : `${r.section} (implicit)`;
  return `${policyName(r)}${rule} ${entry} (${r.file}:${r.line}:${r.column})`;
}
