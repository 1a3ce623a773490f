// A private etcd for tests and `seawall test --live`: Debian's etcd-server on free loopback ports
// with a temporary data directory, stopped (and its directory removed) by stop(). Never a system
// etcd: other engineers' tests run on this machine at the same time.

import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SeawallError } from '../../core/errors.ts';

export interface TestEtcd {
  /** `http://127.0.0.1:PORT`, the client URL. */
  readonly url: string;
  /** `etcd://127.0.0.1:PORT`, as `--kvstore` takes it. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** Stops the process (SIGTERM) but keeps the data: start() brings the same store back. */
  pause(): Promise<void>;
  /** Starts it again on the same ports and data (after pause()). */
  resume(): Promise<void>;
  /** Stops it and removes its data directory. Idempotent. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick, released before etcd binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The etcd binary (Debian's etcd-server), or undefined when it is not installed. */
export function etcdBinary(): string | undefined {
  for (const p of ['/usr/bin/etcd', '/usr/local/bin/etcd']) if (existsSync(p)) return p;
  return undefined;
}

async function waitHealthy(url: string, proc: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null)
      throw new SeawallError('etcd-start', `etcd exited with ${proc.exitCode}: ${last}`);
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new SeawallError('etcd-start', `etcd at ${url} not healthy after ${timeoutMs} ms (${last})`);
}

/**
 * Where a private etcd keeps its data: tmpfs (/dev/shm) when there is one. The store is thrown
 * away with the test, and every etcd write waits for its WAL fsync: on a disk shared with other
 * tests' I/O that was most of a pod join's propagation time (the kvstore bench's `put acked`).
 * SEAWALL_ETCD_DATA_PARENT chooses another place (the bench's on-disk baseline).
 */
export function etcdDataParent(): string {
  const env = process.env.SEAWALL_ETCD_DATA_PARENT;
  if (env !== undefined && env !== '') return env;
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

/** Starts a private etcd; rejects (with the process gone) when it does not become healthy. */
export async function startEtcd(opts: { timeoutMs?: number } = {}): Promise<TestEtcd> {
  const bin = etcdBinary();
  if (bin === undefined)
    throw new SeawallError('etcd-missing', 'etcd not installed (Debian: apt-get install etcd-server)');
  const dataDir = mkdtempSync(join(etcdDataParent(), 'seawall-etcd-'));
  const clientPort = await freePort();
  const peerPort = await freePort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let proc: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const p = spawn(
      bin,
      [
        '--name',
        'seawall-test',
        '--data-dir',
        dataDir,
        '--listen-client-urls',
        url,
        '--advertise-client-urls',
        url,
        '--listen-peer-urls',
        peer,
        '--initial-advertise-peer-urls',
        peer,
        '--initial-cluster',
        `seawall-test=${peer}`,
        '--log-level',
        'error',
        '--logger',
        'zap',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    proc = p;
    try {
      await waitHealthy(url, p, opts.timeoutMs ?? 20_000);
    } catch (e) {
      await kill(p);
      throw e;
    }
  };
  const kill = (p: ChildProcess | undefined): Promise<void> =>
    new Promise((resolve) => {
      if (p === undefined || p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGTERM');
      setTimeout(() => p.kill('SIGKILL'), 5000).unref();
    });
  try {
    await launch();
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  let stopped = false;
  return {
    url,
    endpoint: `etcd://127.0.0.1:${clientPort}`,
    dataDir,
    pause: () => kill(proc),
    resume: async () => {
      if (stopped) throw new SeawallError('etcd-stopped', 'etcd was stopped');
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await kill(proc);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
