// Issue 15 (ResolveNoMatchingRules): upserting a rule is matched only against the endpoints its
// endpointSelector's index label names (the SelectorCache's label index), never against every
// identity. Counted as label-set reads during the upsert, so a full rescan fails the test.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSet } from '../labels/label.ts';
import { PolicyEngine } from './engine.ts';
import { cnp, pod } from './testutil.ts';

/** Label-set reads while `f` runs (what matching a selector against an identity costs). */
function labelReads(f: () => void): number {
  const proto = LabelSet.prototype as unknown as Record<'values' | 'has', (...a: unknown[]) => unknown>;
  const orig = { values: proto.values, has: proto.has };
  let n = 0;
  for (const m of ['values', 'has'] as const)
    proto[m] = function (this: unknown, ...a: unknown[]) {
      n++;
      return orig[m].apply(this, a);
    };
  try {
    f();
  } finally {
    proto.values = orig.values;
    proto.has = orig.has;
  }
  return n;
}

test('an upserted rule is matched only against the endpoints its selector can select', () => {
  const e = new PolicyEngine();
  const N = 2000;
  for (let i = 0; i < N; i++)
    e.upsertEndpoint(pod(`shop/p${i}`, { app: `app-${i % 500}`, tier: 'web' }, `10.1.${i >> 8}.${i & 255}`));
  const rows: Array<{ name: string; selector: Record<string, unknown>; atMost: number; selects: number }> = [
    {
      name: 'a label no endpoint carries',
      selector: { matchLabels: { app: 'nobody' } },
      atMost: 0,
      selects: 0,
    },
    // 4 pods carry app-7: each is checked against the selector's few requirements
    {
      name: 'a label four endpoints carry',
      selector: { matchLabels: { app: 'app-7' } },
      atMost: 4 * 4,
      selects: 4,
    },
    {
      name: 'two labels, the rarer indexed',
      selector: { matchLabels: { tier: 'web', app: 'app-9' } },
      atMost: 4 * 4,
      selects: 4,
    },
  ];
  // The peer selector (every pod of the namespace) is matched once, on its first use: not counted.
  const ingress = [{ fromEndpoints: [{}] }];
  e.upsertPolicy(cnp('shop', 'warm', { endpointSelector: { matchLabels: { app: 'app-1' } }, ingress }));
  const enforced = () =>
    e.endpointKeys().filter((k) => e.endpointPolicy('shop', k.split('/')[1]!).ingress.enforced).length;
  let before = enforced();
  rows.forEach((row, i) => {
    const p = cnp('shop', `r${i}`, { endpointSelector: row.selector, ingress });
    const reads = labelReads(() => e.upsertPolicy(p));
    assert.ok(reads <= row.atMost, `${row.name}: ${reads} label reads (at most ${row.atMost})`);
    const now = enforced();
    assert.equal(now - before, row.selects, `${row.name}: endpoints it selects`);
    before = now;
  });
  e.close();
});
