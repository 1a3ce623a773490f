// What `seawall test` prints: human text (failures with explanations, then `N passed, N failed`),
// JSON lines (one result per flow) and JUnit XML (one testsuite per PolicyTest).

import type { Issue } from '../policy-api/issue.ts';
import { formatTestSuites } from '../report/junit.ts';
import { terminalSafe } from '../report/terminal.ts';
import type { FlowResult, TestRun } from './types.ts';

export function formatIssue(i: Issue): string {
  const where = `${i.pos.file}:${i.pos.line}:${i.pos.column}`;
  const path = i.path ? ` (${i.path})` : '';
  return terminalSafe(`${where}: ${i.severity} ${i.code}: ${i.message}${path}`);
}

export function describeFlow(r: FlowResult): string {
  const port = r.port !== undefined ? `${r.port}/${r.protocol}` : r.protocol;
  return `${r.from} → ${r.to} ${port}`;
}

function flowTitle(r: FlowResult): string {
  const name = r.name !== undefined ? ` "${r.name}"` : '';
  return `${r.test} flows[${r.flow}]${name}: ${describeFlow(r)}`;
}

function verdictText(outcome: string, reason: string | undefined): string {
  return reason !== undefined && outcome !== 'allowed' ? `${outcome} (${reason})` : outcome;
}

export interface HumanOptions {
  /** Print passing flows too. */
  verbose?: boolean;
}

export function formatHuman(runs: readonly TestRun[], opts: HumanOptions = {}): string {
  const lines: string[] = [];
  let passed = 0;
  let failed = 0;
  for (const run of runs) {
    for (const r of run.results) {
      if (r.pass) {
        passed++;
        if (opts.verbose) lines.push(`PASS ${flowTitle(r)}: ${verdictText(r.actual, r.reason)}`);
        continue;
      }
      failed++;
      lines.push(`FAIL ${flowTitle(r)}`);
      lines.push(`  expected: ${verdictText(r.expected, r.expectedReason)}`);
      lines.push(`  actual:   ${verdictText(r.actual, r.reason)}`);
      for (const e of r.explanation) lines.push(`  ${e}`);
    }
  }
  lines.push(`${passed} passed, ${failed} failed`);
  // Test, flow and endpoint names come from the file; each line is made terminal-safe.
  return `${lines.map(terminalSafe).join('\n')}\n`;
}

export function formatJSONLines(runs: readonly TestRun[]): string {
  let out = '';
  for (const run of runs) for (const r of run.results) out += `${JSON.stringify(r)}\n`;
  return out;
}

export function formatJUnit(runs: readonly TestRun[]): string {
  return formatTestSuites({
    name: 'seawall test',
    suites: runs.map((run) => ({
      name: run.test.name,
      file: run.test.file,
      time: run.seconds,
      cases: run.results.map((r) => ({
        name: `flows[${r.flow}]${r.name !== undefined ? ` ${r.name}` : ''}: ${describeFlow(r)}`,
        classname: run.test.name,
        outcome: r.pass ? ('pass' as const) : ('fail' as const),
        message: `expected ${verdictText(r.expected, r.expectedReason)}, got ${verdictText(r.actual, r.reason)}`,
        body: r.explanation.join('\n'),
      })),
    })),
  });
}
