// Applies compiled tables to the kernel as atomic transactions inside the node namespace: deltas
// through a long-lived `nft -i` (no process start per change, see session.ts), full tables and
// very large deltas through `nft -f -`. The previous compiled state lives here, in memory: deltas
// are computed against it, never against a listing of the kernel's (possibly huge) sets.

import { DatapathError, must, run } from '../exec.ts';
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

export interface NftApplierOptions {
  /** Default DEFAULT_SESSION_TIMEOUT_MS; 0 = wait forever. */
  sessionTimeoutMs?: number;
}

/** How scripts reach the kernel; replaced in unit tests. */
export interface NftTransport {
  /** A long-lived session (nft -i); `alive` false once it died. */
  session(netns: string): { readonly alive: boolean; transact(script: string): Promise<void>; close(): void };
  /** One `nft -f -` process: one atomic transaction. */
  runScript(netns: string, script: string): Promise<void>;
}

export const kernelTransport: NftTransport = {
  session: (netns) => new NftSession(netns),
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
      if (!this.session?.alive) this.session = this.transport.session(this.netns);
      try {
        await this.transactWithTimeout(this.session, script);
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
        if (this.session === session) this.session = undefined;
        reject(new DatapathError('nft-session-timeout', `nft -i did not answer within ${ms} ms; killed`));
      }, ms);
    });
    job.catch(() => {}); // after a timeout its rejection (the kill) has no one waiting
    return Promise.race([job, timeout]).finally(() => clearTimeout(timer));
  }

  /** Stops the `nft -i` session (before the namespace goes: it would keep it alive). */
  close(): void {
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
