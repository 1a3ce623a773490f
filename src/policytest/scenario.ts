// A scenario: policies, namespaces, endpoints and DNS for the commands that look at one cluster
// state (`trace`, `matrix`, `policy show`). It comes from a PolicyTest file (`-f test.yaml`) or
// from Kubernetes manifests plus policies (`-f deploy/ --policies policies/`).

import { readRegularFile } from '../core/files.ts';
import { clusterObjectsFrom } from '../k8s/objects.ts';
import { workloadsFrom } from '../k8s/workloads.ts';
import type { EnforcementMode } from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import { loadPolicies } from '../policy-api/load.ts';
import type { OtherObject, PolicyObject } from '../policy-api/types.ts';
import { decodeText } from '../policy-api/yaml-source.ts';
import { isDirectory, looksLikePolicyTest, parsePolicyTestText } from './parse.ts';
import type { DNSRecord, PolicyTest, TestEndpoint, TestNamespace } from './types.ts';

export interface Scenario {
  enforcementMode: EnforcementMode;
  policies: PolicyObject[];
  namespaces: TestNamespace[];
  endpoints: TestEndpoint[];
  dns: DNSRecord[];
  /** Services, CIDR groups, nodes… from the manifests, for the peers that refer to them. */
  objects: OtherObject[];
  issues: Issue[];
}

export interface ScenarioSources {
  /** PolicyTest files, manifest files or directories. */
  files: readonly string[];
  /** Policy files or directories. */
  policies: readonly string[];
  /** Which PolicyTest of a multi-document file (default: the first). */
  testName?: string;
  enforcementMode?: EnforcementMode;
}

export async function loadScenario(src: ScenarioSources): Promise<Scenario> {
  const sc: Scenario = {
    enforcementMode: 'default',
    policies: [],
    namespaces: [],
    endpoints: [],
    dns: [],
    objects: [],
    issues: [],
  };
  const others: OtherObject[] = [];
  const manifestPaths: string[] = [];
  for (const f of src.files) {
    if (isDirectory(f)) {
      manifestPaths.push(f);
      continue;
    }
    const r = readRegularFile(f);
    if (!r.ok) {
      sc.issues.push(issue(f, r.code, r.message));
      continue;
    }
    const { text, issue: bad } = decodeText(f, r.bytes);
    if (text === undefined) {
      if (bad) sc.issues.push(bad);
      continue;
    }
    if (!looksLikePolicyTest(text)) {
      manifestPaths.push(f);
      continue;
    }
    const parsed = await parsePolicyTestText(f, text);
    sc.issues.push(...parsed.issues);
    const t = pickTest(parsed.tests, src.testName, f, sc.issues);
    if (t) mergeTest(sc, t);
  }
  const paths = [...manifestPaths, ...src.policies];
  if (paths.length > 0) {
    try {
      const res = await loadPolicies(paths, { lint: false });
      sc.issues.push(...res.issues);
      sc.policies.push(...res.policies);
      others.push(...res.others.filter((o) => o.kind !== 'PolicyTest'));
    } catch (e) {
      sc.issues.push(issue(paths[0]!, 'read-error', (e as Error).message));
    }
  }
  const w = workloadsFrom(
    others,
    sc.endpoints.map((e) => e.ip),
  );
  sc.issues.push(...w.issues);
  sc.objects.push(...others);
  sc.issues.push(...clusterObjectsFrom(others).issues);
  for (const ns of w.namespaces) if (!sc.namespaces.some((n) => n.name === ns.name)) sc.namespaces.push(ns);
  for (const ep of w.endpoints) {
    if (!sc.endpoints.some((e) => e.namespace === ep.namespace && e.name === ep.name)) sc.endpoints.push(ep);
  }
  if (src.enforcementMode) sc.enforcementMode = src.enforcementMode;
  return sc;
}

function pickTest(
  tests: PolicyTest[],
  name: string | undefined,
  file: string,
  issues: Issue[],
): PolicyTest | undefined {
  if (name === undefined) return tests[0];
  const t = tests.find((x) => x.name === name);
  if (!t)
    issues.push(
      issue(
        file,
        'unknown-test',
        `no PolicyTest named "${name}" in ${file} (has: ${tests.map((x) => x.name).join(', ')})`,
      ),
    );
  return t;
}

function mergeTest(sc: Scenario, t: PolicyTest): void {
  sc.enforcementMode = t.enforcementMode;
  sc.policies.push(...t.policies);
  sc.namespaces.push(...t.namespaces.filter((n) => !sc.namespaces.some((m) => m.name === n.name)));
  sc.endpoints.push(...t.endpoints);
  sc.dns.push(...t.dns);
  sc.objects.push(...(t.objects ?? []));
}

function issue(file: string, code: string, message: string): Issue {
  return { code, severity: 'error', path: '', pos: { file, line: 1, column: 1 }, message };
}
