// Which files `seawall test PATH...` runs: files named on the command line as given; directories
// walked recursively (symlinks followed, each directory once) for *.yaml|yml|json files holding a
// PolicyTest (policies kept next to the tests are passed over). Only regular files are read.

import { type FileProblem, readRegularFile, walkFiles } from '../core/files.ts';
import { looksLikePolicyTest } from './parse.ts';

const EXT = /\.(ya?ml|json)$/i;

export interface CollectedFiles {
  files: string[];
  /** Paths that do not exist. */
  missing: string[];
  /** Files with a test's name that cannot be read (FIFOs, devices, too large, permission). */
  unreadable: FileProblem[];
}

export function collectTestFiles(paths: readonly string[]): CollectedFiles {
  const files: string[] = [];
  const missing: string[] = [];
  const unreadable: FileProblem[] = [];
  for (const p of paths) {
    const w = walkFiles(p, {
      accept: (n) => EXT.test(n),
      skip: (n) => n.startsWith('.') || n === 'node_modules',
    });
    for (const pr of w.problems) {
      if (pr.path === p && pr.code === 'not-found') missing.push(p);
      else unreadable.push(pr);
    }
    // A file named on the command line is run as given (the parser reports what is wrong with it).
    if (w.files.length === 1 && w.files[0] === p) {
      files.push(p);
      continue;
    }
    for (const f of w.files) {
      const r = readRegularFile(f);
      if (!r.ok) unreadable.push(r);
      else if (looksLikePolicyTest(r.bytes.toString('utf8'))) files.push(f);
    }
  }
  return { files: [...new Set(files)], missing, unreadable };
}
