// `seawall generate --from FLOWS`: CiliumNetworkPolicies that allow exactly the traffic of a flow
// log (`seawall observe -o json`, `hubble observe -o jsonpb`, or bare Flow JSON lines).
// Exit 0 written, 2 bad input (no flows, unreadable file, lines that are not flows).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { CommandIO } from '../policytest/cli-support.ts';

export interface GenerateFlags {
  from: string;
  output: string;
  generalizePaths?: boolean;
}

const EXAMPLES = `
Examples:
  # Policies for what a day of traffic shows, one file per workload
  $ seawall observe -o json --since 24h > flows.json
  $ seawall generate --from flows.json -o policies/

  # From Hubble, to standard output
  $ hubble observe -o jsonpb --last 10000 > flows.json
  $ seawall generate --from flows.json

  # Paths with ids (/users/42) become patterns (/users/[^/]+)
  $ seawall generate --from flows.json --generalize-paths -o policies/

Replies and dropped records allow nothing. Review what comes out: it allows what was seen, not
what is needed. Exit status: 0 policies written, 2 bad input.
`;

export function registerGenerate(program: Command): void {
  program
    .command('generate')
    .description('CiliumNetworkPolicies that allow exactly the traffic recorded in a flow log')
    .requiredOption(
      '--from <file>',
      'flow log: JSON lines from seawall observe -o json or hubble observe -o jsonpb (- for stdin)',
    )
    .option('-o, --output <dir>', 'directory to write NAMESPACE-NAME.yaml files into, or - for stdout', '-')
    .option('--generalize-paths', 'replace id-like HTTP path segments (numbers, UUIDs, long hex) with [^/]+')
    .addHelpText('after', EXAMPLES)
    .action(async (flags: GenerateFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      await runGenerateCommand(flags, processIO);
    });
}

export async function runGenerateCommand(flags: GenerateFlags, io: CommandIO): Promise<void> {
  const { parseFlowText, formatFlowIssue } = await import('../flow/read.ts');
  const gen = await import('../generate/generate.ts');
  let text: string;
  try {
    text = flags.from === '-' ? readFileSync(0, 'utf8') : readFileSync(flags.from, 'utf8');
  } catch (e) {
    io.stderr(`seawall generate: cannot read ${flags.from}: ${(e as Error).message}\n`);
    io.setExitCode(2);
    return;
  }
  const read = parseFlowText(flags.from, text);
  for (const i of read.issues) io.stderr(`${formatFlowIssue(i)}\n`);
  if (read.issues.length > 0) {
    io.setExitCode(2);
    return;
  }
  if (read.flows.length === 0) {
    io.stderr(`seawall generate: ${flags.from}: no flows\n`);
    io.setExitCode(2);
    return;
  }
  const r = gen.generatePolicies(read.flows, { generalizePaths: flags.generalizePaths === true });
  for (const w of r.warnings) io.stderr(`seawall generate: ${w}\n`);
  if (flags.output === '-') io.stdout(gen.formatPolicies(r.policies));
  else {
    try {
      mkdirSync(flags.output, { recursive: true });
      for (const p of r.policies) writeFileSync(join(flags.output, `${p.namespace}-${p.name}.yaml`), p.yaml);
    } catch (e) {
      io.stderr(`seawall generate: cannot write ${flags.output}: ${(e as Error).message}\n`);
      io.setExitCode(2);
      return;
    }
    io.stderr(`seawall generate: ${r.policies.length} policies written to ${flags.output}\n`);
  }
  io.stderr(`seawall generate: ${r.used} of ${r.total} records allowed by ${r.policies.length} policies\n`);
  io.setExitCode(0);
}
