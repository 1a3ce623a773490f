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
}

export class NftApplier {
  private current: CompiledTable = emptyTable();
  private installed = false;
  private session: NftSession | undefined;

  constructor(readonly netns: string) {}

  get state(): CompiledTable {
    return this.current;
  }

  private async transact(script: string, viaSession = false): Promise<void> {
    if (viaSession && script.length <= SESSION_MAX_BYTES) {
      if (!this.session?.alive) this.session = new NftSession(this.netns);
      try {
        await this.session.transact(script);
        return;
      } catch (e) {
        // An nft error is final. A session that died falls back to a fresh process: nft commits
        // atomically, so the script either fully happened (then the retry reports an error and
        // the caller's next full apply repairs) or not at all.
        if (!(e instanceof DatapathError) || e.code !== 'nft-session-dead') throw e;
      }
    }
    const r = await run('ip', ['netns', 'exec', this.netns, 'nft', '-f', '-'], script);
    if (r.code !== 0) {
      throw new DatapathError(
        'nft-apply-failed',
        `nft transaction failed (nothing changed): ${r.stderr.trim()}`,
      );
    }
  }

  /** Replaces our table (adopting a crashed run's leftovers) in one transaction. */
  async applyFull(t: CompiledTable): Promise<ApplyStats> {
    const t0 = performance.now();
    const script = renderFull(t);
    await this.transact(script);
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
    await this.transact(script, true);
    this.current = t;
    return { kind: 'delta', lines: countLines(script), ms: performance.now() - t0 };
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

function countLines(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}
