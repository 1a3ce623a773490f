// Reading input files offline (policies, PolicyTests, manifests): regular files only, with a size
// cap, and directory walks that follow symlinks but never loop. A FIFO named `x.yaml` would block a
// plain read forever and `/dev/zero` would never end; a symlink loop would repeat a subtree until
// ELOOP. Failures are values (`FileProblem`), never throws: callers turn them into issues or errors.

import {
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  openSync,
  readdirSync,
  readSync,
  type Stats,
  statSync,
} from 'node:fs';
import { join } from 'node:path';

/** The most one input file (or standard input) may hold: 16 MiB. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

export type FileProblemCode =
  | 'not-found'
  | 'permission-denied'
  | 'not-regular-file'
  | 'file-too-large'
  | 'read-error';

export interface FileProblem {
  code: FileProblemCode;
  path: string;
  /** Names the file and says why, e.g. `x.yaml: is a FIFO, not a regular file`. */
  message: string;
}

export type ReadResult = { ok: true; bytes: Buffer } | ({ ok: false } & FileProblem);

/** `16 MiB (16777216 bytes)`: the cap as people and scripts read it. */
export function describeLimit(max: number): string {
  const mib = max / (1024 * 1024);
  return Number.isInteger(mib) ? `${mib} MiB (${max} bytes)` : `${max} bytes`;
}

/** What kind of file this is, for "is a FIFO, not a regular file". */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function problem(code: FileProblemCode, path: string, message: string): { ok: false } & FileProblem {
  return { ok: false, code, path, message: `${path}: ${message}` };
}

/** An errno from fs as a FileProblem. */
export function problemOf(e: unknown, path: string): { ok: false } & FileProblem {
  const errno = (e as { code?: string }).code;
  if (errno === 'ENOENT' || errno === 'ENOTDIR')
    return problem('not-found', path, 'no such file or directory');
  if (errno === 'EACCES' || errno === 'EPERM') return problem('permission-denied', path, 'permission denied');
  if (errno === 'ELOOP') return problem('read-error', path, 'too many levels of symbolic links');
  // open(2) of a unix socket fails with ENXIO: it is not a file to read either.
  if (errno === 'ENXIO') return problem('not-regular-file', path, 'is a socket, not a regular file');
  return problem('read-error', path, (e as Error).message);
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/**
 * Reads a whole regular file of at most `max` bytes. Opens with O_NONBLOCK, so a FIFO without a
 * writer cannot block the open, then refuses everything fstat does not call a regular file before
 * reading a byte. Reads at most max+1 bytes: a file that grows past the cap after fstat is refused too.
 */
export function readRegularFile(
  path: string,
  max: number = MAX_INPUT_BYTES,
  opts: { stdinHint?: boolean } = {},
): ReadResult {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch (e) {
    return problemOf(e, path);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      // A pipe has one legitimate use: standard input, which `-` reads (with the same cap).
      const hint = st.isFIFO() && opts.stdinHint !== false ? ' (to read standard input, give -)' : '';
      return problem('not-regular-file', path, `is ${fileKind(st)}, not a regular file${hint}`);
    }
    if (st.size > max) return tooLarge(path, st.size, max);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // One read for a file that fstat sized right; max+1 bytes at most, to notice growth. Sized
      // by the file (not 64 KiB each): thousands of small policy files stay cheap to read.
      const buf = Buffer.allocUnsafe(Math.min(max + 1 - total, Math.max(st.size + 1 - total, 4096)));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(n === buf.length ? buf : buf.subarray(0, n));
      total += n;
      if (total > max) return tooLarge(path, undefined, max);
    }
    return { ok: true, bytes: Buffer.concat(chunks, total) };
  } catch (e) {
    return problemOf(e, path);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, size: number | undefined, max: number): { ok: false } & FileProblem {
  const what = size === undefined ? 'holds more than' : `is ${size} bytes, more than`;
  return problem('file-too-large', path, `${what} the limit of ${describeLimit(max)} per file`);
}

/**
 * Reads a stream (standard input) up to `max` bytes; past the cap it stops reading and reports,
 * so a `yes | seawall validate -` never grows without bound.
 */
export async function readStreamCapped(
  s: NodeJS.ReadableStream,
  name: string,
  max: number = MAX_INPUT_BYTES,
): Promise<ReadResult> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of s) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
      total += b.length;
      if (total > max) return tooLarge(name, undefined, max);
      chunks.push(b);
    }
  } catch (e) {
    return problemOf(e, name);
  }
  return { ok: true, bytes: Buffer.concat(chunks, total) };
}

export interface WalkOptions {
  /** Files whose name passes are returned (default: every file). */
  accept?: (name: string) => boolean;
  /** Entries (files or directories) passed over by name, e.g. dot files and node_modules. */
  skip?: (name: string) => boolean;
}

export interface WalkResult {
  /** Accepted entries that are not directories, sorted by path: regular files, and FIFOs or
   *  devices with an accepted name (left for the reader to refuse with a clear issue). */
  files: string[];
  /** Entries that could not be looked at (dangling links, permissions). */
  problems: FileProblem[];
  /** Directories entered, in walk order (what a watcher watches). */
  dirs: string[];
  /** Paths of directory links that lead to a directory already entered (a loop, not walked again). */
  loops: string[];
}

/**
 * Walks a directory tree. Symlinks are followed (to files and directories), but each directory
 * (by device and inode) is entered once, so a link back up the tree ends the walk there instead of
 * repeating it until ELOOP.
 */
export function walkFiles(root: string, opts: WalkOptions = {}): WalkResult {
  const accept = opts.accept ?? (() => true);
  const skip = opts.skip ?? (() => false);
  const out: WalkResult = { files: [], problems: [], dirs: [], loops: [] };
  const seen = new Set<string>();
  // Iterative: a deep tree must not overflow the stack.
  const stack: Array<{ dir: string; st: Stats }> = [];
  const enter = (dir: string, st: Stats): void => {
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) {
      out.loops.push(dir);
      return;
    }
    seen.add(key);
    stack.push({ dir, st });
  };
  let rootSt: Stats;
  try {
    rootSt = statSync(root);
  } catch (e) {
    out.problems.push(problemOf(e, root));
    return out;
  }
  if (!rootSt.isDirectory()) {
    out.files.push(root);
    return out;
  }
  enter(root, rootSt);
  while (stack.length > 0) {
    const { dir } = stack.pop()!;
    out.dirs.push(dir);
    let ents: Dirent[];
    try {
      ents = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      out.problems.push(problemOf(e, dir));
      continue;
    }
    ents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: Array<{ dir: string; st: Stats }> = [];
    for (const ent of ents) {
      const name = ent.name;
      if (skip(name)) continue;
      const p = join(dir, name);
      // The listing gives each entry's type: a plain file costs no stat (thousands of policy
      // files, one listing); links and directories are stat'ed (a link is followed once).
      if (ent.isFile()) {
        if (accept(name)) out.files.push(p);
        continue;
      }
      let st: Stats;
      try {
        st = statSync(p); // follows a symlink once to what it names
      } catch (e) {
        if (accept(name)) out.problems.push(problemOf(e, p));
        continue;
      }
      if (st.isDirectory()) subdirs.push({ dir: p, st });
      else if (accept(name)) out.files.push(p);
    }
    // Reverse so the stack pops subdirectories in sorted order.
    for (let i = subdirs.length - 1; i >= 0; i--) enter(subdirs[i]!.dir, subdirs[i]!.st);
  }
  out.files.sort();
  return out;
}
