// The ulogd2 process of one node namespace and the tail of its JSON file. The tailer survives
// partial lines, truncation, rotation and ulogd restarts; malformed lines are counted, never thrown.

import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { SeawallError } from '../core/errors.ts';
import {
  DropDeduper,
  findUlogdPluginDir,
  type KernelEvent,
  LineSplitter,
  type ParseErrorCode,
  parseUlogdLine,
  ulogdConfig,
} from '../flow/nflog.ts';

export class UlogdError extends SeawallError<
  'ulogd-missing' | 'ulogd-json-plugin-missing' | 'ulogd-start-failed'
> {
  override name = 'UlogdError';
}

export interface TailStats {
  lines: number;
  events: number;
  /** Lines skipped, by reason (foreign prefixes included: they are not ours, not errors). */
  skipped: Partial<Record<ParseErrorCode | 'oversized', number>>;
  suppressedDrops: number;
  truncations: number;
  reopens: number;
}

export interface TailOptions {
  /** Read existing content first ('start') or only what is appended from now on ('end'). */
  from?: 'start' | 'end';
  pollMs?: number;
  /** De-duplication window for identical drops; 0 = a record per packet. */
  dedupWindowMs?: number;
  /** Called for each admitted event. */
  onEvent: (e: KernelEvent) => void;
}

/** Follows a JSON-lines file by polling (cheap at this rate, and immune to missed inotify events). */
export class JsonLineTailer {
  private fd: number | undefined;
  private ino = -1;
  private offset = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly splitter = new LineSplitter();
  private readonly dedup: DropDeduper;
  private readonly buf = Buffer.alloc(64 * 1024);
  private readonly decoder = new TextDecoder('utf-8');
  private first = true;
  readonly stats: TailStats = {
    lines: 0,
    events: 0,
    skipped: {},
    suppressedDrops: 0,
    truncations: 0,
    reopens: 0,
  };

  constructor(
    readonly path: string,
    private readonly opts: TailOptions,
  ) {
    this.dedup = new DropDeduper(opts.dedupWindowMs ?? 1000);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.poll();
    this.timer = setInterval(() => this.poll(), this.opts.pollMs ?? 50);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.poll();
    this.close();
  }

  /** Reads whatever is new. Public so tests and shutdown can drain synchronously. */
  poll(): void {
    let st: { ino: number; size: number } | undefined;
    try {
      st = statSync(this.path);
    } catch {
      st = undefined;
    }
    if (this.fd !== undefined && st === undefined) {
      // Renamed away and not yet recreated: ulogd may still write to the old file; keep reading it.
      this.drain();
      return;
    }
    if (this.fd !== undefined && st !== undefined && st.ino !== this.ino) {
      // A new file at the path (rotation done, or ulogd restarted): finish the old one, then switch.
      this.drain();
      this.close();
      this.splitter.reset();
    }
    if (this.fd === undefined) {
      if (st === undefined) return;
      try {
        this.fd = openSync(this.path, 'r');
      } catch {
        return;
      }
      const fst = fstatSync(this.fd);
      this.ino = fst.ino;
      this.offset = this.first && this.opts.from !== 'start' ? fst.size : 0;
      if (!this.first) this.stats.reopens++;
      this.first = false;
    }
    this.drain();
  }

  private drain(): void {
    if (this.fd === undefined) return;
    let size: number;
    try {
      size = fstatSync(this.fd).size;
    } catch {
      return;
    }
    if (size < this.offset) {
      this.stats.truncations++;
      this.offset = 0;
      this.splitter.reset();
    }
    while (this.offset < size) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      const text = this.decoder.decode(this.buf.subarray(0, n), { stream: true });
      for (const line of this.splitter.push(text)) this.handle(line);
    }
    if (this.splitter.oversized > 0) this.stats.skipped.oversized = this.splitter.oversized;
  }

  private handle(line: string): void {
    this.stats.lines++;
    const r = parseUlogdLine(line);
    if (!r.ok) {
      this.stats.skipped[r.code] = (this.stats.skipped[r.code] ?? 0) + 1;
      return;
    }
    if (!this.dedup.admit(r.event)) {
      this.stats.suppressedDrops = this.dedup.suppressed;
      return;
    }
    this.stats.events++;
    try {
      this.opts.onEvent(r.event);
    } catch {
      // A consumer's bug must not stop the event path.
    }
  }

  private close(): void {
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    this.fd = undefined;
  }
}

export interface UlogdOptions {
  /** Network namespace to run in (the node's); undefined = the current one (tests only). */
  netns?: string;
  /** Directory for ulogd.conf, the JSON file, its log and pid file. */
  runDir: string;
  group?: number;
  /** Restart ulogd when it dies, with backoff (ms), up to this many times in a row. */
  maxRestarts?: number;
  ulogdPath?: string;
  pluginDir?: string;
}

