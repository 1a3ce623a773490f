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

/** One testcase of a PolicyTest run (offline or live): passed, failed with a message, or skipped. */
export interface JUnitCase {
  name: string;
  classname: string;
  /** Seconds; omitted when unknown. */
  time?: number;
  outcome: 'pass' | 'fail' | 'skip';
  /** The failure's or the skip's message. */
  message?: string;
  /** The failure's type attribute (default "verdict"). */
  type?: string;
  /** The failure's text (explanation, records). */
  body?: string;
}

export interface JUnitSuite {
  name: string;
  file: string;
  time: number;
  cases: readonly JUnitCase[];
}

export interface JUnitSuites {
  name: string;
  suites: readonly JUnitSuite[];
  /**
   * `skipped=` counts on testsuites and testsuite (the live runner has skipped flows; the offline
   * report never had the attribute, and its output stays as it was).
   */
  skippedCounts?: boolean;
}

/** testsuites → testsuite per PolicyTest → testcase per flow: the one writer of both runners. */
export function formatTestSuites(doc: JUnitSuites): string {
  const count = (cs: readonly JUnitCase[], o: JUnitCase['outcome']): number =>
    cs.filter((c) => c.outcome === o).length;
  const all = doc.suites.flatMap((s) => s.cases);
  const skipped = (cs: readonly JUnitCase[]): string =>
    doc.skippedCounts ? ` skipped="${count(cs, 'skip')}"` : '';
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(
    `<testsuites name="${xmlAttr(doc.name)}" tests="${all.length}" failures="${count(all, 'fail')}"${skipped(all)}>`,
  );
  for (const s of doc.suites) {
    out.push(
      `  <testsuite name="${xmlAttr(s.name)}" tests="${s.cases.length}" failures="${count(s.cases, 'fail')}" errors="0"${skipped(s.cases)} time="${s.time.toFixed(3)}" file="${xmlAttr(s.file)}">`,
    );
    for (const c of s.cases) {
      const time = c.time !== undefined ? ` time="${c.time.toFixed(3)}"` : '';
      const open = `    <testcase name="${xmlAttr(c.name)}" classname="${xmlAttr(c.classname)}"${time}`;
      if (c.outcome === 'pass') {
        out.push(`${open}/>`);
        continue;
      }
      out.push(`${open}>`);
      if (c.outcome === 'skip') out.push(`      <skipped message="${xmlAttr(c.message ?? '')}"/>`);
      else
        out.push(
          `      <failure message="${xmlAttr(c.message ?? '')}" type="${xmlAttr(c.type ?? 'verdict')}">${xmlText(c.body ?? '')}</failure>`,
        );
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}
