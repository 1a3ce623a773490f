// `test --against` with policies in audit mode: the flows they would drop are counted as audited
// (not dropped), grouped with the policy that would have denied them; exit status follows drops.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden } from '../core/testing/golden.ts';
import { parseFlowText } from '../flow/read.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { loadPolicyText } from '../policy-api/load.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import { AUDIT_MODE_ANNOTATION } from '../policy-api/validate-meta.ts';
import { formatAgainstText, runAgainst } from './against.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const DIR = join(root, 'src/policytest/testdata/against');
const LOG = join(DIR, 'flows.jsonl');
const read = parseFlowText(LOG, readFileSync(LOG, 'utf8'));
const policies = (audit: (name: string) => boolean): PolicyObject[] =>
  ['backend.yaml', 'frontend.yaml'].flatMap((f) => {
    const ps = loadPolicyText(f, readFileSync(join(DIR, 'policies', f), 'utf8')).policies;
    for (const p of ps) {
      if (audit(p.metadata.name))
        p.metadata.annotations = { ...p.metadata.annotations, [AUDIT_MODE_ANNOTATION]: 'true' };
    }
    return ps;
  });

const rows: Array<{
  name: string;
  audit: (n: string) => boolean;
  dropped: number;
  audited: number;
  golden?: string;
}> = [
  { name: 'no policy audited: the reviewed set drops eleven', audit: () => false, dropped: 11, audited: 0 },
  {
    name: 'every policy audited: ten audited, the L7 refusal still dropped (L7 is not audited)',
    audit: () => true,
    dropped: 1,
    audited: 10,
    golden: 'against-audited',
  },
];
for (const row of rows) {
  test(`against, audit mode: ${row.name}`, () => {
    const r = runAgainst(
      { flows: read.flows, lines: read.lines, policies: policies(row.audit) },
      defaultEngineFactory,
    );
    assert.deepEqual(r.issues, []);
    assert.equal(r.dropped, row.dropped);
    assert.equal(r.audited, row.audited);
    if (row.golden) {
      const text = formatAgainstText(r, 'flows.jsonl');
      golden(join(here, 'testdata', `${row.golden}.golden`), text);
      assert.match(
        text,
        /\n {2}ingress: audited \(POLICY_DENIED\): would be denied by CiliumNetworkPolicy shop\/backend/,
      );
    }
  });
}

test('against, audit mode: one audited policy of two, the other keeps dropping', () => {
  const all = runAgainst(
    { flows: read.flows, lines: read.lines, policies: policies(() => false) },
    defaultEngineFactory,
  );
  const names = [
    ...new Set(all.groups.map((g) => g.rule.match(/CiliumNetworkPolicy \S+\/(\S+)/)?.[1])),
  ].filter((x): x is string => x !== undefined);
  assert.ok(names.length >= 1, JSON.stringify(all.groups));
  const first = names[0]!;
  const r = runAgainst(
    { flows: read.flows, lines: read.lines, policies: policies((n) => n === first) },
    defaultEngineFactory,
  );
  assert.ok(r.audited > 0, 'some audited');
  for (const g of r.groups) {
    if (g.outcome === 'audited') assert.match(g.rule, new RegExp(`/${first}`));
  }
  // audit only turns drops into AUDIT: every flow the full set drops is still dropped or audited
  assert.equal(r.dropped + r.audited, all.dropped);
  assert.ok(r.dropped > 0, 'the other policy keeps dropping');
});
