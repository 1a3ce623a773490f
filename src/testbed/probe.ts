// Drives probe workers (one per namespace) and ping: the live replay's servers and clients.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatapathError, run } from '../datapath/exec.ts';

const REPO = join(import.meta.dirname, '..', '..');
const WORKER = join(import.meta.dirname, 'probe-worker.ts');

export interface ProbeResult {
  passed: boolean;
  detail: string;
  ms: number;
}

export class ProbeWorker {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (v: Record<string, unknown>) => void>();
  private readonly ready: Promise<void>;
  private readonly listening = new Set<string>();
  private exited = false;

  constructor(readonly ns: string) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', WORKER], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let readyResolve: () => void = () => {};
    let readyReject: (e: Error) => void = () => {};
    this.ready = new Promise((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    // a write after the worker died must fail its call, not crash the runner with EPIPE
    this.proc.stdin!.on('error', () => {});
    this.proc.on('exit', (code) => {
      this.exited = true;
      readyReject(new DatapathError('probe-exited', `probe worker in ${ns} exited (${code})`));
      for (const w of this.waiting.values()) w({ ok: false, error: 'worker exited' });
      this.waiting.clear();
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.id === 0) {
        readyResolve();
        return;
      }
      const w = this.waiting.get(msg.id as number);
      if (w) {
        this.waiting.delete(msg.id as number);
        w(msg);
      }
    });
  }

  private async call(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    await this.ready;
    if (this.exited) return { ok: false, error: 'worker exited' };
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.proc.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  }

  async listen(proto: 'tcp' | 'udp', port: number): Promise<void> {
    const k = `${proto}/${port}`;
    if (this.listening.has(k)) return;
    this.listening.add(k);
    const r = await this.call({ op: 'listen', proto, port });
    if (r.ok !== true)
      throw new DatapathError('listen-failed', `listen ${k} in ${this.ns}: ${String(r.error)}`);
  }

  async connect(proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = 300): Promise<ProbeResult> {
    const r = await this.call({ op: 'connect', proto, host, port, timeoutMs });
    if (r.ok !== true) return { passed: false, detail: String(r.error), ms: 0 };
    return { passed: r.passed === true, detail: String(r.detail), ms: Number(r.ms) };
  }

  close(): void {
    this.proc.stdin?.end();
    this.proc.kill('SIGTERM');
  }
}

/** Workers by namespace, started on first use. */
export class ProbePool {
  private readonly workers = new Map<string, ProbeWorker>();

  get(ns: string): ProbeWorker {
    let w = this.workers.get(ns);
    if (!w) {
      w = new ProbeWorker(ns);
      this.workers.set(ns, w);
    }
    return w;
  }

  closeAll(): void {
    for (const w of this.workers.values()) w.close();
    this.workers.clear();
  }
}

/** One ICMP echo (the kernel of the destination answers); other ICMP types are not sendable. */
export async function ping(ns: string, host: string, timeoutMs = 500): Promise<ProbeResult> {
  const t0 = performance.now();
  const secs = (Math.max(100, timeoutMs) / 1000).toFixed(1);
  const r = await run('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', String(secs), host]);
  return {
    passed: r.code === 0,
    detail: r.code === 0 ? 'echo reply' : 'no reply',
    ms: performance.now() - t0,
  };
}
