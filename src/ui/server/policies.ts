// The UI's view of the policies, when it was given them (--policies, -f): one engine holding the
// scenario plus the pods the flows show, asked for each flow which rule entries decided it
// (`decide`, the verdict every Seawall tool uses), for an endpoint's policy view, and for trace.
// The hits are the engine's answer for the loaded policies, which is what the policy view and the
// detail panel explain; the record's own verdict stays what the datapath said.

import { endpointsFromFlows, learnNamesOf, requestOf } from '../../flow/replay.ts';
import type { Flow } from '../../flow/types.ts';
import type { K8sEndpoint } from '../../k8s/types.ts';
import { defaultEngineFactory } from '../../policy/default-engine.ts';
import type { DirectionDecision, PolicyEngineAPI, RuleRef, Verdict } from '../../policy/types.ts';
import type { Issue } from '../../policy-api/issue.ts';
import type { PolicyObject } from '../../policy-api/types.ts';
import { prepareEngine } from '../../policytest/runner.ts';
import type { Scenario } from '../../policytest/scenario.ts';
import { formatTrace, type TraceInput, trace } from '../../policytest/trace.ts';
import { buildPolicyView, type PolicyView, ruleEntries } from '../domain/policy-view.ts';
import type { RuleHit, UIFlow } from '../domain/types.ts';
import { type OutsideEntry, outsideEntries } from './outside.ts';

export function hitsOf(v: Verdict): RuleHit[] {
  const out: RuleHit[] = [];
  const add = (d: DirectionDecision | undefined) => {
    if (d === undefined) return;
    const push = (r: RuleRef, effect: 'allow' | 'deny') =>
      out.push({
        kind: r.kind,
        name: r.name,
        ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
        ruleIndex: r.ruleIndex,
        section: r.section,
        entryIndex: r.entryIndex,
        file: r.pos.file,
        line: r.pos.line,
        column: r.pos.column,
        direction: d.direction,
        effect,
      });
    for (const r of d.deniedBy) push(r, 'deny');
    for (const r of d.allowedBy) push(r, 'allow');
  };
  add(v.egress);
  add(v.ingress);
  return out;
}

export class PolicyContext {
  readonly engine: PolicyEngineAPI;
  private readonly scenario: Scenario;
  private readonly known = new Set<string>();

  private constructor(scenario: Scenario, engine: PolicyEngineAPI) {
    this.scenario = { ...scenario, endpoints: [...scenario.endpoints] };
    this.engine = engine;
    for (const e of scenario.endpoints) this.known.add(`${e.namespace ?? ''}/${e.name}`);
  }

  /** An engine for the scenario; undefined with the errors when the policies do not load. */
  static create(scenario: Scenario): { ctx?: PolicyContext; issues: Issue[] } {
    const { engine, issues } = prepareEngine(scenario, defaultEngineFactory);
    const all = [...scenario.issues, ...issues];
    if (all.some((i) => i.severity === 'error')) return { issues: all };
    return { ctx: new PolicyContext(scenario, engine), issues: all };
  }

  get endpoints(): string[] {
    return this.scenario.endpoints.filter((e) => !e.external).map((e) => `${e.namespace}/${e.name}`);
  }

  /** Pods a flow shows that the scenario does not have become endpoints at their recorded address. */
  private learnPods(f: Flow): void {
    for (const ep of endpointsFromFlows([f])) {
      const key = `${ep.namespace ?? ''}/${ep.name}`;
      if (this.known.has(key)) continue;
      this.known.add(key);
      if (ep.namespace !== undefined) this.engine.upsertNamespace(ep.namespace, {});
      this.engine.upsertEndpoint(ep);
      const k8s: K8sEndpoint = { ...ep, pos: { file: '(flows)', line: 0, column: 0 }, ipAllocated: false };
      this.scenario.endpoints.push(k8s);
    }
  }

  /** The rule entries the engine says decided this flow (none for a flow it cannot name). */
  explain(f: Flow): RuleHit[] {
    this.learnPods(f);
    const req = requestOf(f);
    if ('skip' in req) return [];
    const now = Date.parse(f.time);
    const t = Number.isFinite(now) ? now : Date.now();
    learnNamesOf(this.engine, f, t);
    return hitsOf(this.engine.decide(req, t));
  }

  policyView(endpoint: string, flows: Iterable<UIFlow>): PolicyView | string {
    const slash = endpoint.indexOf('/');
    if (slash <= 0) return `endpoint "${endpoint}": write NAMESPACE/NAME`;
    const namespace = endpoint.slice(0, slash);
    const name = endpoint.slice(slash + 1);
    if (!this.known.has(endpoint))
      return `no endpoint ${endpoint} (known: ${this.endpoints.join(', ') || 'none'})`;
    const ep = this.engine.endpointPolicy(namespace, name);
    const entries = this.rulesSelecting(ep.selectedBy).flatMap(({ policy, rules }) =>
      ruleEntries(policy, rules),
    );
    return buildPolicyView({
      namespace,
      name,
      identity: ep.identity,
      labels: this.engine.labelsOf(ep.identity),
      ingress: ep.ingress,
      egress: ep.egress,
      entries,
      flows,
    });
  }

  /** Each policy with a rule selecting the endpoint, and which of its rules (specs[] index) do. */
  private rulesSelecting(selectedBy: readonly RuleRef[]): { policy: PolicyObject; rules: Set<number> }[] {
    const byPolicy = new Map<string, Set<number>>();
    for (const r of selectedBy) {
      const k = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
      const s = byPolicy.get(k) ?? new Set<number>();
      s.add(r.ruleIndex);
      byPolicy.set(k, s);
    }
    return this.scenario.policies.flatMap((policy) => {
      const rules = byPolicy.get(`${policy.kind}/${policy.metadata.namespace ?? ''}/${policy.metadata.name}`);
      return rules ? [{ policy, rules }] : [];
    });
  }

  /** The entries of the rules selecting a pod that name a peer outside the pods. */
  outsideEntries(namespace: string, name: string): OutsideEntry[] {
    const ep = this.engine.endpointPolicy(namespace, name);
    return this.rulesSelecting(ep.selectedBy).flatMap(({ policy, rules }) => outsideEntries(policy, rules));
  }

  trace(input: TraceInput): { text: string; verdict: string } {
    const r = trace(this.engine, this.scenario, input);
    return { text: formatTrace(r), verdict: r.verdict.verdict };
  }
}
