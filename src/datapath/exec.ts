// Running the tools the datapath drives (ip, nft, ping) with typed failures. Every command that
// touches networking names its namespace explicitly: nothing here runs in the machine's own.

import { spawn } from 'node:child_process';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import { SeawallError } from '../core/errors.ts';

/** A kernel-facing step failed: a command, the nft session, a socket, an agent request. */
export class DatapathError extends SeawallError {
  override name = 'DatapathError';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Commands are spawned from a worker thread. spawn() is synchronous until the child has exec'd
 * (libuv waits for it), several ms per `ip` under load, and a pod joining runs a dozen: on the
 * agent's own thread that held up everything else it does meanwhile, such as applying a remote
 * node's change (the kvstore propagation bench: issue 11). Results come back as messages; a worker
 * that fails or exits fails its pending commands, and the next command starts a new one.
 */
const SPAWNER = `
const { parentPort } = require('node:worker_threads');
const { spawn } = require('node:child_process');
parentPort.on('message', ({ id, cmd, args, input }) => {
  let p;
  try {
    p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message) });
    return;
  }
  const out = [];
  const err = [];
  let done = false;
  p.stdout.on('data', (d) => out.push(d));
  p.stderr.on('data', (d) => err.push(d));
  p.on('error', (e) => {
    if (!done) parentPort.postMessage({ id, error: e.message });
    done = true;
  });
  p.on('close', (code) => {
    if (!done) parentPort.postMessage({ id, code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    done = true;
  });
  p.stdin.on('error', () => {});
  p.stdin.end(input ?? '');
});
`;

interface Pending {
  cmd: string;
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

let spawner: Worker | undefined;
const pending = new Map<number, Pending>();
let seq = 0;

function spawnerWorker(): Worker {
  if (spawner !== undefined) return spawner;
  // no loader flags (the worker runs plain CommonJS) and the parent's live environment
  const w = new Worker(SPAWNER, { eval: true, execArgv: [], env: SHARE_ENV });
  w.unref(); // only pending commands keep the process alive
  w.on('message', (m: { id: number; code?: number; stdout?: string; stderr?: string; error?: string }) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (pending.size === 0) w.unref();
    if (m.error !== undefined) p.reject(new DatapathError('exec-failed', `${p.cmd}: ${m.error}`));
    else p.resolve({ code: m.code ?? 1, stdout: m.stdout ?? '', stderr: m.stderr ?? '' });
  });
  const fail = (why: string): void => {
    if (spawner === w) spawner = undefined;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(new DatapathError('exec-failed', `${p.cmd}: ${why}`));
    }
  };
  w.on('error', (e) => fail(`command runner failed: ${e.message}`));
  w.on('exit', (code) => fail(`command runner exited (${code})`));
  spawner = w;
  return w;
}

/** SEAWALL_EXEC_INLINE=1: spawn on the calling thread, as before (the bench's baseline). */
function runInline(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.on('error', (e) => reject(new DatapathError('exec-failed', `${cmd}: ${e.message}`)));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  if (process.env.SEAWALL_EXEC_INLINE === '1') return runInline(cmd, args, input);
  return new Promise((resolve, reject) => {
    const w = spawnerWorker();
    const id = ++seq;
    pending.set(id, { cmd, resolve, reject });
    w.ref();
    w.postMessage({ id, cmd, args, input });
  });
}

/** Runs and throws a DatapathError with the tool's message when it fails. */
export async function must(
  cmd: string,
  args: string[],
  input?: string,
  code = 'command-failed',
): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    throw new DatapathError(code, `${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return r.stdout;
}
