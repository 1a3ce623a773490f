// What every reporter gets: the counts of one validate run and its issues, in a stable order.

import { relative, sep } from 'node:path';
import type { Issue } from '../policy-api/issue.ts';

export interface ReportInput {
  /** Files read, in the order the loader read them. */
  files: readonly string[];
  /** Policies decoded (valid or not). */
  policies: number;
  /** Of those, the ones with errors (Cilium would reject them). */
  rejected?: number;
  /** Non-policy objects passed over. */
  others: number;
  issues: readonly Issue[];
}

/** Issues ordered by file, line, column, then errors before warnings, then code (stable). */
export function sortIssues(issues: readonly Issue[]): Issue[] {
  return [...issues].sort(
    (a, b) =>
      cmp(a.pos.file, b.pos.file) ||
      a.pos.line - b.pos.line ||
      a.pos.column - b.pos.column ||
      (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1) ||
      cmp(a.code, b.code),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files in reading order, then any file that only issues name (so none is lost). */
export function allFiles(input: ReportInput): string[] {
  const out = [...input.files];
  const seen = new Set(out);
  for (const i of sortIssues(input.issues)) {
    if (!seen.has(i.pos.file)) {
      seen.add(i.pos.file);
      out.push(i.pos.file);
    }
  }
  return out;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** A file name as a URI reference relative to `cwd`, with `/` separators (for SARIF). */
export function relativeUri(file: string, cwd: string): string {
  if (file === '-' || file.startsWith('<')) return encodeURI(file.replace(/[<>]/g, ''));
  const rel = relative(cwd, file) || file;
  return rel
    .split(sep)
    .join('/')
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/** Message plus the JSON path it concerns, for formats that have one text field. */
export function messageWithPath(i: Issue): string {
  return i.path === '' ? i.message : `${i.message} (at ${i.path})`;
}
