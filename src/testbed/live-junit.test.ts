// The live runner's JUnit XML: the offline layout plus skipped-live flows as <skipped/>, written by
// the one JUnit writer (report/junit.ts). Golden file: exact bytes.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatLiveJUnit, type LiveFlowResult } from './live-test.ts';

const base = { file: 'tests/shop.yaml', test: 'shop <&>', protocol: 'TCP', expected: 'allowed' } as const;

const results: LiveFlowResult[] = [
  {
    ...base,
    flow: 0,
    from: 'shop/a',
    to: 'shop/b',
    port: 80,
    offline: 'allowed',
    live: 'allowed',
    outcome: 'pass',
    ms: 12,
  },
  {
    ...base,
    flow: 1,
    name: 'db "denied"',
    from: 'shop/a',
    to: 'shop/db',
    port: 5432,
    expected: 'denied',
    offline: 'denied',
    live: 'allowed',
    outcome: 'fail',
    ms: 3,
    note: 'live allowed but offline denied',
    records: ['INGRESS FORWARDED', 'EGRESS FORWARDED'],
  },
  {
    ...base,
    flow: 2,
    from: 'shop/a',
    to: 'world',
    offline: 'allowed',
    outcome: 'skip',
    note: 'FQDN destination: needs the DNS proxy',
  },
  {
    ...base,
    file: 'tests/other.yaml',
    test: 'other',
    flow: 0,
    from: 'x/a',
    to: 'x/b',
    protocol: 'ICMP',
    offline: 'allowed',
    live: 'allowed',
    outcome: 'pass',
  },
];

test('formatLiveJUnit: suites per PolicyTest, failures with records, skipped-live as skipped (golden)', () => {
  const seconds = new Map([[`tests/shop.yaml\u0000shop <&>`, 1.5]]);
  const got = formatLiveJUnit(results, seconds);
  const file = join(import.meta.dirname, 'testdata', 'live.junit.golden');
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, got);
  assert.equal(got, readFileSync(file, 'utf8'));
});
