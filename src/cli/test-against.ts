// `seawall test --against FLOWS --policies DIR [-f endpoints]`: which recorded flows the new
// policies would drop. Exit 0 none, 1 some would be dropped, 2 bad input. Wired into `seawall
// test` (test.ts) as a flag; the work is in policytest/against.ts.

import { readFileSync } from 'node:fs';
import type { CommandIO } from '../policytest/cli-support.ts';

export interface AgainstFlags {
  against: string;
  policies?: string[];
  file?: string[];
  output: 'human' | 'json';
}

export async function runAgainstCommand(flags: AgainstFlags, io: CommandIO): Promise<void> {
  const { parseFlowText, formatFlowIssue } = await import('../flow/read.ts');
  const cs = await import('../policytest/cli-support.ts');
  const ag = await import('../policytest/against.ts');
  const { loadScenario } = await import('../policytest/scenario.ts');
  const { defaultEngineFactory } = await import('../policy/default-engine.ts');
  const fail = (msg: string): void => {
    io.stderr(`seawall test: ${msg}\n`);
    io.setExitCode(cs.EXIT.invalid);
  };
  if ((flags.policies ?? []).length === 0)
    return fail('--against needs the policies to check: --policies DIR');
  let text: string;
  try {
    text = flags.against === '-' ? readFileSync(0, 'utf8') : readFileSync(flags.against, 'utf8');
  } catch (e) {
    return fail(`cannot read ${flags.against}: ${(e as Error).message}`);
  }
  const read = parseFlowText(flags.against, text);
  for (const i of read.issues) io.stderr(`${formatFlowIssue(i)}\n`);
  if (read.issues.length > 0) return io.setExitCode(cs.EXIT.invalid);
  if (read.flows.length === 0) return fail(`${flags.against}: no flows`);
  // -f gives endpoints only: policies inside those files are not the set under review.
  const sc = await loadScenario({ files: flags.file ?? [], policies: [] });
  const ps = await loadScenario({ files: [], policies: flags.policies ?? [] });
  const issues = [...sc.issues, ...ps.issues];
  cs.printIssues(issues, io);
  if (issues.some((i) => i.severity === 'error')) return io.setExitCode(cs.EXIT.invalid);
  const report = ag.runAgainst(
    {
      flows: read.flows,
      lines: read.lines,
      policies: ps.policies,
      endpoints: sc.endpoints,
      namespaces: sc.namespaces,
      objects: [...sc.objects, ...ps.objects],
    },
    defaultEngineFactory,
  );
  cs.printIssues(report.issues, io);
  if (report.issues.length > 0) return io.setExitCode(cs.EXIT.invalid);
  io.stdout(
    flags.output === 'json' ? ag.formatAgainstJSON(report) : ag.formatAgainstText(report, flags.against),
  );
  io.setExitCode(report.dropped > 0 ? cs.EXIT.failed : cs.EXIT.ok);
}
