// Applies compiled tables to the kernel as atomic transactions inside the node namespace: deltas
// through a long-lived `nft -i` (no process start per change, see session.ts), full tables and
// very large deltas through `nft -f -`. The previous compiled state lives here, in memory: deltas
// are computed against it, never against a listing of the kernel's (possibly huge) sets.

import { DatapathError, must, run } from '../exec.ts';
import { netnsExists } from '../netns.ts';
import { type CompiledTable, emptyTable, FAMILY, renderDelta, renderFull, TABLE } from './compile.ts';
import { NftSession, SESSION_MAX_BYTES } from './session.ts';

export interface ApplyStats {
  kind: 'full' | 'delta' | 'none';
  lines: number;
  ms: number;
  /** Why a delta became a full replacement: the session died or did not answer in time. */
  recovered?: 'session-died' | 'session-timeout';
}

/** How long a delta may wait for `nft -i`'s answer before the session is killed. */
export const DEFAULT_SESSION_TIMEOUT_MS = 5000;
/** A session that died by itself is restarted after this (doubling up to RESTART_MAX_MS). */
export const SESSION_RESTART_MS = 50;
const SESSION_RESTART_MAX_MS = 5000;

export interface NftApplierOptions {
  /** Default DEFAULT_SESSION_TIMEOUT_MS; 0 = wait forever. */
  sessionTimeoutMs?: number;
}

/** How scripts reach the kernel; replaced in unit tests. */
export interface NftTransport {
  /** A long-lived session (nft -i); `alive` false once it died; `onExit` when it died by itself. */
  session(
    netns: string,
    onExit?: () => void,
  ): { readonly alive: boolean; transact(script: string): Promise<void>; close(): void };
  /** One `nft -f -` process: one atomic transaction. */
  runScript(netns: string, script: string): Promise<void>;
  /** Whether a session that died may be restarted (the namespace still exists); default yes. */
  canRestart?(netns: string): boolean;
}

