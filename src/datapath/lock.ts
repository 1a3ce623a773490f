// A lock between processes on one machine, for steps that several agents may run at once (two
// agents making one underlay). It is a flock(2) held by a `flock` child (-o: by it alone, not by
// the `cat` it runs): the kernel drops the lock when that child exits, and it exits when its `cat`
// sees our end of the pipe close, on release or when this process dies, so an agent killed while
// holding it never leaves a stale lock for the next one.
//
// The file may go with what it guards (removeLockFile, by its holder): a waiter then gets the lock
// of a file no longer linked, sees so in the child's open files, and takes the new file's instead.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatapathError } from './exec.ts';

interface Held {
  child: ChildProcess;
  exited: Promise<unknown>;
}

/** Runs `fn` while holding the exclusive lock on `path` (the file is made if missing). */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const file = join(realpathSync(dirname(path)), basename(path)); // as /proc shows it
  const end = Date.now() + timeoutMs;
  for (;;) {
    const held = await take(file, end - Date.now());
    try {
      if (linked(held.child.pid, file)) return await fn();
    } finally {
      held.child.stdin!.end();
      await held.exited;
    }
  }
}

/** Removes a lock's file; only its holder may (waiters then move to a new file). */
export function removeLockFile(path: string): void {
  rmSync(path, { force: true });
}

async function take(file: string, leftMs: number): Promise<Held> {
  const secs = String(Math.max(1, Math.ceil(leftMs / 1000)));
  const child = spawn(
    'flock',
    ['-x', '-o', '-w', secs, file, 'sh', '-c', 'echo locked; exec cat >/dev/null'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let err = '';
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', (e) => {
      err = `flock: ${e.message}`; // not installed (util-linux)
      resolve(null);
    });
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const locked = await new Promise<boolean>((resolve) => {
    child.stdout!.once('data', () => resolve(true));
    void exited.then(() => resolve(false));
  });
  if (!locked)
    throw new DatapathError('lock-failed', `lock ${file}: ${err.trim() || `not taken in ${secs} s`}`);
  return { child, exited };
}

/** Whether the file the child holds is still `file` (not removed since it opened it). */
function linked(pid: number | undefined, file: string): boolean {
  if (pid === undefined) return true;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return true; // no /proc to look at: as without removal
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target === file) return true;
    if (target === `${file} (deleted)`) return false;
  }
  return true;
}
