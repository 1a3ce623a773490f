// Issue 8 item 5 (agent part): the agent reads only regular files from its policy directory,
// with a size cap, and follows symlinks with loop detection; everything else is skipped with
// a reason, never blocking (a FIFO named x.yaml).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readPolicyDir } from './policy-dir.ts';

describe('item 5: readPolicyDir', () => {
  const root = mkdtempSync(join(tmpdir(), 'seawall-policy-dir-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const dir = join(root, 'policies');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'a.yaml'), 'a: 1\n');
  writeFileSync(join(dir, 'sub', 'b.yml'), 'b: 1\n');
  writeFileSync(join(dir, 'notes.txt'), 'not a policy file\n');
  writeFileSync(join(dir, '.hidden.yaml'), 'h: 1\n');
  writeFileSync(join(dir, 'big.yaml'), 'x'.repeat(2048));
  execFileSync('mkfifo', [join(dir, 'x.yaml')]);
  const outside = join(root, 'outside.yaml');
  writeFileSync(outside, 'o: 1\n');
  symlinkSync(outside, join(dir, 'link.yaml'));
  symlinkSync(dir, join(dir, 'sub', 'loop')); // a directory link back to the store
  symlinkSync(join(dir, 'self1.yaml'), join(dir, 'self2.yaml'));
  symlinkSync(join(dir, 'self2.yaml'), join(dir, 'self1.yaml'));
  symlinkSync(join(root, 'nowhere.yaml'), join(dir, 'dangling.yaml'));

  const r = readPolicyDir(dir, { maxBytes: 1024 });
  const files = r.files.map((f) => f.path.slice(dir.length + 1));
  const skipped = new Map(r.skipped.map((s) => [s.path.slice(dir.length + 1), s.reason]));

  const rows: Array<{ name: string; check: () => void }> = [
    {
      name: 'regular YAML files, sorted, subdirectories included',
      check: () => assert.deepEqual(files, ['a.yaml', 'link.yaml', 'sub/b.yml']),
    },
    {
      name: 'a symlink to a file is followed once (its target content)',
      check: () => assert.equal(r.files[1]?.bytes.toString(), 'o: 1\n'),
    },
    {
      name: 'a FIFO named x.yaml is skipped without blocking',
      check: () => assert.match(skipped.get('x.yaml') ?? '', /is a FIFO \(named pipe\), not a regular file$/),
    },
    {
      name: 'a file above the size cap is skipped',
      check: () =>
        assert.match(
          skipped.get('big.yaml') ?? '',
          /is 2048 bytes, more than the limit of 1024 bytes per file/,
        ),
    },
    {
      name: 'a directory link back to the store is a loop, walked once',
      check: () => assert.match(skipped.get('sub/loop') ?? '', /symlink loop/),
    },
    {
      name: 'a cycle of file links is a loop',
      check: () => assert.match(skipped.get('self1.yaml') ?? '', /too many levels of symbolic links/),
    },
    {
      name: 'a dangling link is reported',
      check: () => assert.match(skipped.get('dangling.yaml') ?? '', /no such file or directory/),
    },
    {
      name: 'other names and hidden files are not policy files',
      check: () => assert.ok(!skipped.has('notes.txt') && !files.includes('.hidden.yaml')),
    },
    {
      name: 'content hashes identify content',
      check: () => assert.match(r.files[0]?.hash ?? '', /^[0-9a-f]{64}$/),
    },
  ];
  for (const row of rows) it(row.name, row.check);

  it('a store that cannot be read throws (it is not an empty store)', () => {
    assert.throws(() => readPolicyDir(join(root, 'missing')), /ENOENT/);
  });
  it('a FIFO given as the store itself is skipped, not read', () => {
    const r2 = readPolicyDir(join(dir, 'x.yaml'));
    assert.deepEqual(r2.files, []);
    assert.match(r2.skipped[0]?.reason ?? '', /FIFO/);
  });
});
