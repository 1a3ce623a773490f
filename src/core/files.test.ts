import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { MAX_INPUT_BYTES, readRegularFile, readStreamCapped, walkFiles } from './files.ts';

const dir = mkdtempSync(join(tmpdir(), 'seawall-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

writeFileSync(join(dir, 'ok.yaml'), 'kind: X\n');
execFileSync('mkfifo', [join(dir, 'pipe.yaml')]);
writeFileSync(join(dir, 'big.yaml'), '');
truncateSync(join(dir, 'big.yaml'), MAX_INPUT_BYTES + 1); // sparse: costs no disk

interface ReadRow {
  name: string;
  path: string;
  code?: string;
  message?: RegExp;
}
const readRows: ReadRow[] = [
  { name: 'a regular file is read', path: join(dir, 'ok.yaml') },
  {
    name: 'item 5: a FIFO is refused without blocking',
    path: join(dir, 'pipe.yaml'),
    code: 'not-regular-file',
    message: /pipe\.yaml: is a FIFO \(named pipe\), not a regular file \(to read standard input, give -\)$/,
  },
  {
    name: 'item 5: /dev/zero is refused before a byte is read',
    path: '/dev/zero',
    code: 'not-regular-file',
    message: /^\/dev\/zero: is a character device, not a regular file$/,
  },
  {
    name: 'item 5: a directory is refused',
    path: dir,
    code: 'not-regular-file',
    message: /is a directory/,
  },
  {
    name: 'item 5: a file over the cap is refused and the cap is named',
    path: join(dir, 'big.yaml'),
    code: 'file-too-large',
    message: /is 16777217 bytes, more than the limit of 16 MiB \(16777216 bytes\) per file/,
  },
  { name: 'a missing file', path: join(dir, 'nope.yaml'), code: 'not-found', message: /no such file/ },
];
for (const row of readRows) {
  test(`readRegularFile: ${row.name}`, () => {
    const r = readRegularFile(row.path);
    if (row.code === undefined) {
      assert.ok(r.ok);
      assert.equal(r.bytes.toString(), 'kind: X\n');
      return;
    }
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.code, row.code);
    assert.match(r.message, row.message!);
  });
}

test('readRegularFile: item 5: a lower cap is honoured', () => {
  const r = readRegularFile(join(dir, 'ok.yaml'), 3);
  assert.ok(!r.ok && r.code === 'file-too-large', JSON.stringify(r));
});

test('readStreamCapped: item 5: stdin stops at the cap and does not read on', async () => {
  let pulled = 0;
  const endless = Readable.from(
    (function* () {
      for (;;) {
        pulled++;
        yield Buffer.alloc(1024 * 1024, 0x61);
      }
    })(),
  );
  const r = await readStreamCapped(endless, '<stdin>');
  assert.ok(!r.ok && r.code === 'file-too-large', JSON.stringify(r));
  assert.match(r.ok ? '' : r.message, /^<stdin>: holds more than the limit of 16 MiB/);
  assert.ok(pulled <= 18, `pulled ${pulled} MiB`);
});

test('readStreamCapped: a small stream is read whole', async () => {
  const r = await readStreamCapped(Readable.from([Buffer.from('a: 1\n')]), '<stdin>');
  assert.ok(r.ok);
  assert.equal(r.bytes.toString(), 'a: 1\n');
});

test('walkFiles: item 12: a symlink loop is walked once', () => {
  const root = join(dir, 'loop');
  mkdirSync(join(root, 'sub'), { recursive: true });
  writeFileSync(join(root, 'a.yaml'), 'a: 1\n');
  writeFileSync(join(root, 'sub', 'b.yaml'), 'b: 1\n');
  symlinkSync('.', join(root, 'self'));
  symlinkSync('..', join(root, 'sub', 'up'));
  const w = walkFiles(root, { accept: (n) => n.endsWith('.yaml') });
  assert.deepEqual(w.files, [join(root, 'a.yaml'), join(root, 'sub', 'b.yaml')]);
  assert.deepEqual(w.problems, []);
});

test('walkFiles: symlinks to files and directories are followed; dangling ones reported', () => {
  const root = join(dir, 'links');
  const other = join(dir, 'other');
  mkdirSync(root);
  mkdirSync(other);
  writeFileSync(join(other, 'c.yaml'), 'c: 1\n');
  symlinkSync(other, join(root, 'linked'));
  symlinkSync(join(other, 'c.yaml'), join(root, 'd.yaml'));
  symlinkSync(join(dir, 'gone'), join(root, 'e.yaml'));
  symlinkSync(join(dir, 'gone'), join(root, 'notes.txt'));
  const w = walkFiles(root, { accept: (n) => n.endsWith('.yaml') });
  assert.deepEqual(w.files, [join(root, 'd.yaml'), join(root, 'linked', 'c.yaml')]);
  assert.deepEqual(
    w.problems.map((p) => [p.code, p.path]),
    [['not-found', join(root, 'e.yaml')]],
  );
});

test('walkFiles: skip by name, FIFOs left for the reader to refuse', () => {
  const w = walkFiles(dir, {
    accept: (n) => n.endsWith('.yaml'),
    skip: (n) => n === 'loop' || n === 'links' || n === 'other' || n === 'big.yaml',
  });
  assert.deepEqual(w.files, [join(dir, 'ok.yaml'), join(dir, 'pipe.yaml')]);
});

test('walkFiles: a file root is returned as given; a missing root is a problem', () => {
  assert.deepEqual(walkFiles(join(dir, 'ok.yaml')).files, [join(dir, 'ok.yaml')]);
  const w = walkFiles(join(dir, 'nope'));
  assert.deepEqual(
    w.problems.map((p) => p.code),
    ['not-found'],
  );
});
