import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { collectTestFiles } from './files.ts';

const dir = mkdtempSync(join(tmpdir(), 'seawall-testfiles-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const TEST = 'apiVersion: seawall/v1\nkind: PolicyTest\nmetadata: {name: t}\nspec: {flows: []}\n';

test('collectTestFiles: item 12: a symlink loop yields each PolicyTest once', () => {
  const d = join(dir, 'loop');
  mkdirSync(join(d, 'sub'), { recursive: true });
  writeFileSync(join(d, 'sub', 't.yaml'), TEST);
  writeFileSync(join(d, 'policy.yaml'), 'kind: CiliumNetworkPolicy\n');
  symlinkSync('..', join(d, 'sub', 'up'));
  symlinkSync('.', join(d, 'self'));
  const got = collectTestFiles([d]);
  assert.deepEqual(got, { files: [join(d, 'sub', 't.yaml')], missing: [], unreadable: [] });
});

test('collectTestFiles: item 5: a FIFO named *.yaml is reported, not read', () => {
  const d = join(dir, 'fifo');
  mkdirSync(d);
  writeFileSync(join(d, 'a.yaml'), TEST);
  execFileSync('mkfifo', [join(d, 'b.yaml')]);
  const got = collectTestFiles([d, join(dir, 'nope')]);
  assert.deepEqual(got.files, [join(d, 'a.yaml')]);
  assert.deepEqual(got.missing, [join(dir, 'nope')]);
  assert.deepEqual(
    got.unreadable.map((u) => [u.code, u.message]),
    [
      [
        'not-regular-file',
        `${join(d, 'b.yaml')}: is a FIFO (named pipe), not a regular file (to read standard input, give -)`,
      ],
    ],
  );
});
