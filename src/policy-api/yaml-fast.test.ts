// The fast reader against the yaml package: whatever it accepts must be, node by node, what the
// yaml package builds (class, range, value, scalar type, source, flow), with the same line table
// and document start, and the yaml package must find no error or warning in it. Rows: every YAML
// file of the repository, named shapes, and seeded random documents with random mutations.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import { parseFastYAML } from './yaml-fast.ts';

function full(text: string) {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, {
    lineCounter,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
    version: '1.2',
  });
  return { docs: Array.isArray(docs) ? docs : [], lineCounter };
}

function same(a: unknown, b: unknown, at: string): void {
  if (a == null || b == null) {
    assert.equal(a ?? null, b ?? null, at);
    return;
  }
  const x = a as Node;
  const y = b as Node;
  assert.equal(x.constructor.name, y.constructor.name, `${at}: class`);
  if (isScalar(x) && isScalar(y)) {
    // the node's end (range[2]) takes in trailing comment lines; nothing reads it
    assert.deepEqual(x.range?.slice(0, 2), y.range?.slice(0, 2), `${at}: range`);
    assert.equal(x.value, y.value, `${at}: value`);
    assert.equal(x.type, y.type, `${at}: type`);
    assert.equal(x.source, y.source, `${at}: source`);
    assert.equal(x.tag, y.tag, `${at}: tag`);
    return;
  }
  // a collection's end offsets (which take in trailing comments) are read by nothing: its start is
  assert.equal(x.range?.[0], y.range?.[0], `${at}: start`);
  assert.equal(
    Boolean((x as { flow?: boolean }).flow),
    Boolean((y as { flow?: boolean }).flow),
    `${at}: flow`,
  );
  assert.equal((x as { anchor?: string }).anchor, (y as { anchor?: string }).anchor, `${at}: anchor`);
  if (isMap(x) && isMap(y)) {
    assert.equal(x.items.length, y.items.length, `${at}: size`);
    x.items.forEach((p, i) => {
      const q = y.items[i]!;
      assert.ok(isPair(p) && isPair(q));
      same(p.key, q.key, `${at}.${i}(key)`);
      same(p.value, q.value, `${at}.${i}`);
    });
  } else if (isSeq(x) && isSeq(y)) {
    assert.equal(x.items.length, y.items.length, `${at}: size`);
    x.items.forEach((it, i) => {
      same(it, y.items[i], `${at}[${i}]`);
    });
  } else assert.fail(`${at}: unexpected node kinds`);
}

/** Checks one text; returns whether the fast reader took it. */
function agree(text: string): boolean {
  const fast = parseFastYAML(text);
  if (fast === undefined) return false;
  const f = full(text);
  const shown = JSON.stringify(text);
  assert.equal(f.docs.length, 1, `one document: ${shown}`);
  const doc = f.docs[0]!;
  assert.deepEqual(
    doc.errors.map((e) => e.code),
    [],
    `the yaml package finds no error: ${shown}`,
  );
  assert.deepEqual(
    doc.warnings.map((e) => e.code),
    [],
    `no warning: ${shown}`,
  );
  assert.equal(fast.start, doc.range?.[0], `document start: ${shown}`);
  assert.deepEqual(fast.lineCounter.lineStarts, f.lineCounter.lineStarts, `line table: ${shown}`);
  same(fast.contents, doc.contents, shown);
  assert.deepEqual(fast.contents.toJSON(), (doc.contents as Node).toJSON(), `toJSON: ${shown}`);
  return true;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const repo = join(here, '..', '..');

function yamlFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) yamlFiles(p, out);
    else if (/\.ya?ml$/.test(name) && st.size < 1 << 20) out.push(p);
  }
  return out;
}

