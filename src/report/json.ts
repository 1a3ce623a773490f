// JSON output: one object with the counts and every issue, keys always present (null when
// unknown), so that scripts and jq filters can rely on its shape.

import { countBySeverity } from '../policy-api/issue.ts';
import { type ReportInput, sortIssues } from './common.ts';

export interface JsonIssue {
  code: string;
  severity: 'error' | 'warning';
  path: string;
  file: string;
  line: number;
  column: number;
  message: string;
  object: string | null;
}

export interface JsonReport {
  files: number;
  policies: number;
  rejected: number;
  others: number;
  errors: number;
  warnings: number;
  issues: JsonIssue[];
}

export function toJsonReport(input: ReportInput): JsonReport {
  const { errors, warnings } = countBySeverity(input.issues);
  return {
    files: input.files.length,
    policies: input.policies,
    rejected: input.rejected ?? 0,
    others: input.others,
    errors,
    warnings,
    issues: sortIssues(input.issues).map((i) => ({
      code: i.code,
      severity: i.severity,
      path: i.path,
      file: i.pos.file,
      line: i.pos.line,
      column: i.pos.column,
      message: i.message,
      object: i.object ?? null,
    })),
  };
}

export function formatJson(input: ReportInput): string {
  return `${JSON.stringify(toJsonReport(input), null, 2)}\n`;
}
