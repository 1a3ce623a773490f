import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { LoadError, loadPolicies, loadPolicyBytes, loadPolicyText } from './load.ts';

const good = (name: string) =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}, namespace: n}\nspec: {endpointSelector: {}, ingress: [{}]}\n`;
const bad = (name: string) =>
  `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${name}, namespace: n}\nspec: {endpointSelector: {}}\n`;

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'seawall-load-'));
  await mkdir(join(dir, 'sub'));
  await mkdir(join(dir, '.hidden'));
  await writeFile(join(dir, 'b.yaml'), good('b'));
  await writeFile(join(dir, 'a.yml'), bad('a'));
  await writeFile(
    join(dir, 'sub', 'c.json'),
    JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }),
  );
  await writeFile(join(dir, 'notes.txt'), 'not a policy');
  await writeFile(join(dir, '.hidden', 'x.yaml'), bad('x'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('load: a directory recursively, sorted, only policy extensions', async () => {
  const res = await loadPolicies([dir]);
  assert.deepEqual(res.files, [join(dir, 'a.yml'), join(dir, 'b.yaml'), join(dir, 'sub', 'c.json')]);
  assert.deepEqual(
    res.policies.map((p) => p.metadata.name),
    ['b'],
  );
  assert.equal(res.others.length, 1);
  assert.deepEqual(
    res.issues.map((i) => [i.code, i.object, i.pos.file]),
    [['no-rule-sections', 'CiliumNetworkPolicy n/a', join(dir, 'a.yml')]],
  );
});

test('load: stdin as "-"', async () => {
  const res = await loadPolicies(['-'], { stdin: Readable.from([Buffer.from(good('s'))]) });
  assert.deepEqual(res.files, ['<stdin>']);
  assert.equal(res.policies.length, 1);
});

test('load: a missing file throws LoadError', async () => {
  await assert.rejects(loadPolicies([join(dir, 'nope.yaml')]), (e: unknown) => {
    assert.ok(e instanceof LoadError);
    assert.equal(e.code, 'not-found');
    return true;
  });
});

test('load: issues sorted by file, line, column', () => {
  const text = `${bad('one')}---\n${good('two')}---\n${bad('three')}`;
  const res = loadPolicyText('m.yaml', text);
  const lines = res.issues.map((i) => i.pos.line);
  assert.deepEqual(
    lines,
    [...lines].sort((a, b) => a - b),
  );
  assert.deepEqual(
    res.issues.map((i) => i.object),
    ['CiliumNetworkPolicy n/one', 'CiliumNetworkPolicy n/three'],
  );
  assert.deepEqual(
    res.policies.map((p) => p.metadata.name),
    ['two'],
  );
});

interface ByteRow {
  name: string;
  bytes: Uint8Array;
  code: string;
}
const byteRows: ByteRow[] = [
  { name: 'binary', bytes: new Uint8Array([0x61, 0x00, 0x62]), code: 'binary-file' },
  { name: 'not UTF-8', bytes: new Uint8Array([0x61, 0x3a, 0x20, 0xff, 0xfe]), code: 'invalid-utf8' },
  { name: 'syntax error', bytes: new TextEncoder().encode('a: [1, 2\nb: }'), code: 'yaml-syntax' },
  { name: 'duplicate key', bytes: new TextEncoder().encode('kind: A\nkind: B\n'), code: 'duplicate-key' },
];
for (const row of byteRows) {
  test(`load: bytes ${row.name}`, () => {
    const res = loadPolicyBytes('b.yaml', row.bytes);
    assert.ok(
      res.issues.some((i) => i.code === row.code),
      JSON.stringify(res.issues),
    );
  });
}

test('load: item 5: a FIFO named *.yaml in a directory is an issue, not a hang', async () => {
  const d = await mkdtemp(join(tmpdir(), 'seawall-load-fifo-'));
  try {
    await writeFile(join(d, 'a.yaml'), good('a'));
    execFileSync('mkfifo', [join(d, 'b.yaml')]);
    const res = await loadPolicies([d]);
    assert.deepEqual(
      res.policies.map((p) => p.metadata.name),
      ['a'],
    );
    assert.deepEqual(
      res.issues.map((i) => [i.code, i.pos.file, i.message]),
      [
        [
          'not-regular-file',
          join(d, 'b.yaml'),
          `${join(d, 'b.yaml')}: is a FIFO (named pipe), not a regular file (to read standard input, give -)`,
        ],
      ],
    );
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('load: item 5: /dev/zero is refused, not read until memory runs out', async () => {
  const res = await loadPolicies(['/dev/zero']);
  assert.deepEqual(
    res.issues.map((i) => [i.code, i.message]),
    [['not-regular-file', '/dev/zero: is a character device, not a regular file']],
  );
});

test('load: item 5: stdin is capped at 16 MiB', async () => {
  const big = Readable.from(
    (function* () {
      for (let i = 0; i < 64; i++) yield Buffer.alloc(1024 * 1024, 0x20);
    })(),
  );
  const res = await loadPolicies(['-'], { stdin: big });
  assert.deepEqual(
    res.issues.map((i) => [i.code, i.pos.file]),
    [['file-too-large', '<stdin>']],
  );
  assert.match(res.issues[0]!.message, /16 MiB \(16777216 bytes\)/);
});

test('load: item 12: a symlink loop reads each file once', async () => {
  const d = await mkdtemp(join(tmpdir(), 'seawall-load-loop-'));
  try {
    await writeFile(join(d, 'a.yaml'), good('a'));
    await symlink('.', join(d, 'loop'));
    const res = await loadPolicies([d]);
    assert.deepEqual(res.files, [join(d, 'a.yaml')]);
    assert.equal(res.policies.length, 1);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
