// `seawall test FILE|DIR...`: run PolicyTest files offline against the policy engine (or, with
// --live, through the enforcing data plane). Exit 0 all flows pass, 1 some fail, 2 invalid input.
// The runner and engine load on first use, so other commands work while they are absent.

import { writeFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { CommandIO } from '../policytest/cli-support.ts';
import type { PolicyTest, TestRun } from '../policytest/types.ts';

export interface TestOptions {
  output: 'human' | 'json';
  junit?: string;
  verbose?: boolean;
  live?: boolean;
  against?: string;
  policies?: string[];
  file?: string[];
  /** Every endpoint in PolicyAuditMode (Cilium's --policy-audit-mode): policy drops become AUDIT. */
  policyAuditMode?: boolean;
}

const EXAMPLES = `
Examples:
  # Run one PolicyTest file
  $ seawall test tests/frontend.policytest.yaml

  # Run every PolicyTest under a directory (policies next to them are passed over)
  $ seawall test tests/

  # Print passing flows too
  $ seawall test -v tests/

  # One JSON object per flow, for jq
  $ seawall test -o json tests/ | jq 'select(.pass == false)'

  # JUnit XML for CI
  $ seawall test --junit results.xml tests/

  # Replay the same flows as real traffic through the data plane (Linux, root)
  $ sudo seawall test --live tests/

  # Before a rollout: which recorded flows would the new policies drop?
  $ seawall test --against flows.json --policies new-policies/ [-f deploy/]

Exit status: 0 every flow passed, 1 some flow failed, 2 an input is invalid (issues printed).
`;

export function registerTest(program: Command): void {
  program
    .command('test')
    .description('run PolicyTest files: expected verdicts for flows, with these policies and endpoints')
    .argument('[paths...]', 'PolicyTest files or directories (searched recursively)')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['human', 'json']).default('human'),
    )
    .option('--junit <file>', 'also write JUnit XML (one testsuite per PolicyTest, one testcase per flow)')
    .option('-v, --verbose', 'print passing flows too')
    .option('--live', 'replay the flows as real traffic through the enforcing data plane')
    .option(
      '--policy-audit-mode',
      'every endpoint in PolicyAuditMode: what policy would drop passes as AUDIT',
    )
    .option(
      '--against <flows>',
      'replay a flow log (observe -o json, hubble -o jsonpb) against --policies instead',
    )
    .option('--policies <path>', 'with --against: policy file or directory; repeatable', collectList)
    .option(
      '-f, --file <path>',
      'with --against: endpoints from manifests or a PolicyTest; repeatable',
      collectList,
    )
    .addHelpText('after', EXAMPLES)
    .action(async (paths: string[], opts: TestOptions) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      if (opts.against !== undefined) {
        const { runAgainstCommand } = await import('./test-against.ts');
        await runAgainstCommand({ ...opts, against: opts.against }, processIO);
        return;
      }
      await runTestCommand(paths, opts, processIO);
    });
}

const collectList = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

export async function runTestCommand(paths: string[], opts: TestOptions, io: CommandIO): Promise<void> {
  const { collectTestFiles } = await import('../policytest/files.ts');
  const { loadPolicyTestFile } = await import('../policytest/parse.ts');
  const report = await import('../policytest/report.ts');

  if (opts.live) {
    // loaded only with --live, so the offline runner never loads the datapath
    const live = await import('../testbed/live-test.ts');
    // A signal tears the node in use down and makes the runner return; the exit code is the
    // shell's for the signal (130 SIGINT, 143 SIGTERM). Later signals while stopping are absorbed.
    const ac = new AbortController();
    let signal: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      if (signal !== undefined) return;
      signal = sig;
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const code = await live.runLive(paths, {
        output: opts.output,
        write: (l) => io.stdout(`${l}\n`),
        signal: ac.signal,
        ...(opts.junit !== undefined ? { junit: opts.junit } : {}),
        ...(opts.verbose ? { verbose: true } : {}),
        ...(opts.policyAuditMode === true ? { policyAuditMode: true } : {}),
      });
      io.setExitCode(signal === undefined ? code : signal === 'SIGINT' ? 130 : 143);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return;
  }
  const { files, missing, unreadable } = collectTestFiles(paths);
  for (const m of missing) io.stderr(`seawall test: ${m}: no such file or directory\n`);
  for (const u of unreadable) io.stderr(`seawall test: ${u.message}\n`);
  if (files.length === 0) {
    io.stderr('seawall test: no PolicyTest files found\n');
    io.setExitCode(2);
    return;
  }
  let invalid = missing.length > 0 || unreadable.length > 0;
  const tests: PolicyTest[] = [];
  for (const f of files) {
    const parsed = await loadPolicyTestFile(f);
    for (const i of parsed.issues) io.stderr(`${report.formatIssue(i)}\n`);
    if (parsed.issues.some((i) => i.severity === 'error')) {
      invalid = true;
      continue;
    }
    if (parsed.tests.length === 0) {
      io.stderr(`seawall test: ${f}: no PolicyTest document\n`);
      invalid = true;
    }
    tests.push(...parsed.tests);
  }

  const { runPolicyTest } = await import('../policytest/runner.ts');
  const { defaultEngineFactory } = await import('../policy/default-engine.ts');
  const audit = opts.policyAuditMode === true;
  const runs = tests.map((t) =>
    runPolicyTest(t, {
      createEngine: audit
        ? (c, d) => defaultEngineFactory({ ...c, policyAuditMode: true }, d)
        : defaultEngineFactory,
    }),
  );

  const valid: TestRun[] = [];
  for (const run of runs) {
    // Policies the engine refused (e.g. conflicting L7 parsers) make the test invalid.
    for (const i of run.issues) io.stderr(`${report.formatIssue(i)}\n`);
    if (run.issues.length > 0) invalid = true;
    else valid.push(run);
  }
  io.stdout(
    opts.output === 'json'
      ? report.formatJSONLines(valid)
      : report.formatHuman(valid, { verbose: opts.verbose === true }),
  );
  if (opts.junit !== undefined) {
    try {
      writeFileSync(opts.junit, report.formatJUnit(valid));
    } catch (e) {
      io.stderr(`seawall test: cannot write ${opts.junit}: ${(e as Error).message}\n`);
      invalid = true;
    }
  }
  const failed = valid.some((r) => r.results.some((x) => !x.pass));
  io.setExitCode(invalid ? 2 : failed ? 1 : 0);
}
