// Property tests: whatever the input, loading never throws, terminates quickly, and every issue
// is well-formed (code, path, file:line:column with line ≥ 1).

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { loadPolicyBytes, loadPolicyText } from './load.ts';
import type { LoadResult } from './types.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const conformance = join(resolve(repoRoot, '../shared'), 'conformance');

function corpus(): string[] {
  const out: string[] = [];
  for (const dir of [conformance, join(conformance, 'invalid')]) {
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort())
      if (f.endsWith('.yaml')) out.push(readFileSync(join(dir, f), 'utf8'));
  }
  if (out.length === 0) {
    out.push(
      'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: a}\nspec:\n  endpointSelector: {}\n  ingress: [{}]\n',
    );
  }
  return out;
}
const seeds = corpus();

function wellFormed(res: LoadResult): void {
  for (const i of res.issues) {
    assert.equal(typeof i.code, 'string');
    assert.match(i.code, /^[a-z0-9]+(-[a-z0-9]+)*$/);
    assert.equal(typeof i.path, 'string');
    assert.equal(typeof i.message, 'string');
    assert.ok(i.severity === 'error' || i.severity === 'warning');
    assert.ok(Number.isInteger(i.pos.line) && i.pos.line >= 1, `line ${i.pos.line}`);
    assert.ok(Number.isInteger(i.pos.column) && i.pos.column >= 1, `column ${i.pos.column}`);
    assert.equal(typeof i.pos.file, 'string');
  }
}

function timed<T>(fn: () => T, ms: number): T {
  const t0 = performance.now();
  const r = fn();
  const dt = performance.now() - t0;
  assert.ok(dt < ms, `took ${dt.toFixed(0)} ms`);
  return r;
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.string({ maxLength: 20 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.nat({ max: 40 }) }),
  fc.record({
    op: fc.constant('token' as const),
    at: fc.nat(),
    text: fc.constantFrom(
      ':',
      '- ',
      '[',
      ']',
      '{',
      '}',
      '"',
      "'",
      '&a ',
      '*a',
      '\n  ',
      '\t',
      '---\n',
      '? ',
      '!!binary ',
      'null',
      '[]',
      '{}',
      '0x1F',
      '"*"',
      'ingress: []\n',
    ),
  }),
  fc.record({ op: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(text: string, m: Mutation): string {
  const at = text.length === 0 ? 0 : ('at' in m ? m.at : 0) % (text.length + 1);
  switch (m.op) {
    case 'insert':
    case 'token':
      return text.slice(0, at) + m.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + m.len);
    case 'swapLines': {
      const lines = text.split('\n');
      const a = m.a % lines.length;
      const b = m.b % lines.length;
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return lines.join('\n');
    }
  }
}

test('fuzz: mutated conformance files never throw', () => {
  fc.assert(
    fc.property(
      fc.nat({ max: seeds.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 8 }),
      (i, ms) => {
        const text = ms.reduce(mutate, seeds[i]!);
        wellFormed(timed(() => loadPolicyText('m.yaml', text), 2000));
      },
    ),
    { numRuns: 400 },
  );
});

test('fuzz: random bytes never throw', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      wellFormed(timed(() => loadPolicyBytes('b.yaml', bytes), 2000));
    }),
    { numRuns: 300 },
  );
});

test('fuzz: random mutations of bytes (non-UTF-8 inside a policy)', () => {
  const base = new TextEncoder().encode(seeds[0]!);
  fc.assert(
    fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, byte) => {
      const b = new Uint8Array(base);
      b[at % b.length] = byte;
      wellFormed(loadPolicyBytes('b.yaml', b));
    }),
    { numRuns: 200 },
  );
});

test('fuzz: generated JSON values in every place of a policy', () => {
  const value = fc.jsonValue({ maxDepth: 4 });
  fc.assert(
    fc.property(value, value, fc.constantFrom('spec', 'specs', 'metadata', 'items'), (a, b, where) => {
      const obj = {
        apiVersion: 'cilium.io/v2',
        kind: where === 'items' ? 'List' : 'CiliumNetworkPolicy',
        metadata: where === 'metadata' ? a : { name: 'x' },
        [where]:
          where === 'specs' ? [a, b] : where === 'items' ? [a, b] : { endpointSelector: {}, ingress: [a, b] },
      };
      wellFormed(loadPolicyText('j.json', JSON.stringify(obj)));
    }),
    { numRuns: 300 },
  );
});

interface Hostile {
  name: string;
  text: string;
}
const laughs = (() => {
  let s = 'a0: &a0 [lol]\n';
  for (let i = 1; i <= 9; i++)
    s += `a${i}: &a${i} [${Array(10)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  return s;
})();
const hostile: Hostile[] = [
  { name: 'deep flow nesting', text: `${'['.repeat(5000)}${']'.repeat(5000)}` },
  {
    name: 'deep block nesting',
    text: Array.from({ length: 300 }, (_, i) => `${' '.repeat(i)}a:`).join('\n'),
  },
  { name: 'billion laughs', text: laughs },
  {
    name: 'billion laughs inside a policy',
    text: `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nx: &x0 {}\nspec:\n  endpointSelector: {}\n  ingress:\n${Array(99).fill('    - *x0').join('\n')}\n`,
  },
  {
    name: 'alias fan-out in a policy',
    text: `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec:\n  endpointSelector: &s {matchLabels: {a: b}}\n  ingress:\n    - fromEndpoints: &l [${Array(30).fill('*s').join(', ')}]\n    - fromEndpoints: *l\n`,
  },
  {
    name: 'huge string',
    text: `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec:\n  endpointSelector: {}\n  egress: [{toFQDNs: [{matchPattern: "${'a*'.repeat(200_000)}"}], toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{path: "${'(a|'.repeat(2000)}", host: "${'.'.repeat(100_000)}"}]}}]}]\n`,
  },
  { name: 'many documents', text: '---\na: 1\n'.repeat(5000) },
  { name: 'nested lists', text: `${'{apiVersion: v1, kind: List, items: ['.repeat(20)}${']}'.repeat(20)}` },
];
for (const h of hostile) {
  test(`fuzz: hostile input: ${h.name}`, () => {
    wellFormed(timed(() => loadPolicyText('h.yaml', h.text), 5000));
  });
}
