// The shared conformance suite (../shared/conformance, beside the checkout) read through the real
// PolicyTest reader and run by the real runner on the default engine: one test per file (it reads
// without issues, its inline policies keep the file's positions) and one per flow.

import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { loadPolicyTestFile } from './parse.ts';
import { runPolicyTest } from './runner.ts';
import type { ParsedTestFile } from './types.ts';

const DIR = join(import.meta.dirname, '..', '..', '..', 'shared', 'conformance');

/** Files where the shared expectation disagrees with Cilium; reported as todo, not bent (none today). */
const KNOWN: Record<string, string> = {};

const skip = existsSync(DIR) ? false : `no conformance suite at ${DIR}`;
const names = skip
  ? []
  : readdirSync(DIR)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
const parsed: ParsedTestFile[] = [];
for (const name of names) parsed.push(await loadPolicyTestFile(join(DIR, name)));

test('conformance suite found', { skip }, () => assert.ok(names.length > 0));

for (const [i, file] of parsed.entries()) {
  const name = names[i]!;
  test(`conformance ${name}: reads without issues`, () => {
    assert.deepEqual(
      file.issues.map((x) => `${x.pos.line}:${x.pos.column} ${x.code}: ${x.message}`),
      [],
    );
    assert.ok(file.tests.length > 0, 'the file holds a PolicyTest');
    for (const t of file.tests) {
      assert.ok(t.policies.length > 0, `${t.name} embeds policies`);
      for (const p of t.policies) assert.equal(p.pos.file, file.file, 'positions are the PolicyTest file');
    }
  });
  for (const t of file.tests) {
    // Flows are decided in order (DNS learning is stateful): one run, then one test per flow.
    const run = runPolicyTest(t, { createEngine: defaultEngineFactory });
    const known = KNOWN[name];
    const opts = known === undefined ? {} : { todo: known };
    test(`conformance ${name} ${t.name}: the engine takes the policies`, opts, () => {
      assert.deepEqual(
        run.issues.map((x) => x.message),
        [],
      );
    });
    for (const r of run.results) {
      const label =
        r.name ?? `flow[${r.flow}] ${r.from} → ${r.to}${r.port ? `:${r.port}` : ''}/${r.protocol}`;
      test(`conformance ${name} ${t.name}: ${label}`, opts, () => {
        const want = r.expectedReason === undefined ? r.expected : `${r.expected}/${r.expectedReason}`;
        const got = r.expectedReason === undefined ? r.actual : `${r.actual}/${r.reason ?? ''}`;
        assert.equal(got, want, r.explanation.join('\n'));
        assert.ok(r.pass);
      });
    }
  }
}