/** One ulogd2 per node namespace: NFLOG group → JSON lines in `<runDir>/flows.json`. */
export class UlogdProcess extends EventEmitter {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restarts = 0;
  readonly confPath: string;
  readonly jsonPath: string;
  readonly logPath: string;

  constructor(private readonly opts: UlogdOptions) {
    super();
    this.confPath = join(opts.runDir, 'ulogd.conf');
    this.jsonPath = join(opts.runDir, 'flows.json');
    this.logPath = join(opts.runDir, 'ulogd.log');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Writes the config and starts ulogd; resolves once it is running (or rejects with UlogdError). */
  async start(): Promise<void> {
    const pluginDir = this.opts.pluginDir ?? findUlogdPluginDir();
    if (pluginDir === undefined) {
      throw new UlogdError(
        'ulogd-json-plugin-missing',
        'ulogd2 with its JSON output plugin is needed (Debian: apt-get install ulogd2 ulogd2-json)',
      );
    }
    mkdirSync(this.opts.runDir, { recursive: true });
    const cfg: Parameters<typeof ulogdConfig>[0] = {
      pluginDir,
      jsonFile: this.jsonPath,
      logFile: this.logPath,
    };
    if (this.opts.group !== undefined) cfg.group = this.opts.group;
    writeFileSync(this.confPath, ulogdConfig(cfg), { mode: 0o600 });
    this.stopping = false;
    await this.spawnOnce();
  }

  private spawnOnce(): Promise<void> {
    const ulogd = this.opts.ulogdPath ?? 'ulogd';
    const [cmd, args] =
      this.opts.netns !== undefined
        ? ['ip', ['netns', 'exec', this.opts.netns, ulogd, '-c', this.confPath]]
        : [ulogd, ['-c', this.confPath]];
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      this.child = child;
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      // ulogd has no readiness signal; alive after a short grace period counts as started.
      const grace = setTimeout(() => {
        child.off('exit', early);
        child.on('exit', (code, sig) => this.onExit(code, sig, stderr));
        resolve();
      }, 300);
      const early = (code: number | null, sig: NodeJS.Signals | null): void => {
        clearTimeout(grace);
        this.child = undefined;
        reject(
          new UlogdError(
            'ulogd-start-failed',
            `ulogd exited at start (${code ?? sig}): ${stderr.trim() || `see ${this.logPath}`}`,
          ),
        );
      };
      child.once('exit', early);
      child.once('error', (e) => {
        clearTimeout(grace);
        child.off('exit', early);
        this.child = undefined;
        reject(new UlogdError('ulogd-missing', `cannot run ${cmd}: ${e.message}`));
      });
    });
  }

  private onExit(code: number | null, sig: NodeJS.Signals | null, stderr: string): void {
    this.child = undefined;
    if (this.stopping) return;
    this.emit('died', { code, signal: sig, stderr });
    const max = this.opts.maxRestarts ?? 5;
    if (this.restarts >= max) {
      this.emit('gave-up');
      return;
    }
    const delay = Math.min(5000, 100 * 2 ** this.restarts++);
    setTimeout(() => {
      if (this.stopping) return;
      this.spawnOnce().then(
        () => {
          this.restarts = 0;
          this.emit('restarted');
        },
        (e) => this.emit('died', { code: null, signal: null, stderr: String(e) }),
      );
    }, delay).unref();
  }

  /**
   * Rotates the JSON file without losing lines: rename, then SIGHUP makes ulogd reopen its path.
   * The tailer finishes the renamed file (it keeps its descriptor) before following the new one.
   */
  rotate(): string | undefined {
    if (this.child?.pid === undefined) return undefined;
    const old = `${this.jsonPath}.1`;
    try {
      renameSync(this.jsonPath, old);
    } catch {
      return undefined;
    }
    this.child.kill('SIGHUP');
    return old;
  }

  /** Stops our ulogd (SIGTERM, then SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopping = true;
    const child = this.child;
    if (child === undefined || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      child.kill('SIGTERM');
    });
    this.child = undefined;
  }
}

/**
 * Stops the ulogd2 a SIGKILLed agent left running in the node namespace (it would hold the NFLOG
 * group, so a new one could not bind it). Only a process whose command line names our config.
 */
export function stopStaleUlogd(runDir: string): number | undefined {
  const pidFile = join(runDir, 'ulogd.pid');
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  rmSync(pidFile, { force: true });
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!cmd.some((a) => a.endsWith('ulogd')) || !cmd.includes(join(runDir, 'ulogd.conf'))) return undefined;
    process.kill(pid, 'SIGTERM');
    return pid;
  } catch {
    return undefined;
  }
}