const SHAPES: Array<{ name: string; text: string; fast: boolean }> = [
  {
    name: 'a one-rule CNP',
    fast: true,
    text: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: a\nspec:\n  endpointSelector:\n    matchLabels:\n      app: x\n  ingress:\n    - fromEndpoints:\n        - matchLabels:\n            tier: t\n      toPorts:\n        - ports:\n            - port: "80"\n              protocol: TCP\n',
  },
  { name: 'a sequence at its key’s column', fast: true, text: 'a:\n- b\n- c: 1\n  d: [] # x\ne: {}\n' },
  { name: 'comments and blank lines anywhere', fast: true, text: '# top\n\na: # c\n# c\n    b: 1 # d\n\n' },
  { name: 'quoted keys and values', fast: true, text: '"a.b/c": \'x y\'\nk8s:app: "q"\n' },
  {
    name: 'integers, booleans, nulls, addresses',
    fast: true,
    text: 'a: 80\nd: true\ne: NULL\nf: 10.0.0.0/8\n',
  },
  { name: 'other numbers: the full parser', fast: false, text: 'a: 1.5\nc: 0x1F\n' },
  { name: 'a leading zero: the full parser', fast: false, text: 'a: 080\n' },
  { name: 'no final newline', fast: true, text: 'a: b' },
  { name: 'a duplicate key: the full parser reports it', fast: false, text: 'a: 1\na: 2\n' },
  { name: 'two documents', fast: false, text: 'a: 1\n---\nb: 2\n' },
  { name: 'an empty value', fast: false, text: 'a:\nb: 1\n' },
  { name: 'a tab', fast: false, text: 'a:\t1\n' },
  { name: 'an anchor', fast: false, text: 'a: &x 1\nb: *x\n' },
  { name: 'a multi-line plain scalar', fast: false, text: 'a: b\n  c\n' },
  { name: 'a nested mapping on one line', fast: false, text: 'a: b: c\n' },
  { name: 'an escape', fast: false, text: 'a: "x\\ty"\n' },
  { name: 'a flow mapping with content', fast: false, text: 'a: {b: 1}\n' },
  { name: 'a wrong indentation', fast: false, text: 'a:\n  b: 1\n c: 2\n' },
  { name: 'a block scalar', fast: false, text: 'a: |\n  x\n' },
  { name: 'Unicode', fast: false, text: 'a: é\n' },
  { name: 'CRLF', fast: false, text: 'a: b\r\n' },
];

describe('fast YAML reader agrees with the yaml package', () => {
  for (const s of SHAPES) {
    it(s.name, () => {
      assert.equal(agree(s.text), s.fast);
    });
  }

  it('every YAML file of the repository', () => {
    let taken = 0;
    const files = yamlFiles(repo);
    assert.ok(files.length > 10);
    for (const f of files) if (agree(readFileSync(f, 'utf8'))) taken++;
    // enough of them are in the subset for the test to compare something (a count, not a share:
    // PolicyTest files with flow tables, outside the subset, came and tipped a share of a third)
    assert.ok(taken >= 20, `${taken} of ${files.length}`);
  });

  it('seeded random documents, mutated', () => {
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
    const SCALARS = [
      'a',
      'app-1',
      'TCP',
      '80',
      '080',
      '0',
      '1.5',
      '1e3',
      'true',
      'False',
      'null',
      '~',
      '10.0.0.0/8',
      'k8s:app',
      '"x"',
      "'y z'",
      '"a#b"',
      'a #c',
      '{}',
      '[]',
      '0x1F',
      '.inf',
      '-1',
      'x: y',
      '"',
      'é',
    ];
    const KEYS = ['a', 'b', 'name', 'k8s:x', '"q.k"', '80', 'true', 'a b', 'c'];
    const gen = (ind: number, depth: number, inSeqItem: boolean): string => {
      const pad = ' '.repeat(ind);
      const kind = depth > 3 ? 0 : rnd(3);
      if (kind === 0) return ` ${pick(SCALARS)}${rnd(4) === 0 ? ' # c' : ''}\n`;
      if (kind === 1) {
        let s = rnd(5) === 0 ? ' # c\n' : '\n';
        const n = 1 + rnd(3);
        const keys = new Set<string>();
        for (let i = 0; i < n; i++) {
          const k = pick(KEYS);
          if (keys.has(k) && rnd(4) !== 0) continue;
          keys.add(k);
          s += `${pad}${k}:${gen(ind + 2, depth + 1, false)}`;
        }
        return s;
      }
      const sind = inSeqItem || rnd(2) === 0 ? ind : Math.max(0, ind - 2);
      let s = '\n';
      for (let i = 0, n = 1 + rnd(3); i < n; i++) {
        const body = gen(sind + 2, depth + 1, true);
        // `- key: v` compact form: the first line of a map body after the dash
        s +=
          body.startsWith('\n') && rnd(2) === 0
            ? `${' '.repeat(sind)}-${body.slice(1).replace(/^ */, ' ')}`
            : `${' '.repeat(sind)}-${body}`;
      }
      return s;
    };
    const MUT = [' ', '\n', '#', ':', '-', '\t', '"', "'", '{', '&a ', '*a', '  ', '---\n', '!x '];
    let taken = 0;
    let total = 0;
    for (let r = 0; r < 1500; r++) {
      let text = `root:${gen(2, 0, false)}`.replace(/^root:\n/, '');
      if (text.startsWith(' ')) text = `x:${text}`;
      if (rnd(2) === 0) {
        const at = rnd(text.length + 1);
        text =
          rnd(3) === 0
            ? text.slice(0, at) + text.slice(at + 1)
            : text.slice(0, at) + pick(MUT) + text.slice(at);
      }
      total++;
      if (agree(text)) taken++;
    }
    // enough in the subset for the comparison to mean something (the rest checks the refusals)
    assert.ok(taken > total / 10, `${taken} of ${total} in the subset`);
  });
});