export const kernelTransport: NftTransport = {
  session: (netns, onExit) => new NftSession(netns, onExit),
  canRestart: netnsExists,
  async runScript(netns, script) {
    const r = await run('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], script);
    if (r.code !== 0) {
      throw new DatapathError(
        'nft-apply-failed',
        `nft transaction failed (nothing changed): ${r.stderr.trim()}`,
      );
    }
  },
};

export class NftApplier {
  private current: CompiledTable = emptyTable();
  private installed = false;
  private session: ReturnType<NftTransport['session']> | undefined;
  /** warm() was called and close() not since: a session that dies is restarted. */
  private keepWarm = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelay = SESSION_RESTART_MS;
  private sessionsStarted = 0;
  /** Mutable so that the owner of a NodeDatapath can set it after construction. */
  sessionTimeoutMs: number;

  constructor(
    readonly netns: string,
    private readonly transport: NftTransport = kernelTransport,
    opts: NftApplierOptions = {},
  ) {
    this.sessionTimeoutMs = opts.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  }

  get state(): CompiledTable {
    return this.current;
  }

  /** Replaces our table (adopting a crashed run's leftovers) in one transaction. */
  async applyFull(t: CompiledTable): Promise<ApplyStats> {
    const t0 = performance.now();
    const script = renderFull(t);
    await this.transport.runScript(this.netns, script);
    this.current = t;
    this.installed = true;
    return { kind: 'full', lines: countLines(script), ms: performance.now() - t0 };
  }

  /** Moves the kernel from the last applied state to `t` with a delta transaction. */
  async apply(t: CompiledTable): Promise<ApplyStats> {
    if (!this.installed) return this.applyFull(t);
    const t0 = performance.now();
    const script = renderDelta(this.current, t);
    if (script === '') {
      this.current = t;
      return { kind: 'none', lines: 0, ms: performance.now() - t0 };
    }
    if (script.length > SESSION_MAX_BYTES) {
      await this.transport.runScript(this.netns, script);
    } else {
      // Normally warm (see warm()); if not, the delta waits for nft to start: slower, never open.
      const session = this.ensureSession();
      try {
        await this.transactWithTimeout(session, script);
      } catch (e) {
        if (!(e instanceof DatapathError) || !SESSION_LOST.has(e.code)) throw e;
        // nft died (or hung and was killed) with the delta sent: whether it committed is unknown,
        // so the delta must not be sent again (from the other state it may fail, or half-apply
        // nothing useful). A full transaction replaces the table from whatever state it is in,
        // atomically: right either way.
        const full = await this.applyFull(t);
        const recovered = e.code === 'nft-session-timeout' ? 'session-timeout' : 'session-died';
        return { ...full, ms: performance.now() - t0, recovered };
      }
    }
    this.current = t;
    return { kind: 'delta', lines: countLines(script), ms: performance.now() - t0 };
  }

  /**
   * Starts the `nft -i` session and waits for its first (empty) transaction, so that no delta
   * ever waits for nft to start (68–240 ms: an FQDN answer would pass its 100 ms cap). From now
   * on a session that dies is restarted at once (backing off while it keeps dying) and warmed.
   * Rejects when nft does not answer; deltas then still go through (a new session, or a full
   * replacement): warmth is speed, never enforcement.
   */
  async warm(): Promise<void> {
    this.keepWarm = true;
    const s = this.ensureSession();
    await this.transactWithTimeout(s, '');
    this.restartDelay = SESSION_RESTART_MS;
  }

  /** Sessions started after the first (one died, or hung and was killed). */
  get sessionRestarts(): number {
    return Math.max(0, this.sessionsStarted - 1);
  }

  private ensureSession(): ReturnType<NftTransport['session']> {
    if (this.session?.alive) return this.session;
    this.sessionsStarted++;
    const s = this.transport.session(this.netns, () => {
      if (this.session === s) this.scheduleRestart();
    });
    this.session = s;
    return s;
  }

  private scheduleRestart(): void {
    if (!this.keepWarm || this.restartTimer !== undefined) return;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, SESSION_RESTART_MAX_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.keepWarm || this.session?.alive) return;
      // the namespace went without close() (a crash test, a cleanup): nothing to keep warm
      if (this.transport.canRestart?.(this.netns) === false) {
        this.keepWarm = false;
        return;
      }
      this.warm().catch(() => {}); // its own exit schedules the next try
    }, delay);
    this.restartTimer.unref();
  }

  /**
   * A hung nft would hold every later change behind it (the session is a queue): past the
   * timeout the session is killed, and the next one starts fresh.
   */
  private transactWithTimeout(session: ReturnType<NftTransport['session']>, script: string): Promise<void> {
    const ms = this.sessionTimeoutMs;
    const job = session.transact(script);
    if (!(ms > 0)) return job;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        session.close();
        if (this.session === session) {
          this.session = undefined;
          this.scheduleRestart(); // close() reports no exit
        }
        reject(new DatapathError('nft-session-timeout', `nft -i did not answer within ${ms} ms; killed`));
      }, ms);
    });
    job.catch(() => {}); // after a timeout its rejection (the kill) has no one waiting
    return Promise.race([job, timeout]).finally(() => clearTimeout(timer));
  }

  /** Stops the `nft -i` session (before the namespace goes: it would keep it alive). */
  close(): void {
    this.keepWarm = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.session?.close();
    this.session = undefined;
  }

  /** Removes the table (clean exit). */
  async remove(): Promise<void> {
    this.close();
    await removeTable(this.netns);
    this.installed = false;
    this.current = emptyTable();
  }
}

export async function removeTable(netns: string): Promise<void> {
  // `add` first makes the delete succeed whether or not the table exists.
  await must(
    'ip',
    ['netns', 'exec', netns, 'nft', '-f', '-'],
    `add table ${FAMILY} ${TABLE}\ndelete table ${FAMILY} ${TABLE}\n`,
  );
}

/** Errors after which the delta's outcome is unknown: recover with a full replacement. */
const SESSION_LOST = new Set(['nft-session-dead', 'nft-session-timeout']);

function countLines(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}
