// `seawall test --against FLOWS --policies DIR`: the check before a rollout. Every recorded request
// of a flow log (replies, L7 responses and records that were already dropped are passed over) is
// decided by the engine holding the new policies; what they would drop is grouped by source and
// destination workload, port and the rule responsible (denied_by, or the default deny and who
// brings it), with the log lines of the records.

import { engineForFlows, isRecordedRequest, learnNamesOf, requestOf } from '../flow/replay.ts';
import type { Flow, FlowEndpoint } from '../flow/types.ts';
import { applyClusterObjects, clusterObjectsFrom } from '../k8s/objects.ts';
import { toEndpointSpec } from '../k8s/types.ts';
import type { DenyReason, DirectionDecision, EngineFactory, FlowRequest, Verdict } from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import type { OtherObject, PolicyObject } from '../policy-api/types.ts';
import { formatRuleRef } from './explain.ts';
import type { TestEndpoint, TestNamespace } from './types.ts';

export interface AgainstInput {
  flows: readonly Flow[];
  /** Log line of each flow (same order), for pointing back into the file. */
  lines?: readonly number[];
  policies: readonly PolicyObject[];
  /** Endpoints, namespaces and objects from -f (manifests or a PolicyTest). */
  endpoints?: readonly TestEndpoint[];
  namespaces?: readonly TestNamespace[];
  objects?: readonly OtherObject[];
}

export interface DropGroup {
  outcome: 'dropped' | 'audited';
  source: string;
  destination: string;
  /** "8080/TCP", "ICMP type 8" */
  port: string;
  reason?: DenyReason;
  /** The direction that decided, and the rule responsible (engine explanation, first line). */
  decidedBy?: 'INGRESS' | 'EGRESS';
  rule: string;
  count: number;
  /** Up to five log lines of records in this group. */
  lines: number[];
  /** L7 requests among them (HTTP method and path, DNS names), up to five. */
  requests?: string[];
}

export interface AgainstReport {
  records: number;
  replayed: number;
  allowed: number;
  dropped: number;
  audited: number;
  /** Why records were passed over, with counts (sorted). */
  passedOver: Array<{ why: string; count: number }>;
  groups: DropGroup[];
  /** Policy resolution errors (the input is invalid then). */
  issues: Issue[];
}

const MAX_EXAMPLES = 5;

export function runAgainst(input: AgainstInput, createEngine: EngineFactory): AgainstReport {
  const nss = new Map<string, Record<string, string>>();
  for (const n of input.namespaces ?? []) nss.set(n.name, n.labels);
  const objects = input.objects ?? [];
  const { engine, issues } = engineForFlows(input.flows, input.policies, createEngine, {
    namespaces: nss,
    endpoints: (input.endpoints ?? []).map(toEndpointSpec),
    before: (e) => (objects.length > 0 ? applyClusterObjects(e, clusterObjectsFrom(objects)) : []),
  });
  const report: AgainstReport = {
    records: input.flows.length,
    replayed: 0,
    allowed: 0,
    dropped: 0,
    audited: 0,
    passedOver: [],
    groups: [],
    issues,
  };
  if (issues.length > 0) return report;
  const passed = new Map<string, number>();
  const pass = (why: string): void => {
    passed.set(why, (passed.get(why) ?? 0) + 1);
  };
  const groups = new Map<string, DropGroup>();
  input.flows.forEach((f, i) => {
    if (!isRecordedRequest(f)) {
      pass(f.is_reply === true || f.l7?.type === 'RESPONSE' ? 'replies' : `recorded as ${f.verdict}`);
      return;
    }
    const req = requestOf(f);
    if ('skip' in req) {
      pass(req.skip);
      return;
    }
    learnNamesOf(engine, f, 0);
    const v = engine.decide(req, 0);
    report.replayed++;
    if (v.verdict === 'FORWARDED') {
      report.allowed++;
      return;
    }
    const outcome = v.verdict === 'AUDIT' ? 'audited' : 'dropped';
    if (outcome === 'audited') report.audited++;
    else report.dropped++;
    const g = groupFor(groups, outcome, f, req, v);
    g.count++;
    const line = input.lines?.[i] ?? i + 1;
    if (g.lines.length < MAX_EXAMPLES) g.lines.push(line);
    const l7 = l7Text(req);
    if (l7 !== undefined) {
      g.requests ??= [];
      if (g.requests.length < MAX_EXAMPLES && !g.requests.includes(l7)) g.requests.push(l7);
    }
  });
  report.passedOver = [...passed.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([why, count]) => ({ why, count }));
  report.groups = [...groups.values()].sort(
    (a, b) =>
      cmp(a.outcome, b.outcome) ||
      cmp(a.source, b.source) ||
      cmp(a.destination, b.destination) ||
      cmp(a.port, b.port) ||
      cmp(a.rule, b.rule),
  );
  return report;
}

