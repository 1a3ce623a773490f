// The agent's read of its policy directory: core/files.ts's walk and reader (regular files only,
// O_NONBLOCK + fstat so a FIFO named x.yaml cannot block the agent, a size cap, symlinks followed
// with each directory entered once), plus what the agent needs on top: a content hash per file for
// the settle check and the resync, the directories for the watchers, and a throw when the store
// itself cannot be read (a store that cannot be read is not an empty store).

import { createHash } from 'node:crypto';
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { readRegularFile, walkFiles } from '../core/files.ts';

/** Policy files the agent reads: YAML or JSON by name, never hidden ones. */
export const POLICY_FILE = /\.(ya?ml|json)$/i;

/** Default size cap of one policy file. */
export const DEFAULT_MAX_POLICY_BYTES = 4 * 1024 * 1024;

export interface PolicyFileRead {
  path: string;
  bytes: Buffer;
  /** sha256 of the bytes: what the watcher's stability check and the resync compare. */
  hash: string;
}

export interface PolicyDirRead {
  files: PolicyFileRead[];
  /** Paths not read, each with the reason (shown by `seawall agent status`). */
  skipped: Array<{ path: string; reason: string }>;
  /** Directories walked (real paths), for the watcher. */
  dirs: string[];
}

export function contentHash(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The reason without the path in front (status lists them by path). */
function reasonOf(path: string, message: string): string {
  return message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
}

/** The walk of `root` without reading the files: their paths, what was skipped, the directories. */
export interface PolicyDirWalk {
  paths: string[];
  skipped: Array<{ path: string; reason: string }>;
  dirs: string[];
  /** Each directory's real path → the path the walk reached it by (a watch event names the former). */
  walked: Map<string, string>;
}

/** Walks the store (throws when `root` itself cannot be read); reads nothing. */
export function walkPolicyDir(root: string): PolicyDirWalk {
  if (statSync(root).isDirectory()) readdirSync(root); // throws: unreadable store
  const w = walkFiles(root, { accept: (n) => POLICY_FILE.test(n), skip: (n) => n.startsWith('.') });
  const out: PolicyDirWalk = { paths: w.files, skipped: [], dirs: [], walked: new Map() };
  for (const d of w.dirs) {
    try {
      const real = realpathSync(d);
      out.dirs.push(real);
      out.walked.set(real, d);
    } catch {
      // removed since the walk; the next event or resync sees it
    }
  }
  for (const p of w.problems) out.skipped.push({ path: p.path, reason: reasonOf(p.path, p.message) });
  for (const l of w.loops)
    out.skipped.push({ path: l, reason: 'symlink loop: the directory is already read' });
  return out;
}

/** One policy file read with its hash, or why it was not read. */
export function readPolicyFile(
  path: string,
  maxBytes = DEFAULT_MAX_POLICY_BYTES,
): PolicyFileRead | { path: string; reason: string } {
  const r = readRegularFile(path, maxBytes, { stdinHint: false });
  if (r.ok) return { path, bytes: r.bytes, hash: contentHash(r.bytes) };
  return { path, reason: reasonOf(path, r.message) };
}

/**
 * The policy files under `root` (a directory, or one file), sorted, with what was skipped and
 * why. Throws when `root` itself cannot be read.
 */
export function readPolicyDir(root: string, opts: { maxBytes?: number } = {}): PolicyDirRead {
  const w = walkPolicyDir(root);
  const out: PolicyDirRead = { files: [], skipped: w.skipped, dirs: w.dirs };
  for (const path of w.paths) {
    const r = readPolicyFile(path, opts.maxBytes);
    if ('bytes' in r) out.files.push(r);
    else out.skipped.push(r);
  }
  return out;
}
