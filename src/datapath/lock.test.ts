// The file lock between processes: holders run one at a time, a throwing holder or a killed
// process releases it, and a lock held too long is refused with its own code.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { removeLockFile, withFileLock } from './lock.ts';

const dir = mkdtempSync(join(tmpdir(), 'seawall-lock-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Another process holding the lock on `path` until killed; resolves once it holds it. */
async function holder(path: string): Promise<() => void> {
  const child = spawn('flock', ['-x', '-o', path, 'sh', '-c', 'echo held; exec sleep 60'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await new Promise((r) => child.stdout.once('data', r));
  return () => child.kill('SIGKILL');
}

describe('withFileLock', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('holders in one process run one at a time, in the order they took it', async () => {
    const path = join(dir, 'a.lock');
    const log: string[] = [];
    const hold = (name: string) =>
      withFileLock(path, async () => {
        log.push(`${name} in`);
        await sleep(50);
        log.push(`${name} out`);
      });
    const first = hold('1');
    await sleep(20);
    await Promise.all([first, hold('2')]);
    assert.deepEqual(log, ['1 in', '1 out', '2 in', '2 out']);
  });

  it('a holder that throws releases the lock and its error reaches the caller', async () => {
    const path = join(dir, 'b.lock');
    await assert.rejects(
      withFileLock(path, async () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.equal(await withFileLock(path, async () => 'next'), 'next');
  });

  it("another process's lock waits; once that process is killed the lock is free", async () => {
    const path = join(dir, 'c.lock');
    const kill = await holder(path);
    let ran = false;
    const p = withFileLock(path, async () => {
      ran = true;
    });
    await sleep(200);
    assert.equal(ran, false, 'ran while another process held the lock');
    kill();
    await p;
    assert.equal(ran, true);
  });

  it("a holder that removes the file: a waiter on the old file then waits for the new file's holder", async () => {
    const path = join(dir, 'e.lock');
    const log: string[] = [];
    let releaseA: () => void = () => {};
    const aHolds = new Promise<void>((r) => {
      releaseA = r;
    });
    let aIn: () => void = () => {};
    const aStarted = new Promise<void>((r) => {
      aIn = r;
    });
    const a = withFileLock(path, async () => {
      aIn();
      await aHolds;
      log.push('a out');
    });
    await aStarted;
    const b = withFileLock(path, async () => {
      log.push('b in');
    });
    await sleep(100); // b waits on the file a holds
    removeLockFile(path); // a's guarded thing went, and its file with it
    let releaseC: () => void = () => {};
    const cHolds = new Promise<void>((r) => {
      releaseC = r;
    });
    const c = withFileLock(path, async () => {
      log.push('c in');
      await cHolds;
      log.push('c out');
    });
    await sleep(100); // c holds the new file
    releaseA();
    await a;
    await sleep(200); // b has the old file's lock now: it must see it removed and wait for c
    releaseC();
    await Promise.all([b, c]);
    assert.deepEqual(log, ['c in', 'a out', 'c out', 'b in']);
  });

  it('a lock held past the timeout is refused with lock-failed', async () => {
    const path = join(dir, 'd.lock');
    const kill = await holder(path);
    try {
      await assert.rejects(
        withFileLock(path, async () => 'never', 1000),
        (e: Error & { code?: string }) => e.code === 'lock-failed' && e.message.includes(path),
      );
    } finally {
      kill();
    }
  });
});
