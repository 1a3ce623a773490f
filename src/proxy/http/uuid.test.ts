import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomUUIDv4 } from './uuid.ts';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('randomUUIDv4: the version-4 form, all distinct, across several refills of its entropy', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const u = randomUUIDv4();
    assert.match(u, V4);
    seen.add(u);
  }
  assert.equal(seen.size, 2000);
});

test('randomUUIDv4: every hex digit appears in each free position (the bytes are random, not fixed)', () => {
  const digits = Array.from({ length: 36 }, () => new Set<string>());
  for (let i = 0; i < 4000; i++) {
    const u = randomUUIDv4();
    for (let j = 0; j < 36; j++) digits[j]!.add(u[j]!);
  }
  for (let j = 0; j < 36; j++) {
    const expected = [8, 13, 18, 23].includes(j) ? 1 : j === 14 ? 1 : j === 19 ? 4 : 16;
    assert.equal(digits[j]!.size, expected, `position ${j}: ${[...digits[j]!].sort().join('')}`);
  }
});
