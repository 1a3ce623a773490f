// A lock between processes on one machine, for steps that several agents may run at once (two
// agents making one underlay). It is a flock(2) held by a `flock` child (-o: by it alone, not by
// the `cat` it runs): the kernel drops the lock when that child exits, and it exits when its `cat`
// sees our end of the pipe close, on release or when this process dies, so an agent killed while
// holding it never leaves a stale lock for the next one.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatapathError } from './exec.ts';

/** Runs `fn` while holding the exclusive lock on `path` (made if missing; left in place). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const secs = String(Math.max(1, Math.ceil(timeoutMs / 1000)));
  const child = spawn(
    'flock',
    ['-x', '-o', '-w', secs, path, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let err = '';
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (e) => {
      err = `flock: ${e.message}`; // not installed (util-linux)
      resolve(null);
    });
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const locked = await new Promise<boolean>((resolve) => {
    child.stdout.once('data', () => resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!locked)
    throw new DatapathError('lock-failed', `lock ${path}: ${err.trim() || `not taken in ${secs} s`}`);
  try {
    return await fn();
  } finally {
    child.stdin.end();
    await exited;
  }
}
