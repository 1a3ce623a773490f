// seawall diff: connectivity changes between two policy sets on the shop endpoints, golden in
// every format; equal sets; git:REF:PATH sources; bad sources.

import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden } from '../core/testing/golden.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import { type DiffFormat, diffConnectivity, formatDiff } from './diff.ts';
import { loadPolicySet, parseGitSource } from './policy-source.ts';
import { prepareEngine } from './runner.ts';
import { loadScenario } from './scenario.ts';

const here = dirname(fileURLToPath(import.meta.url));
process.chdir(join(here, '..', '..'));
const FIX = 'src/policytest/testdata';
const A = `${FIX}/diff/a`;
const B = `${FIX}/diff/b`;

async function diffOf(a: string, b: string) {
  const sc = await loadScenario({ files: [`${FIX}/shop.policytest.yaml`], policies: [] });
  const side = async (spec: string) => {
    const set = await loadPolicySet(spec);
    assert.deepEqual(set.issues, []);
    const { engine, issues } = prepareEngine(
      { ...sc, policies: set.policies as PolicyObject[] },
      defaultEngineFactory,
    );
    assert.deepEqual(issues, []);
    for (const r of sc.dns) engine.learnDNS(r.name, r.ips, r.ttl, 0);
    return { label: spec, engine };
  };
  return diffConnectivity(await side(a), await side(b), sc.endpoints);
}

for (const format of ['text', 'markdown', 'json', 'dot'] as DiffFormat[]) {
  test(`diff a → b as ${format} matches its golden file`, async () => {
    const d = await diffOf(A, B);
    golden(join(here, 'testdata', `diff.${format}.golden`), formatDiff(d, format));
  });
}

test('diff a → b: one change of each kind, L7 rule by rule', async () => {
  const d = await diffOf(A, B);
  const brief = d.changes.map((c) => `${c.kind} ${c.from}>${c.to} ${c.ports}/${c.protocol}`);
  assert.deepEqual(brief, [
    'removed shop/backend>github 443/TCP',
    'added shop/backend>kube-system/coredns 53/TCP',
    'added shop/backend>kube-system/coredns 53/SCTP',
    'changed shop/frontend>shop/backend 8080/TCP',
    'added shop/frontend>shop/backend 9090-9091/TCP',
  ]);
  const changed = d.changes.find((c) => c.kind === 'changed')!;
  assert.deepEqual(changed.l7Added, ['ingress http: POST /api/orders']);
  assert.deepEqual(changed.l7Removed, []);
});

test('diff b → a is the mirror: added and removed swap', async () => {
  const d = await diffOf(B, A);
  assert.deepEqual(
    d.changes.map((c) => c.kind),
    ['added', 'removed', 'removed', 'changed', 'removed'],
  );
  assert.deepEqual(d.changes.find((c) => c.kind === 'changed')!.l7Removed, [
    'ingress http: POST /api/orders',
  ]);
});

test('diff of a set with itself: no change', async () => {
  const d = await diffOf(A, A);
  assert.deepEqual(d.changes, []);
  assert.equal(d.pairs, 12);
});

test('diff: git:HEAD:PATH reads the committed version, same answer as the directory', async () => {
  const fromGit = await diffOf(`git:HEAD:${A}`, B);
  const fromDir = await diffOf(A, B);
  assert.deepEqual(fromGit.changes, fromDir.changes);
});

const badSources: Array<{ name: string; spec: string; message: RegExp }> = [
  { name: 'no path part', spec: 'git:HEAD', message: /not git:REF:PATH/ },
  { name: 'a ref git does not know', spec: 'git:no-such-ref-h10:policies', message: /git cannot list/ },
  {
    name: 'a ref that looks like an option',
    spec: 'git:--output=x:policies',
    message: /may not start with "-"/,
  },
  {
    name: 'a path with no policy files',
    spec: 'git:HEAD:docs-that-do-not-exist',
    message: /no policy files/,
  },
  { name: 'a directory that does not exist', spec: `${FIX}/no-such-dir`, message: /./ },
];
for (const row of badSources) {
  test(`diff source: ${row.name} is an error that names it`, async () => {
    const s = await loadPolicySet(row.spec);
    assert.equal(s.issues.length, 1);
    assert.match(s.issues[0]!.message, row.message);
    assert.equal(s.issues[0]!.severity, 'error');
  });
}

test('parseGitSource: ref and path split at the first colon after git:', () => {
  assert.deepEqual(parseGitSource('git:main:pol/x.yaml'), { ref: 'main', path: 'pol/x.yaml' });
  assert.deepEqual(parseGitSource('git:v1.2:'), { ref: 'v1.2', path: '.' });
  assert.equal(parseGitSource('policies/'), undefined);
});
