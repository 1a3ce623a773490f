// Which files `seawall test PATH...` runs: files named on the command line as given; directories
// walked recursively for *.yaml|yml|json files holding a PolicyTest (policies kept next to the
// tests are passed over).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { looksLikePolicyTest } from './parse.ts';

const EXT = /\.(ya?ml|json)$/i;

export interface CollectedFiles {
  files: string[];
  /** Paths that do not exist. */
  missing: string[];
}

export function collectTestFiles(paths: readonly string[]): CollectedFiles {
  const files: string[] = [];
  const missing: string[] = [];
  for (const p of paths) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch {
      missing.push(p);
      continue;
    }
    if (st.isDirectory()) walk(p, files);
    else files.push(p);
  }
  return { files: [...new Set(files)], missing };
}

function walk(dir: string, out: string[]): void {
  const names = readdirSync(dir).sort();
  for (const name of names) {
    if (name.startsWith('.') || name === 'node_modules') continue;
    const p = join(dir, name);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) walk(p, out);
    else if (EXT.test(name) && isPolicyTestFile(p)) out.push(p);
  }
}

function isPolicyTestFile(p: string): boolean {
  try {
    return looksLikePolicyTest(readFileSync(p, 'utf8'));
  } catch {
    return false;
  }
}
