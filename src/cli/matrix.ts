// `seawall matrix`: which endpoint may reach which, on one port/protocol (optionally one HTTP
// request), as a text grid, CSV, Markdown or Graphviz dot.

import { type Command, Option } from 'commander';
import type { CommandIO, ScenarioFlags } from '../policytest/cli-support.ts';
import type { MatrixFormat } from '../policytest/matrix.ts';
import { addScenarioOptions } from './scenario-options.ts';

export interface MatrixFlags extends ScenarioFlags {
  port?: string;
  protocol?: string;
  httpMethod?: string;
  httpPath?: string;
  output: MatrixFormat;
}

const EXAMPLES = `
Examples:
  # Who may reach whom on 8080/TCP, endpoints from a PolicyTest file
  $ seawall matrix -f tests/shop.policytest.yaml --port 8080

  # Workloads from manifests, policies from a directory, as Markdown for a pull request
  $ seawall matrix -f deploy/ --policies policies/ --port 80 -o markdown

  # One HTTP request on every pair
  $ seawall matrix -f tests/shop.yaml --port 8080 --http-method GET --http-path /healthz

  # DNS over UDP as CSV, and a Graphviz picture of the allowed edges
  $ seawall matrix -f tests/shop.yaml --port 53 --protocol UDP -o csv
  $ seawall matrix -f tests/shop.yaml --port 8080 -o dot | dot -Tsvg > matrix.svg
`;

export function registerMatrix(program: Command): void {
  addScenarioOptions(
    program
      .command('matrix')
      .description('connectivity matrix between all endpoints for one port and protocol'),
  )
    .option('--port <port>', 'destination port (required except for ICMP)')
    .option('--protocol <proto>', 'TCP | UDP | SCTP | ICMP | ICMPv6', 'TCP')
    .option('--http-method <method>', 'HTTP request method for every pair')
    .option('--http-path <path>', 'HTTP request path for every pair')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'csv', 'markdown', 'dot'])
        .default('text'),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: MatrixFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      await runMatrixCommand(flags, processIO);
    });
}

export async function runMatrixCommand(flags: MatrixFlags, io: CommandIO): Promise<void> {
  const cs = await import('../policytest/cli-support.ts');
  const mx = await import('../policytest/matrix.ts');
  try {
    const protocol = cs.parseProtocol(flags.protocol);
    const port = cs.parsePort(flags.port);
    if (port === undefined && protocol !== 'ICMP' && protocol !== 'ICMPv6') {
      throw new cs.UsageError(`a ${protocol} matrix needs --port`);
    }
    const l7 = cs.parseL7({
      ...(flags.httpMethod !== undefined ? { httpMethod: flags.httpMethod } : {}),
      ...(flags.httpPath !== undefined ? { httpPath: flags.httpPath } : {}),
    });
    const loaded = await cs.engineForScenario(flags, io);
    if (!loaded) {
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    const m = mx.buildMatrix(loaded.engine, loaded.scenario.endpoints, {
      protocol,
      ...(port !== undefined ? { port } : {}),
      ...(l7 ? { l7 } : {}),
    });
    io.stdout(mx.formatMatrix(m, flags.output));
    io.setExitCode(cs.EXIT.ok);
  } catch (e) {
    if (e instanceof cs.UsageError) {
      io.stderr(`seawall matrix: ${e.message}\n`);
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    throw e;
  }
}
