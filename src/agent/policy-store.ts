// The agent's policy directory as a store of last good versions. A change is applied only once
// the file has been stable: the same content (sha256) on two reads at least `stableMs` apart. An
// editor's truncate-then-write, a half-copied file or a file removed and written back never
// reaches the kernel in between (an empty file is valid with zero policies: applying it would
// open the pod). A file that does not validate keeps its last good version; so does a file that
// cannot be read (FIFO, too large) and a store that cannot be read at all. Removing a file is a
// change like any other: applied when it is still gone after `stableMs`.

//
// A scan stats every file and re-reads only those whose inode, size or times changed (or were
// changed too close to the last read to be sure), so a resync of 10,000 unchanged files reads
// none. `scanAsync` does the same work in slices, yielding to the event loop between them, so the
// agent keeps answering `status` (with the scan's progress) while it loads thousands of files.
// A partial scan (`paths`) looks only at the files watch events named, so one edit among 10,000
// files costs one read, not 10,000 stats; the agent's periodic full scan catches lost events.

import { lstatSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadPolicyBytes } from '../policy-api/load.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import {
  contentHash,
  POLICY_FILE,
  type PolicyDirRead,
  type PolicyFileRead,
  readPolicyFile,
  walkPolicyDir,
} from './policy-dir.ts';

export const DEFAULT_STABLE_MS = 300;

export interface PendingChange {
  file: string;
  change: 'added' | 'modified' | 'removed';
  /** When this content (or absence) was first seen (ms since the epoch). */
  since: number;
}

export interface ScanOptions {
  /** Apply what is read now, without waiting for stability (an explicit reload). */
  immediate?: boolean;
  /**
   * Only these files (paths as the walk names them: from `pathsFor` or `pendingFiles`), as watch
   * events named them; a named file that is gone is removed. Absent: the whole store is walked.
   */
  paths?: readonly string[];
}

export interface ScanResult {
  /** The set of good versions changed: the engine needs an update. */
  changed: boolean;
  /** Differences this scan saw first (a new pending change, or a pending one that changed again). */
  found: number;
  /** The store could not be read; nothing changed. */
  error?: string;
}

/** A scan in progress (shown by `seawall agent status`). */
export interface ScanProgress {
  /** Files the scan looks at. */
  files: number;
  /** Files done (read, or known unchanged, and validated when they changed). */
  done: number;
  /** When the scan began (ms since the epoch). */
  since: number;
}

/** How long one slice of an asynchronous scan runs before it yields to the event loop. */
export const SCAN_SLICE_MS = 20;

/** A file changed within this long of its read may change again unseen in the same time stamp. */
export const RACY_MS = 2000;

interface FileStat {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  hash: string;
  /** The file's mtime was far enough before the read that an equal stat means equal content. */
  trusted: boolean;
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
  /** Changes waiting to settle; with the bytes read, so settling needs no second read. */
  private readonly pending = new Map<string, { hash: string | null; since: number; bytes?: Buffer }>();
  /** Last good texts an earlier run saved (the state file): used while a file is bad or unsettled. */
  private readonly saved = new Map<string, string>();
  /** Directories the last read walked. */
  dirs: string[] = [];
  /** The last walk's directories: real path → the path it reached them by (for watch events). */
  private walked: Map<string, string> | undefined;
  storeError: string | undefined;
  /** What the last read of each file saw: an unchanged stat is not read again. */
  private readonly stats = new Map<string, FileStat>();
  /** Files read so far (an unchanged, settled file is not read again). */
  reads = 0;
  private running: ScanProgress | undefined;
  /** Asynchronous scans run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

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

  /** The scan in progress, if any. */
  progress(): ScanProgress | undefined {
    return this.running === undefined ? undefined : { ...this.running };
  }

