// `seawall trace`: one flow explained step by step (identities, FQDN learning, egress, ingress,
// L7, verdict). Endpoints come from a PolicyTest file or Kubernetes manifests (-f).

import { type Command, Option } from 'commander';
import type { CommandIO, L7Flags, ScenarioFlags } from '../policytest/cli-support.ts';
import { addScenarioOptions, collect as collectOpt } from './scenario-options.ts';

export interface TraceFlags extends ScenarioFlags, L7Flags {
  fromPod?: string;
  fromIp?: string;
  fromEntity?: string;
  toPod?: string;
  toIp?: string;
  toFqdn?: string;
  toEntity?: string;
  port?: string;
  protocol?: string;
  icmpType?: string;
  output: 'human' | 'json';
}

const EXAMPLES = `
Examples:
  # Why may (or may not) frontend call backend on 8080? Endpoints from a PolicyTest file
  $ seawall trace -f tests/shop.policytest.yaml --from-pod shop/frontend --to-pod shop/backend --port 8080

  # With workloads from manifests and policies from a directory, one HTTP request
  $ seawall trace -f deploy/ --policies policies/ --from-pod shop/frontend --to-pod shop/backend \\
      --port 8080 --http-method GET --http-path /api/v1/users --http-header 'X-User: 42'

  # Egress to an FQDN (resolved through the PolicyTest's dns records; toFQDNs needs a DNS rule)
  $ seawall trace -f tests/egress.yaml --from-pod shop/frontend --to-fqdn api.github.com --port 443

  # A CIDR peer, and an entity
  $ seawall trace -f tests/shop.yaml --from-ip 203.0.113.9 --to-pod shop/frontend --port 443
  $ seawall trace -f tests/shop.yaml --from-pod ops/agent --to-entity kube-apiserver --port 6443

  # A DNS query through a DNS rule, as JSON
  $ seawall trace -f tests/egress.yaml --from-pod shop/frontend --to-pod kube-system/coredns \\
      --port 53 --protocol UDP --dns-query api.github.com -o json
`;

export function registerTrace(program: Command): void {
  addScenarioOptions(
    program
      .command('trace')
      .description('explain one flow step by step: identities, egress and ingress rules, L7, verdict'),
  )
    .option('--from-pod <ns/name>', 'source pod')
    .option('--from-ip <ip>', 'source address (an endpoint owning it, or a CIDR identity)')
    .option('--from-entity <entity>', 'source entity: world | host | remote-node | kube-apiserver')
    .option('--to-pod <ns/name>', 'destination pod')
    .option('--to-ip <ip>', 'destination address')
    .option('--to-fqdn <name>', 'destination DNS name (resolved through the PolicyTest dns records)')
    .option('--to-entity <entity>', 'destination entity: world | host | remote-node | kube-apiserver')
    .option('--port <port>', 'destination port')
    .option('--protocol <proto>', 'TCP | UDP | SCTP | ICMP | ICMPv6', 'TCP')
    .option('--icmp-type <type>', 'ICMP type (default echo request)')
    .option('--http-method <method>', 'HTTP request method')
    .option('--http-path <path>', 'HTTP request path')
    .option('--http-host <host>', 'HTTP Host header')
    .option('--http-header <header>', "HTTP header 'Name: value'; repeatable", collectOpt)
    .option('--dns-query <name>', 'a DNS query carried by the flow')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['human', 'json']).default('human'),
    )
    .addHelpText('after', EXAMPLES)
    .action(async (flags: TraceFlags) => {
      const { processIO } = await import('../policytest/cli-support.ts');
      await runTraceCommand(flags, processIO);
    });
}

export async function runTraceCommand(flags: TraceFlags, io: CommandIO): Promise<void> {
  const cs = await import('../policytest/cli-support.ts');
  const tr = await import('../policytest/trace.ts');
  try {
    const protocol = cs.parseProtocol(flags.protocol);
    const port = cs.parsePort(flags.port);
    const l7 = cs.parseL7(flags);
    let icmpType: number | undefined;
    if (flags.icmpType !== undefined) {
      if (!/^\d+$/.test(flags.icmpType) || Number(flags.icmpType) > 255)
        throw new cs.UsageError('--icmp-type must be 0-255');
      icmpType = Number(flags.icmpType);
    }
    const loaded = await cs.engineForScenario(flags, io);
    if (!loaded) {
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    const pick = <T extends object>(o: T): T =>
      Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    const input: import('../policytest/trace.ts').TraceInput = {
      from: pick({
        pod: flags.fromPod,
        ip: flags.fromIp,
        entity: flags.fromEntity,
      }) as import('../policytest/trace.ts').PeerInput,
      to: pick({
        pod: flags.toPod,
        ip: flags.toIp,
        fqdn: flags.toFqdn,
        entity: flags.toEntity,
      }) as import('../policytest/trace.ts').PeerInput,
      protocol,
    };
    if (port !== undefined) input.port = port;
    if (icmpType !== undefined) input.icmpType = icmpType;
    if (l7) input.l7 = l7;
    const result = tr.trace(loaded.engine, loaded.scenario, input);
    io.stdout(flags.output === 'json' ? `${JSON.stringify(result, null, 2)}\n` : tr.formatTrace(result));
    io.setExitCode(cs.EXIT.ok);
  } catch (e) {
    if (e instanceof cs.UsageError || e instanceof tr.TraceError) {
      io.stderr(`seawall trace: ${e.message}\n`);
      io.setExitCode(cs.EXIT.invalid);
      return;
    }
    throw e;
  }
}
