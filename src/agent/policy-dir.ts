// The agent's read of its policy directory, kept in one function (readPolicyDir) so a shared
// reader can replace it. Only regular files are read: a FIFO named x.yaml would block the agent
// forever, a device or socket means nothing; each is skipped with its reason. Files above a size
// cap are skipped too. Symbolic links are followed (to files and directories) with loop
// detection: a directory reached again through a link is not walked twice. Opening uses
// O_NONBLOCK and checks the opened file, so a path swapped for a FIFO after the check cannot block.

import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs';
import { join } from 'node:path';

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

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Reads one regular file without ever blocking on it; a string is the reason it was not read. */
function readRegular(path: string, maxBytes: number): Buffer | string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return `cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return `${kindOf(st)}, not a regular file`;
    if (st.size > maxBytes) return `larger than ${maxBytes} bytes (${st.size})`;
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n <= 0) break;
      off += n;
    }
    // grown since fstat: read only up to the cap, and say so when it is passed
    const extra = Buffer.alloc(1);
    if (readSync(fd, extra, 0, 1, off) > 0 && off >= maxBytes) return `larger than ${maxBytes} bytes`;
    return off === buf.length ? buf : buf.subarray(0, off);
  } catch (e) {
    return `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  } finally {
    closeSync(fd);
  }
}

/**
 * The policy files under `root` (a directory, or one file), sorted, with what was skipped and
 * why. Throws when `root` itself cannot be read: a store that cannot be read is not an empty
 * store (removing every policy would open every endpoint).
 */
export function readPolicyDir(root: string, opts: { maxBytes?: number } = {}): PolicyDirRead {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_POLICY_BYTES;
  const out: PolicyDirRead = { files: [], skipped: [], dirs: [] };
  const rootSt = statSync(root); // throws: unreadable store
  if (!rootSt.isDirectory()) {
    const r = readRegular(root, maxBytes);
    if (typeof r === 'string') out.skipped.push({ path: root, reason: r });
    else out.files.push({ path: root, bytes: r, hash: contentHash(r) });
    return out;
  }
  readdirSync(root); // throws: unreadable store
  const visited = new Set<string>();
  const walk = (dir: string, top: boolean): void => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch (e) {
      out.skipped.push({ path: dir, reason: `cannot resolve: ${(e as NodeJS.ErrnoException).code}` });
      return;
    }
    if (visited.has(real)) {
      out.skipped.push({ path: dir, reason: `symlink loop: ${real} is already read` });
      return;
    }
    visited.add(real);
    out.dirs.push(real);
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (e) {
      if (top) throw e;
      out.skipped.push({ path: dir, reason: `cannot list: ${(e as NodeJS.ErrnoException).code}` });
      return;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const p = join(dir, name);
      let st: Stats;
      try {
        st = statSync(p); // follows a symlink (ELOOP for a link cycle)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          // removed since readdir (the watcher fires while files change), or a dangling link
          if (POLICY_FILE.test(name)) out.skipped.push({ path: p, reason: 'dangling or removed' });
          continue;
        }
        out.skipped.push({ path: p, reason: code === 'ELOOP' ? 'symlink loop' : `cannot stat: ${code}` });
        continue;
      }
      if (st.isDirectory()) {
        walk(p, false);
        continue;
      }
      if (!POLICY_FILE.test(name)) continue;
      if (!st.isFile()) {
        out.skipped.push({ path: p, reason: `${kindOf(st)}, not a regular file` });
        continue;
      }
      if (st.size > maxBytes) {
        out.skipped.push({ path: p, reason: `larger than ${maxBytes} bytes (${st.size})` });
        continue;
      }
      const r = readRegular(p, maxBytes);
      if (typeof r === 'string') out.skipped.push({ path: p, reason: r });
      else out.files.push({ path: p, bytes: r, hash: contentHash(r) });
    }
  };
  walk(root, true);
  return out;
}
