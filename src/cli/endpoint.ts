// `seawall endpoint config NAMESPACE/POD [Option=Value...]`: a running agent's per-endpoint options,
// as `cilium-dbg endpoint config`. Without options it prints them; with PolicyAuditMode=Enabled the
// endpoint's policy drops pass as AUDIT verdicts (Disabled: enforced again). The agent answers once
// the kernel enforces the new mode.

import type { Command } from 'commander';

export function registerEndpoint(program: Command): void {
  const endpoint = program.command('endpoint').description("a running agent's endpoints");
  endpoint
    .command('config')
    .description('show or set per-endpoint options (PolicyAuditMode=Enabled|Disabled)')
    .argument('<endpoint>', 'NAMESPACE/POD')
    .argument('[options...]', 'Option=Value: PolicyAuditMode=Enabled or PolicyAuditMode=Disabled')
    .option('--node <name>', 'the node whose agent to ask (its socket is /run/seawall/<node>/agent.sock)')
    .option('--socket <path>', 'unix socket of the status API (overrides --node)')
    .option('-o, --output <format>', 'human | json', 'human')
    .addHelpText(
      'after',
      `
Examples:
  # Let everything through for shop/api, reporting what policy would drop as AUDIT
  $ sudo seawall endpoint config shop/api PolicyAuditMode=Enabled
  $ sudo seawall observe --verdict AUDIT

  # Enforce again; show the options in effect
  $ sudo seawall endpoint config shop/api PolicyAuditMode=Disabled
  $ sudo seawall endpoint config shop/api
`,
    )
    .action(async (ref: string, args: string[], o: { node?: string; socket?: string; output: string }) => {
      const { defaultSocket } = await import('../agent/agent.ts');
      const { endpointConfig, parseOptionArgs } = await import('../agent/endpoint-config.ts');
      try {
        parseOptionArgs(args); // refused here, before asking the agent
        if (!/^[^/]+\/[^/]+$/.test(ref)) throw new Error(`${JSON.stringify(ref)}: write NAMESPACE/POD`);
      } catch (e) {
        process.stderr.write(`seawall endpoint config: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      try {
        const c = await endpointConfig(o.socket ?? defaultSocket(o.node), ref, args);
        process.stdout.write(
          o.output === 'json'
            ? `${JSON.stringify(c, null, 2)}\n`
            : Object.entries(c.options)
                .map(([k, v]) => `${k}=${v}\n`)
                .join(''),
        );
      } catch (e) {
        process.stderr.write(`seawall endpoint config: ${(e as Error).message}\n`);
        process.exitCode = 2;
      }
    });
}
