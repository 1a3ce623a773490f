// Runs a PolicyTest against a fresh engine: namespaces, endpoints and policies go in, then the
// flows are decided in order on a virtual clock, and DNS answers are learnt the way Cilium's DNS
// proxy learns them (only from queries that passed a DNS L7 rule).

import { bareName } from '../fqdn/name.ts';
import { applyClusterObjects, clusterObjectsFrom } from '../k8s/objects.ts';
import { toEndpointSpec } from '../k8s/types.ts';
import type { EngineFactory, PolicyEngineAPI, Verdict } from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import { explainVerdict } from './explain.ts';
import type { DNSRecord, FlowResult, Outcome, PolicyTest, TestFlow, TestRun } from './types.ts';

export interface RunOptions {
  /** The engine to run on (default-engine.ts has the real one; tests may pass a stub). */
  createEngine: EngineFactory;
  /** Virtual milliseconds between two flows (DNS TTLs count on this clock). */
  stepMs?: number;
  /** Wall clock for JUnit times; injectable so golden outputs stay fixed. */
  now?: () => number;
}

/**
 * Builds an engine holding the test's namespaces, endpoints, the cluster objects peers refer to
 * (Services, CIDR groups, nodes) and policies; returns its issues.
 */
export function prepareEngine(
  test: Pick<PolicyTest, 'enforcementMode' | 'namespaces' | 'endpoints' | 'policies' | 'objects'>,
  createEngine: EngineFactory,
): { engine: PolicyEngineAPI; issues: Issue[] } {
  const engine = createEngine({ enforcementMode: test.enforcementMode });
  const nsLabels = new Map<string, Record<string, string>>();
  for (const ns of test.namespaces) nsLabels.set(ns.name, ns.labels);
  for (const ep of test.endpoints) {
    if (ep.namespace !== undefined && !nsLabels.has(ep.namespace)) nsLabels.set(ep.namespace, {});
  }
  for (const [name, labels] of nsLabels) engine.upsertNamespace(name, labels);
  for (const ep of test.endpoints) engine.upsertEndpoint(toEndpointSpec(ep));
  const issues: Issue[] = [];
  if (test.objects !== undefined && test.objects.length > 0) {
    const objs = clusterObjectsFrom(test.objects);
    issues.push(...applyClusterObjects(engine, objs).filter((i) => i.severity === 'error'));
  }
  for (const p of test.policies) issues.push(...engine.upsertPolicy(p).filter((i) => i.severity === 'error'));
  return { engine, issues };
}

export function runPolicyTest(test: PolicyTest, opts: RunOptions): TestRun {
  const clock = opts.now ?? Date.now;
  const started = clock();
  const { engine, issues } = prepareEngine(test, opts.createEngine);
  const step = opts.stepMs ?? 100;
  const results: FlowResult[] = [];
  let now = 0;
  for (const flow of test.flows) {
    now += step;
    const v = engine.decide(flow.request, now);
    results.push(resultOf(test, flow, v));
    learnFromDNS(engine, test, flow, v, now);
  }
  return { test, results, issues, seconds: (clock() - started) / 1000 };
}

/**
 * The DNS answer a flow teaches, if any: Cilium learns an answer only when the query went
 * through a DNS L7 rule that allowed it.
 */
export function answerLearnt(test: PolicyTest, flow: TestFlow, v: Verdict): DNSRecord | undefined {
  const l7 = flow.request.l7;
  if (l7?.kind !== 'dns' || !v.allowed) return undefined;
  if (v.egress?.l7?.parser !== 'dns' || !v.egress.l7.allowed) return undefined;
  return test.dns.find((d) => d.name === bareName(l7.query));
}

function learnFromDNS(
  engine: PolicyEngineAPI,
  test: PolicyTest,
  flow: TestFlow,
  v: Verdict,
  now: number,
): void {
  const rec = answerLearnt(test, flow, v);
  if (rec) engine.learnDNS(rec.name, rec.ips, rec.ttl, now);
}

export function outcomeOf(v: Verdict): Outcome {
  // Policy audit mode: Hubble reports AUDIT for flows a policy would drop but lets pass.
  if (v.verdict === 'AUDIT') return 'audited';
  return v.allowed ? 'allowed' : 'denied';
}

function resultOf(test: PolicyTest, flow: TestFlow, v: Verdict): FlowResult {
  const actual = outcomeOf(v);
  const pass = actual === flow.expect && (flow.expectReason === undefined || flow.expectReason === v.reason);
  // Built in the order JSON output shows the fields.
  const r = { file: test.file, test: test.name, flow: flow.index } as FlowResult;
  if (flow.name !== undefined) r.name = flow.name;
  r.from = flow.from;
  r.to = flow.toFQDN ? `${flow.to} (${flow.toFQDN.ip})` : flow.to;
  if (flow.request.dport !== undefined) r.port = flow.request.dport;
  r.protocol = flow.request.protocol;
  r.expected = flow.expect;
  if (flow.expectReason !== undefined) r.expectedReason = flow.expectReason;
  r.actual = actual;
  if (v.reason !== undefined) r.reason = v.reason;
  r.pass = pass;
  if (v.decidedBy !== undefined) r.decidedBy = v.decidedBy;
  const l7 = v.egress?.l7?.parser ?? v.ingress?.l7?.parser;
  if (l7 !== undefined) r.l7 = l7;
  r.explanation = explainVerdict(v);
  return r;
}
