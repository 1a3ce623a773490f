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

/**
 * The policy files under `root` (a directory, or one file), sorted, with what was skipped and
 * why. Throws when `root` itself cannot be read.
 */
export function readPolicyDir(root: string, opts: { maxBytes?: number } = {}): PolicyDirRead {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_POLICY_BYTES;
  if (statSync(root).isDirectory()) readdirSync(root); // throws: unreadable store
  const w = walkFiles(root, { accept: (n) => POLICY_FILE.test(n), skip: (n) => n.startsWith('.') });
  const out: PolicyDirRead = { files: [], skipped: [], dirs: [] };
  for (const d of w.dirs) {
    try {
      out.dirs.push(realpathSync(d));
    } catch {
      // removed since the walk; the next event or resync sees it
    }
  }
  for (const p of w.problems) out.skipped.push({ path: p.path, reason: reasonOf(p.path, p.message) });
  for (const l of w.loops)
    out.skipped.push({ path: l, reason: 'symlink loop: the directory is already read' });
  for (const path of w.files) {
    const r = readRegularFile(path, maxBytes, { stdinHint: false });
    if (r.ok) out.files.push({ path, bytes: r.bytes, hash: contentHash(r.bytes) });
    else out.skipped.push({ path, reason: reasonOf(path, r.message) });
  }
  return out;
}
