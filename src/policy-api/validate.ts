// validate: typed policy objects → issues (errors, and warnings for deprecated constructs).
// Decoding already reported type and enum errors; this adds Cilium's and Kubernetes' semantic
// rejections (cilium-semantics.md §15).

import type { Issue } from './issue.ts';
import type { PolicyObject } from './types.ts';
import { validateKNPSpec } from './validate-knp.ts';
import { validateMeta } from './validate-meta.ts';
import { Reporter } from './validate-report.ts';
import { validateRule } from './validate-rule.ts';

/** Validates one policy; issues are appended to `issues` (tagged with `object` when given). */
export function validatePolicy(policy: PolicyObject, issues: Issue[], object?: string): void {
  const r = new Reporter(issues, policy.pos, object);
  validateMeta(policy, r);
  if (policy.kind === 'NetworkPolicy') {
    validateKNPSpec(policy.spec, r);
    return;
  }
  if (policy.spec === undefined && (policy.specs === undefined || policy.specs.length === 0)) {
    r.error(
      'empty-policy',
      `${policy.kind} has no rules: add \`spec\` (one rule) or \`specs\` (a list of rules)`,
      policy,
      policy.specs ? 'specs' : undefined,
    );
  }
  if (policy.spec) validateRule(policy.spec, policy.kind, r);
  for (const rule of policy.specs ?? []) validateRule(rule, policy.kind, r);
}
