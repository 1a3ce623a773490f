// JUnit XML output, for CI systems that show test reports: one testsuite "seawall validate",
// one testcase per file; a file fails when it has an error (or a warning, when strict).

import { countBySeverity, type Issue } from '../policy-api/issue.ts';
import { allFiles, plural, type ReportInput, sortIssues } from './common.ts';
import { xmlAttr, xmlText } from './xml.ts';

export interface JunitOptions {
  /** Warnings fail a file too (seawall validate --strict). */
  strict?: boolean;
}

const SUITE = 'seawall validate';

export function formatJunit(input: ReportInput, opts: JunitOptions = {}): string {
  const byFile = new Map<string, Issue[]>();
  for (const i of sortIssues(input.issues)) {
    const list = byFile.get(i.pos.file) ?? [];
    list.push(i);
    byFile.set(i.pos.file, list);
  }
  const files = allFiles(input);
  const cases: string[] = [];
  let failures = 0;
  for (const file of files) {
    const issues = byFile.get(file) ?? [];
    const { errors, warnings } = countBySeverity(issues);
    const failed = errors > 0 || (opts.strict === true && warnings > 0);
    const open = `    <testcase classname="${xmlAttr(SUITE)}" name="${xmlAttr(file)}"`;
    const body = issues
      .map((i) => `${i.pos.file}:${i.pos.line}:${i.pos.column} ${i.severity} ${i.code} ${i.message}`)
      .map((l, k) => (issues[k]!.path === '' ? l : `${l} (${issues[k]!.path})`))
      .join('\n');
    if (failed) {
      failures++;
      const msg = `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`;
      const type = errors > 0 ? 'error' : 'warning';
      cases.push(
        `${open}>\n      <failure message="${xmlAttr(msg)}" type="${type}">${xmlText(body)}</failure>\n    </testcase>`,
      );
    } else if (issues.length > 0) {
      cases.push(`${open}>\n      <system-out>${xmlText(body)}</system-out>\n    </testcase>`);
    } else {
      cases.push(`${open}/>`);
    }
  }
  const counts = `tests="${files.length}" failures="${failures}" errors="0" skipped="0"`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="seawall" ${counts}>`,
    `  <testsuite name="${SUITE}" ${counts}>`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
