// Verdict → explanation lines for humans: which policy and rule (with file:line) decided each
// direction, or that no policy selected the endpoint. The engine's own lines follow, indented.

import type { DirectionDecision, RuleRef, Verdict } from '../policy/types.ts';

export function formatRuleRef(r: RuleRef): string {
  const name = r.namespace ? `${r.namespace}/${r.name}` : r.name;
  const rule = r.ruleIndex > 0 ? ` rule ${r.ruleIndex}` : '';
  // a whole rule (section ''): the one an audited default deny names
  const entry =
    r.section === '' ? '' : r.entryIndex >= 0 ? ` ${r.section}[${r.entryIndex}]` : ` ${r.section} (implicit)`;
  return `${r.kind} ${name}${rule}${entry} (${r.pos.file}:${r.pos.line}:${r.pos.column})`;
}

export function directionLines(d: DirectionDecision): string[] {
  const dir = d.direction.toLowerCase();
  const head = `${dir} of ${d.endpoint}`;
  const out: string[] = [];
  if (!d.enforced) {
    out.push(`${head}: allowed (policy not enforced in this direction)`);
  } else if (d.allowed && d.audited !== undefined) {
    out.push(`${head}: ${auditedText(d.audited)}`);
    if (d.allowedBy.length > 0) out.push(`${head}: allowed by ${d.allowedBy.map(formatRuleRef).join('; ')}`);
  } else if (d.allowed) {
    const l7 = d.l7 ? `; ${d.l7.parser} rules allow the request` : '';
    const by = d.allowedBy.length > 0 ? ` by ${d.allowedBy.map(formatRuleRef).join('; ')}` : '';
    out.push(`${head}: allowed${by}${l7}`);
  } else {
    const reason = d.reason ? ` (${d.reason})` : '';
    if (d.deniedBy.length > 0) {
      out.push(`${head}: denied${reason} by ${d.deniedBy.map(formatRuleRef).join('; ')}`);
    } else if (d.l7 && !d.l7.allowed) {
      const by =
        d.allowedBy.length > 0 ? ` (connection allowed by ${d.allowedBy.map(formatRuleRef).join('; ')})` : '';
      out.push(`${head}: denied${reason}: no ${d.l7.parser} rule matches the request${by}`);
    } else {
      out.push(`${head}: denied${reason}: no rule allows it (default deny)`);
    }
  }
  for (const line of d.explanation) out.push(`  ${line}`);
  return out;
}

/** Lines explaining a verdict: egress first, then ingress, then the engine's summary if no side. */
export function explainVerdict(v: Verdict): string[] {
  const out: string[] = [];
  if (v.egress) out.push(...directionLines(v.egress));
  if (v.ingress) out.push(...directionLines(v.ingress));
  if (!v.egress && !v.ingress) out.push(...v.explanation);
  return out;
}

/** `audited: would be denied (POLICY_DENY) by …; the policy is in audit mode, so it passes`. */
export function auditedText(a: NonNullable<DirectionDecision['audited']>): string {
  const by = a.by.length > 0 ? a.by.map(formatRuleRef).join('; ') : 'policyEnforcementMode=always';
  const why = a.endpointMode === true ? 'the endpoint is in PolicyAuditMode' : 'the policy is in audit mode';
  return `audited: would be denied (${a.reason}) by ${by}; ${why}, so it passes`;
}
