// seawall generate, checked by construction: the generated policies validate clean, every
// recorded request of the log is allowed by them, and traffic the log does not show is denied.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden } from '../core/testing/golden.ts';
import { parseFlowText } from '../flow/read.ts';
import { engineForFlows, isRecordedRequest, learnNamesOf, requestOf } from '../flow/replay.ts';
import type { Flow } from '../flow/types.ts';
import { crossPolicyLint } from '../lint/cross-policy.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import type { FlowRequest } from '../policy/types.ts';
import { loadPolicyText } from '../policy-api/load.ts';
import { formatPolicies, generatePolicies, pathRule, selectorLabels } from './generate.ts';

const here = dirname(fileURLToPath(import.meta.url));
const LOG = join(here, 'testdata', 'shop.flows.jsonl');
const flows = (): Flow[] => {
  const r = parseFlowText(LOG, readFileSync(LOG, 'utf8'));
  assert.deepEqual(r.issues, []);
  return r.flows;
};

function generated(generalizePaths: boolean): { text: string; warnings: string[] } {
  const r = generatePolicies(flows(), { generalizePaths });
  return { text: formatPolicies(r.policies), warnings: r.warnings };
}

for (const g of [false, true]) {
  const name = g ? 'shop.generalized.golden.yaml' : 'shop.golden.yaml';
  test(`generate: ${name} matches its golden file and validates with no issue`, () => {
    const { text, warnings } = generated(g);
    golden(join(here, 'testdata', name), text);
    const loaded = loadPolicyText(name, text);
    assert.deepEqual(
      [...loaded.issues, ...crossPolicyLint(loaded.policies)].map(
        (i) => `${i.pos.line}: ${i.code} ${i.message}`,
      ),
      [],
    );
    assert.equal(loaded.policies.length, 4);
    assert.deepEqual(warnings, [
      '1 record passed over: replies (allowed with their request)',
      '1 record passed over: source pod shop/debug-shell has no labels to select it by',
      '1 record passed over: verdict DROPPED (not traffic that passed)',
    ]);
  });
}

test('generate: output is the same whatever order the records come in', () => {
  const fs = flows();
  const a = formatPolicies(generatePolicies(fs).policies);
  const b = formatPolicies(generatePolicies([...fs].reverse()).policies);
  assert.equal(a, b);
});

function engineFor(generalizePaths: boolean) {
  const fs = flows();
  const loaded = loadPolicyText('gen.yaml', generated(generalizePaths).text);
  const { engine, issues } = engineForFlows(fs, loaded.policies, defaultEngineFactory);
  assert.deepEqual(issues, []);
  for (const f of fs) learnNamesOf(engine, f, 0);
  return { engine, fs };
}

for (const g of [false, true]) {
  test(`generate${g ? ' --generalize-paths' : ''}: every recorded request is allowed by the generated policies`, () => {
    const { engine, fs } = engineFor(g);
    let n = 0;
    for (const f of fs) {
      if (!isRecordedRequest(f)) continue;
      const req = requestOf(f);
      if ('skip' in req) assert.fail(`record ${f.uuid} not replayable: ${req.skip}`);
      // The unlabelled debug pod is the one record no policy may allow.
      const expectAllowed = f.source?.pod_name !== 'debug-shell';
      assert.equal(engine.decide(req, 1).allowed, expectAllowed, `record ${f.uuid}`);
      n++;
    }
    assert.equal(n, 18);
  });
}

const FE = { kind: 'endpoint', namespace: 'shop', name: 'frontend-7d9c5-abcde' } as const;
const BE = { kind: 'endpoint', namespace: 'shop', name: 'backend-0' } as const;
const DB = { kind: 'endpoint', namespace: 'data', name: 'postgres-0' } as const;
const DNS = { kind: 'endpoint', namespace: 'kube-system', name: 'coredns-5d78c-x1' } as const;

interface HeldBack {
  name: string;
  req: FlowRequest;
  /** Allowed with --generalize-paths (the id in the path is generalised), denied without. */
  generalizedAllows?: boolean;
}