function groupFor(
  groups: Map<string, DropGroup>,
  outcome: DropGroup['outcome'],
  f: Flow,
  req: FlowRequest,
  v: Verdict,
): DropGroup {
  const source = workloadOf(f.source, f.IP?.source);
  const destination = workloadOf(f.destination, f.IP?.destination);
  const port =
    req.dport !== undefined ? `${req.dport}/${req.protocol}` : `${req.protocol} type ${req.icmp?.type ?? 0}`;
  const d = v.decidedBy === 'EGRESS' ? v.egress : v.decidedBy === 'INGRESS' ? v.ingress : undefined;
  const rule = d ? responsible(d) : (v.explanation[0] ?? 'denied');
  const key = JSON.stringify([outcome, source, destination, port, rule]);
  let g = groups.get(key);
  if (!g) {
    g = { outcome, source, destination, port, rule, count: 0, lines: [] };
    if (v.reason !== undefined) g.reason = v.reason;
    if (v.decidedBy !== undefined) g.decidedBy = v.decidedBy;
    groups.set(key, g);
  }
  return g;
}

/**
 * The rule responsible for a denial, in words that do not name the pod (so that the pods of one
 * workload fall into one group): the deny entries, the L7 rules that refused the request, or the
 * policies whose selection brings the default deny.
 */
function responsible(d: DirectionDecision): string {
  const dir = d.direction.toLowerCase();
  if (d.audited !== undefined) {
    const by = d.audited.by.map(formatRuleRef).join('; ') || 'policyEnforcementMode=always';
    return `${dir}: audited (${d.audited.reason}): would be denied by ${by}`;
  }
  const reason = d.reason ? ` (${d.reason})` : '';
  if (d.deniedBy.length > 0) return `${dir}: denied${reason} by ${d.deniedBy.map(formatRuleRef).join('; ')}`;
  if (d.l7 && !d.l7.allowed) {
    const of = d.allowedBy.length > 0 ? ` of ${d.allowedBy.map(formatRuleRef).join('; ')}` : '';
    return `${dir}: denied${reason}: no ${d.l7.parser} rule${of} matches the request`;
  }
  // The engine names the policies that make this direction default-deny in its explanation.
  const m = /is default-deny \(selected by (.*?)\) and no rule allows/.exec(d.explanation[0] ?? '');
  return `${dir}: denied${reason}: default deny${m ? ` (brought by ${m[1]})` : ''}, no rule allows it`;
}

/**
 * The workload a side belongs to: Hubble's workload (Deployment, StatefulSet…) when the record
 * names one, else the app label, else the pod; entities and outside addresses as themselves.
 */
export function workloadOf(ep: FlowEndpoint | undefined, ip: string | undefined): string {
  if (ep?.namespace && ep.pod_name) {
    const w = ep.workloads?.[0];
    if (w) return `${ep.namespace}/${w.kind ? `${w.kind.toLowerCase()}/` : ''}${w.name}`;
    for (const k of ['app.kubernetes.io/name', 'app', 'k8s-app']) {
      const l = ep.labels?.find((x) => x.startsWith(`k8s:${k}=`));
      if (l) return `${ep.namespace}/${k}=${l.slice(k.length + 5)}`;
    }
    return `${ep.namespace}/${ep.pod_name}`;
  }
  const reserved = ep?.labels?.find((l) => l.startsWith('reserved:') && l !== 'reserved:world');
  if (reserved) return reserved.slice('reserved:'.length);
  return ip ?? 'unknown';
}

function l7Text(req: FlowRequest): string | undefined {
  if (req.l7?.kind === 'http') return `${req.l7.method} ${req.l7.path}`;
  if (req.l7?.kind === 'dns') return `DNS ${req.l7.query}`;
  return undefined;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function formatAgainstText(r: AgainstReport, source: string): string {
  const out: string[] = [];
  const passed = r.passedOver.reduce((n, p) => n + p.count, 0);
  out.push(
    `${source}: ${r.replayed} recorded requests replayed: ${r.allowed} allowed, ${r.dropped} would be dropped` +
      `${r.audited > 0 ? `, ${r.audited} audited` : ''}; ${passed} records passed over`,
  );
  for (const p of r.passedOver) out.push(`  passed over: ${p.count} × ${p.why}`);
  for (const g of r.groups) {
    out.push('');
    out.push(
      `${g.outcome === 'dropped' ? 'DROPPED' : 'AUDIT'} ${g.source} → ${g.destination} ${g.port}: ${g.count} flow${g.count === 1 ? '' : 's'} (line${g.lines.length === 1 ? '' : 's'} ${g.lines.join(', ')}${g.count > g.lines.length ? ', …' : ''})`,
    );
    out.push(`  ${g.rule}`);
    if (g.requests) out.push(`  requests: ${g.requests.join('; ')}`);
  }
  if (r.groups.length === 0) out.push('no recorded flow would be dropped');
  return `${out.join('\n')}\n`;
}

export function formatAgainstJSON(r: AgainstReport): string {
  const { issues: _issues, ...rest } = r;
  return `${JSON.stringify(rest, null, 2)}\n`;
}
