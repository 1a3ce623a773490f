// `seawall policy show NS/NAME`: the endpoint's resolved policy in both directions (what the
// datapath and proxies enforce), with the rules each entry came from.

import { type Command, Option } from 'commander';
import type { CommandIO, ScenarioFlags } from '../policytest/cli-support.ts';
import { addScenarioOptions } from './scenario-options.ts';

export interface PolicyShowFlags extends ScenarioFlags {
  output: 'human' | 'json';
}

const EXAMPLES = `
Examples:
  # The resolved ingress and egress policy of one pod, endpoints from a PolicyTest file
  $ seawall policy show shop/backend -f tests/shop.policytest.yaml

  # Workloads from manifests, policies from a directory
  $ seawall policy show shop/backend -f deploy/ --policies policies/

  # The MapState entries as JSON
  $ seawall policy show shop/backend -f tests/shop.yaml -o json
`;

export function registerPolicyShow(program: Command): void {
  // `policy` is a command group; another module may have created it already.
  const group =
    program.commands.find((c) => c.name() === 'policy') ??
    program.command('policy').description('inspect policies as the engine resolves them');
  addScenarioOptions(
    group
      .command('show')
      .description("show an endpoint's resolved policy in both directions")
      .argument('<endpoint>', 'NAMESPACE/NAME (or NAME when unique)'),
  )
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['human', 'json']).default('human'),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (endpoint: string, flags: PolicyShowFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      await runPolicyShowCommand(endpoint, flags, processIO);
    });
}

export async function runPolicyShowCommand(
  endpoint: string,
  flags: PolicyShowFlags,
  io: CommandIO,
): Promise<void> {
  const cs = await import('../policytest/cli-support.ts');
  const { explainEndpointPolicy } = await import('../policy/explain.ts');
  try {
    const loaded = await cs.engineForScenario(flags, io);
    if (!loaded) {
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    const eps = loaded.scenario.endpoints.filter((e) =>
      endpoint.includes('/') ? `${e.namespace}/${e.name}` === endpoint : e.name === endpoint && !e.external,
    );
    if (eps.length !== 1 || eps[0]!.external || eps[0]!.namespace === undefined) {
      const known = loaded.scenario.endpoints
        .filter((e) => !e.external)
        .map((e) => `${e.namespace}/${e.name}`);
      throw new cs.UsageError(
        eps.length > 1
          ? `"${endpoint}" names several endpoints; write NAMESPACE/NAME`
          : `no pod ${endpoint} (known: ${known.join(', ') || 'none'})`,
      );
    }
    const ep = eps[0]!;
    const policy = loaded.engine.endpointPolicy(ep.namespace, ep.name);
    io.stdout(
      flags.output === 'json'
        ? `${JSON.stringify(policy, null, 2)}\n`
        : `${explainEndpointPolicy(policy, loaded.engine).join('\n')}\n`,
    );
    io.setExitCode(cs.EXIT.ok);
  } catch (e) {
    if (e instanceof cs.UsageError) {
      io.stderr(`seawall policy show: ${e.message}\n`);
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    throw e;
  }
}
