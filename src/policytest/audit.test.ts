// PolicyTest `expect: audited` offline, on the real engine: an audited policy's denials are AUDIT,
// the enforcing policy keeps dropping; trace says which policy audited the flow.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden as goldenFile } from '../core/testing/golden.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { loadPolicyTestFile, parsePolicyTestText } from './parse.ts';
import { formatHuman } from './report.ts';
import { prepareEngine, runPolicyTest } from './runner.ts';
import { formatTrace, trace } from './trace.ts';

const here = dirname(fileURLToPath(import.meta.url));
const FILE = join(here, 'testdata', 'audit.policytest.yaml');
const rel = relative(join(here, '..', '..'), FILE);

test('PolicyTest: expect audited passes on audited denials, the enforcing policy still denies (golden)', async () => {
  const parsed = await loadPolicyTestFile(rel);
  assert.deepEqual(parsed.issues, []);
  const run = runPolicyTest(parsed.tests[0]!, { createEngine: defaultEngineFactory, now: () => 0 });
  assert.deepEqual(
    run.results.map((r) => [r.name, r.actual, r.pass]),
    [
      ['allowed by the audited policy', 'allowed', true],
      ['audited explicit deny', 'audited', true],
      ['audited default deny', 'audited', true],
      ['enforcing policy allows', 'allowed', true],
      ['enforcing default deny drops', 'denied', true],
    ],
  );
  goldenFile(join(here, 'testdata', 'audit.verbose.golden'), formatHuman([run], { verbose: true }));
});

const rows: Array<{ name: string; edit: (s: string) => string; want: string[] }> = [
  {
    name: 'without the annotation the audited flows are denied: the expectations fail',
    edit: (s) => s.replace('annotations: {policy.seawall.dev/audit-mode: "true"}', 'annotations: {}'),
    want: ['allowed', 'denied', 'denied', 'allowed', 'denied'],
  },
  {
    name: 'audit-mode "false" enforces',
    edit: (s) => s.replace('audit-mode: "true"', 'audit-mode: "false"'),
    want: ['allowed', 'denied', 'denied', 'allowed', 'denied'],
  },
  {
    name: 'agent-wide audit mode (engine option) audits the enforcing policy too',
    edit: (s) => s,
    want: ['allowed', 'audited', 'audited', 'allowed', 'audited'],
  },
];
for (const row of rows) {
  test(`PolicyTest audit: ${row.name}`, async () => {
    const parsed = await parsePolicyTestText('audit.yaml', row.edit(readFileSync(FILE, 'utf8')));
    assert.deepEqual(parsed.issues, []);
    const wide = row.name.startsWith('agent-wide');
    const run = runPolicyTest(parsed.tests[0]!, {
      createEngine: (c, d) => defaultEngineFactory(wide ? { ...c, policyAuditMode: true } : c, d),
      now: () => 0,
    });
    assert.deepEqual(
      run.results.map((r) => r.actual),
      row.want,
    );
  });
}

test('PolicyTest: an invalid audit-mode value is an error at its line and column', async () => {
  const parsed = await parsePolicyTestText(
    'audit.yaml',
    readFileSync(FILE, 'utf8').replace('audit-mode: "true"', 'audit-mode: "yes"'),
  );
  assert.deepEqual(
    parsed.issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.pos.line}:${i.pos.column}`),
    ['invalid-audit-mode 15:54'],
  );
});

test('trace names the policy that audited the flow (golden)', async () => {
  const parsed = await loadPolicyTestFile(rel);
  const t = parsed.tests[0]!;
  const { engine } = prepareEngine(t, defaultEngineFactory);
  const sc = { ...t, issues: [], dns: t.dns } as unknown as Parameters<typeof trace>[1];
  const out = [
    formatTrace(
      trace(engine, sc, {
        from: { pod: 'shop/frontend' },
        to: { pod: 'shop/backend' },
        protocol: 'TCP',
        port: 22,
      }),
    ),
    formatTrace(
      trace(engine, sc, {
        from: { pod: 'shop/db' },
        to: { pod: 'shop/backend' },
        protocol: 'TCP',
        port: 8080,
      }),
    ),
  ].join('\n');
  goldenFile(join(here, 'testdata', 'audit.trace.golden'), out);
  assert.match(
    out,
    /Verdict: AUDIT \(would be POLICY_DENY by CiliumNetworkPolicy shop\/backend-lockdown ingressDeny\[0\]/,
  );
});
