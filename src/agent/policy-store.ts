// The agent's policy directory as a store of last good versions. A change is applied only once
// the file has been stable: the same content (sha256) on two reads at least `stableMs` apart. An
// editor's truncate-then-write, a half-copied file or a file removed and written back never
// reaches the kernel in between (an empty file is valid with zero policies: applying it would
// open the pod). A file that does not validate keeps its last good version; so does a file that
// cannot be read (FIFO, too large) and a store that cannot be read at all. Removing a file is a
// change like any other: applied when it is still gone after `stableMs`.

import { loadPolicyBytes } from '../policy-api/load.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import { contentHash, type PolicyDirRead, readPolicyDir } from './policy-dir.ts';

export const DEFAULT_STABLE_MS = 300;

export interface PendingChange {
  file: string;
  change: 'added' | 'modified' | 'removed';
  /** When this content (or absence) was first seen (ms since the epoch). */
  since: number;
}

export interface ScanResult {
  /** The set of good versions changed: the engine needs an update. */
  changed: boolean;
  /** Differences this scan saw first (a new pending change, or a pending one that changed again). */
  found: number;
  /** The store could not be read; nothing changed. */
  error?: string;
}

interface Good {
  hash: string;
  policies: PolicyObject[];
  text: string;
}

export function policyKey(p: PolicyObject): string {
  return `${p.kind}/${p.metadata.namespace ?? ''}/${p.metadata.name}`;
}

export class PolicyStore {
  private readonly good = new Map<string, Good>();
  private readonly invalid = new Map<string, { hash: string; issues: string[] }>();
  private skipped = new Map<string, string>();
  private readonly pending = new Map<string, { hash: string | null; since: number }>();
  /** Last good texts an earlier run saved (the state file): used while a file is bad or unsettled. */
  private readonly saved = new Map<string, string>();
  /** Directories the last read walked. */
  dirs: string[] = [];
  storeError: string | undefined;

  constructor(
    readonly root: string,
    private readonly opts: {
      stableMs?: number;
      maxBytes?: number;
      log?: (line: string) => void;
      now?: () => number;
      read?: (root: string) => PolicyDirRead;
    } = {},
  ) {}

  get stableMs(): number {
    return this.opts.stableMs ?? DEFAULT_STABLE_MS;
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private log(l: string): void {
    this.opts.log?.(l);
  }

  /** Last good texts of an earlier run (after a restart). */
  restore(texts: Record<string, string>): void {
    for (const [f, t] of Object.entries(texts)) if (typeof t === 'string') this.saved.set(f, t);
  }

  /**
   * Reads the store and applies what is stable. `immediate`: apply what is read now, without
   * waiting for stability (an explicit reload).
   */
  scan(opts: { immediate?: boolean } = {}): ScanResult {
    let read: PolicyDirRead;
    try {
      const max = this.opts.maxBytes;
      read = (this.opts.read ?? ((r) => readPolicyDir(r, max !== undefined ? { maxBytes: max } : {})))(
        this.root,
      );
    } catch (e) {
      // A store that cannot be read (moved away while being replaced, permissions) is not an
      // empty store: removing every policy would open every endpoint.
      const msg = `cannot read ${this.root} (${(e as Error).message}); the last good state stays`;
      if (this.storeError !== msg) this.log(msg);
      this.storeError = msg;
      return { changed: false, found: 0, error: msg };
    }
    this.storeError = undefined;
    this.dirs = read.dirs;
    const now = this.now();
    let changed = false;
    let found = 0;
    const seen = new Set<string>();
    const skipped = new Map<string, string>();
    for (const s of read.skipped) {
      // a file that cannot be read keeps its last good version
      seen.add(s.path);
      skipped.set(s.path, s.reason);
      if (!this.skipped.has(s.path))
        this.log(`${s.path}: skipped (${s.reason}); its last good version stays`);
    }
    this.skipped = skipped;
    const settled = (file: string, hash: string | null): boolean => {
      if (opts.immediate) {
        this.pending.delete(file);
        return true;
      }
      const p = this.pending.get(file);
      if (p === undefined || p.hash !== hash) {
        this.pending.set(file, { hash, since: now });
        found++;
        return false;
      }
      if (now - p.since < this.stableMs) return false;
      this.pending.delete(file);
      return true;
    };
    for (const f of read.files) {
      seen.add(f.path);
      if (this.good.get(f.path)?.hash === f.hash || this.invalid.get(f.path)?.hash === f.hash) {
        this.pending.delete(f.path); // back to what is applied (or already reported)
        continue;
      }
      if (!settled(f.path, f.hash)) continue;
      if (this.take(f.path, f.bytes, f.hash)) changed = true;
    }
    for (const file of [...this.good.keys(), ...this.invalid.keys()]) {
      if (seen.has(file)) continue;
      if (!settled(file, null)) continue;
      if (this.good.delete(file)) changed = true;
      this.invalid.delete(file);
      this.saved.delete(file);
    }
    for (const file of [...this.pending.keys()]) {
      // a new file that went again before it settled
      if (!seen.has(file) && !this.good.has(file) && !this.invalid.has(file)) this.pending.delete(file);
    }
    // after a restart: a file not settled yet, or bad, is enforced in its saved last good version
    for (const [file, text] of this.saved) {
      if (this.good.has(file) || !seen.has(file)) continue;
      const bytes = Buffer.from(text);
      const r = loadPolicyBytes(file, bytes, { lint: false });
      if (r.issues.some((i) => i.severity === 'error')) continue;
      this.good.set(file, { hash: contentHash(bytes), policies: r.policies, text });
      changed = true;
    }
    return { changed, found };
  }

  /** A settled content: validated, and the new good version when it is valid. */
  private take(file: string, bytes: Buffer, hash: string): boolean {
    const r = loadPolicyBytes(file, bytes, { lint: false });
    const errors = r.issues.filter((i) => i.severity === 'error');
    if (errors.length > 0) {
      const msgs = errors.map((i) => `${i.pos.line}:${i.pos.column} ${i.code}: ${i.message}`);
      this.invalid.set(file, { hash, issues: msgs });
      this.log(`${file}: invalid, skipped (last good state stays): ${msgs.join('; ')}`);
      return false;
    }
    this.invalid.delete(file);
    this.saved.delete(file);
    this.good.set(file, { hash, policies: r.policies, text: bytes.toString('utf8') });
    return true;
  }

  /** The policies of every file's good version, by key. */
  policies(): Map<string, PolicyObject> {
    const out = new Map<string, PolicyObject>();
    for (const g of this.good.values()) for (const p of g.policies) out.set(policyKey(p), p);
    return out;
  }

  lastGoodTexts(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [f, g] of this.good) out[f] = g.text;
    return out;
  }

  invalidFiles(): Array<{ file: string; issues: string[] }> {
    return [...this.invalid].map(([file, v]) => ({ file, issues: v.issues }));
  }

  skippedFiles(): Array<{ file: string; reason: string }> {
    return [...this.skipped].map(([file, reason]) => ({ file, reason }));
  }

  pendingChanges(): PendingChange[] {
    return [...this.pending].map(([file, p]) => ({
      file,
      change:
        p.hash === null ? 'removed' : this.good.has(file) || this.invalid.has(file) ? 'modified' : 'added',
      since: p.since,
    }));
  }

  /** When the earliest pending change can settle (ms since the epoch), if any is pending. */
  nextDue(): number | undefined {
    let due: number | undefined;
    for (const p of this.pending.values()) {
      const t = p.since + this.stableMs;
      if (due === undefined || t < due) due = t;
    }
    return due;
  }
}