  /**
   * Reads the store and applies what is stable. `immediate`: apply what is read now, without
   * waiting for stability (an explicit reload).
   */
  scan(opts: ScanOptions = {}): ScanResult {
    const steps = this.scanSteps(opts);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** scan() in slices of `sliceMs`, yielding to the event loop between them; one at a time. */
  scanAsync(opts: ScanOptions & { sliceMs?: number } = {}): Promise<ScanResult> {
    const slice = opts.sliceMs ?? SCAN_SLICE_MS;
    const run = async (): Promise<ScanResult> => {
      const steps = this.scanSteps(opts);
      let t = performance.now();
      for (;;) {
        const r = steps.next();
        if (r.done) return r.value;
        if (performance.now() - t >= slice) {
          await new Promise((resolve) => setImmediate(resolve));
          t = performance.now();
        }
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  /** One file: from the stat cache when its stat is unchanged, else read (and remembered). */
  private readOne(
    path: string,
  ): PolicyFileRead | { path: string; reason: string } | { path: string; hash: string } {
    let st: Stats | undefined;
    try {
      st = statSync(path, { throwIfNoEntry: false });
    } catch {
      // the read below says why
    }
    const file = st?.isFile() === true ? st : undefined;
    if (file !== undefined) {
      const k = this.stats.get(path);
      if (
        k?.trusted &&
        k.ino === file.ino &&
        k.size === file.size &&
        k.mtimeMs === file.mtimeMs &&
        k.ctimeMs === file.ctimeMs
      )
        return { path, hash: k.hash };
    }
    const max = this.opts.maxBytes;
    const r = readPolicyFile(path, max);
    this.reads++;
    if ('bytes' in r && file !== undefined) {
      const { ino, size, mtimeMs, ctimeMs } = file;
      const trusted = Math.max(mtimeMs, ctimeMs) < Date.now() - RACY_MS;
      this.stats.set(path, { ino, size, mtimeMs, ctimeMs, hash: r.hash, trusted });
    } else this.stats.delete(path);
    return r;
  }

  private *scanSteps(opts: ScanOptions): Generator<void, ScanResult> {
    let read: PolicyDirRead | undefined;
    let walk: { paths: readonly string[]; skipped: Array<{ path: string; reason: string }> };
    const partial = opts.paths !== undefined;
    if (opts.paths !== undefined) {
      // Only the files watch events named: the rest of the store is as the last scan left it.
      walk = { paths: [...new Set(opts.paths)], skipped: [] };
    } else {
      try {
        if (this.opts.read !== undefined) {
          read = this.opts.read(this.root);
          walk = { paths: read.files.map((f) => f.path), skipped: read.skipped };
          this.dirs = read.dirs;
          this.walked = undefined;
        } else {
          const w = walkPolicyDir(this.root);
          walk = w;
          this.dirs = w.dirs;
          this.walked = w.walked;
        }
      } catch (e) {
        // A store that cannot be read (moved away while being replaced, permissions) is not an
        // empty store: removing every policy would open every endpoint.
        const msg = `cannot read ${this.root} (${(e as Error).message}); the last good state stays`;
        if (this.storeError !== msg) this.log(msg);
        this.storeError = msg;
        return { changed: false, found: 0, error: msg };
      }
      this.storeError = undefined;
    }
    const now = this.now();
    let changed = false;
    let found = 0;
    const seen = new Set<string>();
    /** Named by a partial scan and gone: removed (a full scan sees that as not walked). */
    const gone = new Set<string>();
    const before = this.skipped;
    const skipped = partial ? new Map(before) : new Map<string, string>();
    const note = (s: { path: string; reason: string }): void => {
      // a file that cannot be read keeps its last good version
      seen.add(s.path);
      skipped.set(s.path, s.reason);
      if (!before.has(s.path)) this.log(`${s.path}: skipped (${s.reason}); its last good version stays`);
    };
    for (const s of walk.skipped) note(s);
    const settled = (file: string, hash: string | null, bytes?: Buffer): boolean => {
      if (opts.immediate) {
        this.pending.delete(file);
        return true;
      }
      const p = this.pending.get(file);
      if (p === undefined || p.hash !== hash) {
        this.pending.set(file, bytes === undefined ? { hash, since: now } : { hash, since: now, bytes });
        found++;
        return false;
      }
      if (now - p.since < this.stableMs) return false;
      this.pending.delete(file);
      return true;
    };
    const progress: ScanProgress = { files: walk.paths.length, done: 0, since: Date.now() };
    this.running = progress;
    try {
      for (let i = 0; i < walk.paths.length; i++) {
        const path = walk.paths[i]!;
        if (partial) {
          skipped.delete(path);
          if (lstatSync(path, { throwIfNoEntry: false }) === undefined) {
            gone.add(path);
            continue;
          }
          this.stats.delete(path); // an event named it: read it, whatever its stat says
        }
        let f: ReturnType<PolicyStore['readOne']> = read !== undefined ? read.files[i]! : this.readOne(path);
        progress.done = i + 1;
        yield;
        if ('reason' in f) {
          note(f);
          continue;
        }
        seen.add(f.path);
        if (this.good.get(f.path)?.hash === f.hash || this.invalid.get(f.path)?.hash === f.hash) {
          this.pending.delete(f.path); // back to what is applied (or already reported)
          continue;
        }
        const held = this.pending.get(f.path);
        if (!settled(f.path, f.hash, 'bytes' in f ? (f.bytes as Buffer) : undefined)) continue;
        // the stat and hash unchanged since the read that made it pending: those bytes
        if (!('bytes' in f) && held?.hash === f.hash && held.bytes !== undefined)
          f = { path: f.path, hash: f.hash, bytes: held.bytes };
        if (!('bytes' in f)) {
          // settled on a remembered hash: read the content now; if it moved meanwhile, it waits
          const want = f.hash;
          this.stats.delete(path);
          f = this.readOne(path);
          if ('reason' in f) {
            note(f);
            continue;
          }
          if (!('bytes' in f)) continue; // not served from the cache: the entry was just dropped
          if (f.hash !== want && !opts.immediate) {
            this.pending.set(f.path, { hash: f.hash, since: now });
            found++;
            continue;
          }
        }
        if ('bytes' in f && this.take(f.path, f.bytes as Buffer, f.hash)) changed = true;
      }
    } finally {
      this.running = undefined;
    }
    this.skipped = skipped;
    const removed = partial ? [...gone] : [...this.good.keys(), ...this.invalid.keys()];
    if (partial) for (const file of gone) this.stats.delete(file);
    else for (const file of this.stats.keys()) if (!seen.has(file)) this.stats.delete(file);
    for (const file of removed) {
      if (seen.has(file) || (!this.good.has(file) && !this.invalid.has(file))) continue;
      if (!settled(file, null)) continue;
      if (this.good.delete(file)) changed = true;
      this.invalid.delete(file);
      this.saved.delete(file);
    }
    for (const file of partial ? gone : [...this.pending.keys()]) {
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

  /**
   * The store's files that watch events on directories (real paths, as the watchers have them)
   * name, for a partial scan; undefined when only a full scan will do: an event without a name, on
   * a directory the last walk did not enter, naming a directory (a subdirectory added, removed or
   * renamed), or a store that could not be read.
   */
  pathsFor(events: ReadonlyArray<{ dir: string; name: string | null }>): string[] | undefined {
    const walked = this.walked;
    if (walked === undefined || this.storeError !== undefined) return undefined;
    let dirs: Set<string> | undefined;
    const out: string[] = [];
    for (const ev of events) {
      const base = walked.get(ev.dir);
      if (base === undefined || ev.name === null || ev.name.includes('/')) return undefined;
      if (ev.name.startsWith('.')) continue; // hidden: never read (hidden directories neither)
      const path = join(base, ev.name);
      let st: Stats | undefined;
      try {
        st = statSync(path, { throwIfNoEntry: false });
      } catch {
        // unreadable (a symlink loop, permissions): the file's read says why
      }
      if (st?.isDirectory() === true) return undefined;
      if (POLICY_FILE.test(ev.name)) {
        out.push(path);
        continue;
      }
      // not a policy file: unless it was a directory of the store (removed or renamed away)
      dirs ??= new Set(walked.values());
      if (dirs.has(path)) return undefined;
    }
    return out;
  }

  /** Files whose change waits to settle: what a settle-time rescan has to look at again. */
  pendingFiles(): string[] {
    return [...this.pending.keys()];
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
