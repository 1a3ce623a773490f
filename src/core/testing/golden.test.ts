import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { golden, goldenJSON } from './golden.ts';

const dir = mkdtempSync(join(tmpdir(), 'seawall-golden-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('golden', () => {
  const rows: Array<{ name: string; file: string; actual: string; error?: RegExp }> = [
    { name: 'equal text passes', file: 'same.golden', actual: 'a\nb\n' },
    {
      name: 'a differing line is named, with both texts',
      file: 'same.golden',
      actual: 'a\nc\n',
      error: /same\.golden at line 2:\n {2}golden: "b"\n {2}actual: "c"\n\(UPDATE_GOLDEN=1/,
    },
    {
      name: 'a missing final newline is a difference',
      file: 'same.golden',
      actual: 'a\nb',
      error: /at line 3:\n {2}golden: ""\n {2}actual: \(end of text\)/,
    },
    {
      name: 'a missing golden file says how to create it',
      file: 'absent.golden',
      actual: 'x',
      error: /absent\.golden does not exist; run with UPDATE_GOLDEN=1 to create it/,
    },
  ];
  writeFileSync(join(dir, 'same.golden'), 'a\nb\n');
  for (const r of rows) {
    it(r.name, () => {
      const run = () => golden(join(dir, r.file), r.actual, { update: false });
      if (r.error === undefined) run();
      else assert.throws(run, (e: unknown) => e instanceof assert.AssertionError && r.error!.test(e.message));
    });
  }

  it('update writes the file (creating folders) instead of comparing', () => {
    const file = join(dir, 'new', 'out.golden');
    golden(file, 'fresh\n', { update: true });
    assert.equal(readFileSync(file, 'utf8'), 'fresh\n');
    golden(file, 'fresh\n', { update: false });
  });

  it('UPDATE_GOLDEN=1 in the environment is the default', () => {
    const file = join(dir, 'env.golden');
    const before = process.env.UPDATE_GOLDEN;
    process.env.UPDATE_GOLDEN = '1';
    try {
      golden(file, 'env\n');
    } finally {
      if (before === undefined) delete process.env.UPDATE_GOLDEN;
      else process.env.UPDATE_GOLDEN = before;
    }
    assert.ok(existsSync(file));
  });

  it('goldenJSON writes two-space JSON with a final newline', () => {
    const file = join(dir, 'v.golden.json');
    goldenJSON(file, { a: [1] }, { update: true });
    assert.equal(readFileSync(file, 'utf8'), '{\n  "a": [\n    1\n  ]\n}\n');
  });
});
