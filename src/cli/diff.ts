// `seawall diff A B`: connections added, removed or changed between two policy sets on the same
// endpoints. Exit 0 equal, 1 different, 2 bad input (as `kubectl diff`).

import { type Command, Option } from 'commander';
import type { CommandIO } from '../policytest/cli-support.ts';
import type { DiffFormat } from '../policytest/diff.ts';

export interface DiffFlags {
  file?: string[];
  test?: string;
  output: DiffFormat;
}

const EXAMPLES = `
Examples:
  # What a pull request changes, endpoints from a PolicyTest file
  $ seawall diff git:main:policies/ policies/ -f tests/shop.policytest.yaml

  # Two directories, workloads from manifests, as a Markdown PR comment
  $ seawall diff old/ new/ -f deploy/ -o markdown

  # As JSON, or a Graphviz picture (green added, red dashed removed, orange changed)
  $ seawall diff old/ new/ -f deploy/ -o json | jq '.changes[] | select(.kind == "removed")'
  $ seawall diff old/ new/ -f deploy/ -o dot | dot -Tsvg > diff.svg

A and B are policy files or directories, or git:REF:PATH (PATH as commit REF has it). Policies
inside the -f files are not part of either side. Exit status: 0 no change, 1 connectivity differs,
2 bad input.
`;

export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('connections added, removed or changed between two policy sets, on the same endpoints')
    .argument('<a>', 'policy file or directory before, or git:REF:PATH')
    .argument('<b>', 'policy file or directory after, or git:REF:PATH')
    .option(
      '-f, --file <path>',
      'endpoints: a PolicyTest file, or Kubernetes manifests (file or directory); repeatable',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--test <name>', 'which PolicyTest of a multi-document file (default: the first)')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'markdown', 'json', 'dot'])
        .default('text'),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (a: string, b: string, flags: DiffFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      await runDiffCommand(a, b, flags, processIO);
    });
}

export async function runDiffCommand(a: string, b: string, flags: DiffFlags, io: CommandIO): Promise<void> {
  const cs = await import('../policytest/cli-support.ts');
  const { loadScenario } = await import('../policytest/scenario.ts');
  const { loadPolicySet } = await import('../policytest/policy-source.ts');
  const { prepareEngine } = await import('../policytest/runner.ts');
  const { diffConnectivity, formatDiff } = await import('../policytest/diff.ts');
  const { defaultEngineFactory } = await import('../policy/default-engine.ts');
  const files = flags.file ?? [];
  if (files.length === 0) {
    io.stderr('seawall diff: give the endpoints with -f (a PolicyTest file or manifests)\n');
    io.setExitCode(cs.EXIT.invalid);
    return;
  }
  const sc = await loadScenario({
    files,
    policies: [],
    ...(flags.test !== undefined ? { testName: flags.test } : {}),
  });
  const [sa, sb] = [await loadPolicySet(a), await loadPolicySet(b)];
  const issues = [...sc.issues, ...sa.issues, ...sb.issues];
  const sides = [sa, sb].map((s) => {
    const { engine, issues: more } = prepareEngine({ ...sc, policies: s.policies }, defaultEngineFactory);
    issues.push(...more);
    // The -f file's DNS answers, as if looked up: toFQDNs rules select their addresses.
    for (const r of sc.dns) engine.learnDNS(r.name, r.ips, r.ttl, 0);
    return { label: s.label, engine };
  });
  cs.printIssues(issues, io);
  if (issues.some((i) => i.severity === 'error')) {
    io.setExitCode(cs.EXIT.invalid);
    return;
  }
  if (sc.endpoints.length < 2) {
    io.stderr('seawall diff: the -f files describe fewer than two endpoints: nothing to compare\n');
    io.setExitCode(cs.EXIT.invalid);
    return;
  }
  const d = diffConnectivity(sides[0]!, sides[1]!, sc.endpoints);
  io.stdout(formatDiff(d, flags.output));
  io.setExitCode(d.changes.length > 0 ? cs.EXIT.failed : cs.EXIT.ok);
}