const heldBack: HeldBack[] = [
  { name: 'frontend to backend on a port not seen', req: { src: FE, dst: BE, protocol: 'TCP', dport: 8081 } },
  {
    name: 'frontend to backend over UDP on a seen TCP port',
    req: { src: FE, dst: BE, protocol: 'UDP', dport: 9090 },
  },
  {
    name: 'frontend to postgres (recorded only as dropped)',
    req: { src: FE, dst: DB, protocol: 'TCP', dport: 5432 },
  },
  {
    name: 'postgres to backend (reverse direction)',
    req: { src: DB, dst: BE, protocol: 'TCP', dport: 8080 },
  },
  {
    name: 'backend to another outside address on 443',
    req: { src: BE, dst: { kind: 'ip', ip: '198.51.100.10' }, protocol: 'TCP', dport: 443 },
  },
  {
    name: 'another outside client to frontend:80',
    req: { src: { kind: 'ip', ip: '192.0.2.45' }, dst: FE, protocol: 'TCP', dport: 80 },
  },
  {
    name: 'backend to kube-apiserver on 6443',
    req: { src: BE, dst: { kind: 'entity', entity: 'kube-apiserver' }, protocol: 'TCP', dport: 6443 },
  },
  // (host to a pod is no test: --allow-localhost=auto lets the local host in whatever policy says)
  {
    name: 'frontend to the host',
    req: { src: FE, dst: { kind: 'entity', entity: 'host' }, protocol: 'TCP', dport: 10250 },
  },
  {
    name: 'backend to api.stripe.com on 80',
    req: { src: BE, dst: { kind: 'ip', ip: '203.0.113.5' }, protocol: 'TCP', dport: 80 },
  },
  {
    name: 'HTTP DELETE on a seen path',
    req: {
      src: FE,
      dst: BE,
      protocol: 'TCP',
      dport: 8080,
      l7: { kind: 'http', method: 'DELETE', path: '/api/items/123' },
    },
  },
  {
    name: 'HTTP GET with an id not seen',
    req: {
      src: FE,
      dst: BE,
      protocol: 'TCP',
      dport: 8080,
      l7: { kind: 'http', method: 'GET', path: '/api/items/789' },
    },
    generalizedAllows: true,
  },
  {
    name: 'DNS query for a name not seen',
    req: {
      src: BE,
      dst: DNS,
      protocol: 'UDP',
      dport: 53,
      l7: { kind: 'dns', query: 'evil.example.', qtype: 'A' },
    },
  },
  {
    name: 'frontend pings an outside address not seen',
    req: {
      src: FE,
      dst: { kind: 'ip', ip: '198.51.100.8' },
      protocol: 'ICMP',
      icmp: { type: 8, family: 'IPv4' },
    },
  },
];

for (const g of [false, true]) {
  for (const row of heldBack) {
    const want = g && row.generalizedAllows === true;
    test(`generate${g ? ' --generalize-paths' : ''}: held back, ${want ? 'allowed' : 'denied'}: ${row.name}`, () => {
      const { engine } = engineFor(g);
      assert.equal(engine.decide(row.req, 1).allowed, want);
    });
  }
}

const labelRows: Array<{ name: string; labels: Record<string, string>; want: Record<string, string> }> = [
  {
    name: 'Deployment pod: pod-template-hash dropped',
    labels: { app: 'web', 'pod-template-hash': '5d8f' },
    want: { app: 'web' },
  },
  {
    name: 'StatefulSet pod: revision hash and pod name dropped',
    labels: { app: 'db', 'controller-revision-hash': 'db-7', 'statefulset.kubernetes.io/pod-name': 'db-0' },
    want: { app: 'db' },
  },
  {
    name: 'app.kubernetes.io labels kept, version and other labels dropped',
    labels: { 'app.kubernetes.io/name': 'api', 'app.kubernetes.io/version': '1.2', team: 'x' },
    want: { 'app.kubernetes.io/name': 'api' },
  },
  {
    name: 'no well-known key: every stable label kept',
    labels: { team: 'x', 'pod-template-hash': 'a' },
    want: { team: 'x' },
  },
  { name: 'only per-pod labels: nothing to select by', labels: { 'pod-template-hash': 'a' }, want: {} },
];
for (const row of labelRows) {
  test(`selectorLabels: ${row.name}`, () => assert.deepEqual(selectorLabels(row.labels), row.want));
}

const pathRows: Array<{ name: string; path: string; generalize: boolean; want: string }> = [
  { name: 'literal path, dots escaped', path: '/v1.0/items', generalize: false, want: '/v1\\.0/items' },
  {
    name: 'query string kept and escaped',
    path: '/search?q=a+b',
    generalize: false,
    want: '/search\\?q=a\\+b',
  },
  { name: 'numeric id generalised', path: '/users/42/posts', generalize: true, want: '/users/[^/]+/posts' },
  {
    name: 'UUID generalised',
    path: '/o/123e4567-e89b-12d3-a456-426614174000',
    generalize: true,
    want: '/o/[^/]+',
  },
  { name: 'names stay literal when generalising', path: '/api/items', generalize: true, want: '/api/items' },
  {
    name: 'query string any when generalising',
    path: '/a/7?x=1',
    generalize: true,
    want: '/a/[^/]+(\\?.*)?',
  },
];
for (const row of pathRows) {
  test(`pathRule: ${row.name}`, () => assert.equal(pathRule(row.path, row.generalize), row.want));
}
