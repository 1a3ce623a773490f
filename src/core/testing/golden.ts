// Golden files for tests: the expected output lives in a file beside the test, compared byte for
// byte. `UPDATE_GOLDEN=1` rewrites the files instead of comparing (then review the diff).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative } from 'node:path';

export interface GoldenOptions {
  /** Rewrite the file instead of comparing; default: the environment says UPDATE_GOLDEN=1. */
  update?: boolean;
}

/** True when the run was asked to rewrite golden files. */
export function updatingGolden(): boolean {
  return process.env.UPDATE_GOLDEN === '1';
}

/**
 * Compares `actual` with the golden file `file` (an absolute path); with UPDATE_GOLDEN=1 writes
 * it instead. A mismatch names the file and the first line that differs.
 */
export function golden(file: string, actual: string, opts: GoldenOptions = {}): void {
  const shown = relative(process.cwd(), file) || file;
  if (opts.update ?? updatingGolden()) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, actual);
    return;
  }
  if (!existsSync(file)) {
    throw new assert.AssertionError({
      message: `golden file ${shown} does not exist; run with UPDATE_GOLDEN=1 to create it`,
      actual,
      expected: undefined,
      operator: 'strictEqual',
    });
  }
  const expected = readFileSync(file, 'utf8');
  if (actual === expected) return;
  throw new assert.AssertionError({
    message: `${mismatch(shown, expected, actual)}\n(UPDATE_GOLDEN=1 rewrites the golden file; review the diff)`,
    actual,
    expected,
    operator: 'strictEqual',
  });
}

/** `golden` for a value written as JSON with two-space indent and a final newline. */
export function goldenJSON(file: string, value: unknown, opts: GoldenOptions = {}): void {
  golden(file, `${JSON.stringify(value, null, 2)}\n`, opts);
}

function mismatch(shown: string, expected: string, actual: string): string {
  const e = expected.split('\n');
  const a = actual.split('\n');
  let i = 0;
  while (i < e.length && i < a.length && e[i] === a[i]) i++;
  const line = (xs: string[]) => (i < xs.length ? JSON.stringify(xs[i]) : '(end of text)');
  return `output differs from golden file ${shown} at line ${i + 1}:\n  golden: ${line(e)}\n  actual: ${line(a)}`;
}
