// Issues: what validation and lint report. Bad input is data, never an exception.

export type Severity = 'error' | 'warning';

/** Where something stands in a source file (1-based line and column). */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

export interface Issue {
  /** Stable kebab-case code, e.g. `unknown-field`, `empty-rule-sections`. */
  code: string;
  severity: Severity;
  /** JSON path inside the document, e.g. `spec.ingress[0].toPorts[0].rules.http[1]`. */
  path: string;
  /** file:line:column of the offending node (of the document when no node applies). */
  pos: SourcePos;
  /** What is wrong and what to do. */
  message: string;
  /** Name of the policy (namespace/name) the issue belongs to, when known. */
  object?: string;
}

/** Joins JSON path segments the way messages print them: `a.b[0].c`. */
export function joinPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(s)) out += out === '' ? s : `.${s}`;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

export function countBySeverity(issues: readonly Issue[]): { errors: number; warnings: number } {
  let errors = 0;
  let warnings = 0;
  for (const i of issues) {
    if (i.severity === 'error') errors++;
    else warnings++;
  }
  return { errors, warnings };
}
