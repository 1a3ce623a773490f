// `seawall agent`: runs the node agent (--policies DIR --endpoints FILE|DIR), `seawall agent
// status` asks a running agent what it enforces, `seawall agent --cleanup` removes what a
// crashed run left behind. Linux and root only; says so otherwise.

import type { Command } from 'commander';

export function registerAgent(program: Command): void {
  const agent = program
    .command('agent')
    .description('enforce policies on this machine (network namespaces + nftables)')
    .option('--policies <dir>', 'directory of policy YAML, watched and re-applied on change')
    .option('--endpoints <path>', 'PolicyTest file(s) or Kubernetes Pod/Namespace manifests')
    .option('--node <name>', 'node namespace name', 'seawall-node1')
    .option('--socket <path>', 'unix socket of the status API')
    .option('--cleanup', 'remove namespaces and tables left by a crashed run, then exit')
    .option('--force', 'with --cleanup: also remove what live runs hold')
    .action(
      async (o: {
        policies?: string;
        endpoints?: string;
        node: string;
        socket?: string;
        cleanup?: boolean;
        force?: boolean;
      }) => {
        const { liveUnavailable } = await import('../datapath/preflight.ts');
        const why = liveUnavailable();
        if (why) {
          process.stderr.write(`seawall agent: ${why}\n`);
          process.exitCode = 2;
          return;
        }
        if (o.cleanup) {
          const { cleanup } = await import('../datapath/cleanup.ts');
          const r = await cleanup({ all: o.force === true });
          process.stdout.write(
            r.removed.length > 0 ? `removed: ${r.removed.join(' ')}\n` : 'nothing to clean up\n',
          );
          for (const k of r.keptLive) process.stdout.write(`kept (agent running): ${k}\n`);
          return;
        }
        if (!o.policies || !o.endpoints) {
          process.stderr.write('seawall agent: --policies DIR and --endpoints FILE|DIR are required\n');
          process.exitCode = 2;
          return;
        }
        const { Agent } = await import('../datapath/agent.ts');
        const a = new Agent({
          policies: o.policies,
          endpoints: o.endpoints,
          node: o.node,
          ...(o.socket ? { socket: o.socket } : {}),
        });
        await a.start();
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            void a.stop().finally(resolve);
          };
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
      },
    );
  agent
    .command('status')
    .description('what a running agent enforces')
    .option('--socket <path>', 'unix socket of the status API')
    .option('-o, --output <format>', 'human | json', 'human')
    .action(async (o: { socket?: string; output: string }) => {
      const { fetchStatus, DEFAULT_SOCKET } = await import('../datapath/agent.ts');
      let s: Awaited<ReturnType<typeof fetchStatus>>;
      try {
        s = await fetchStatus(o.socket ?? DEFAULT_SOCKET);
      } catch (e) {
        process.stderr.write(`seawall agent status: ${(e as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      if (o.output === 'json') {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [
        `node ${s.node} (agent pid ${s.pid}): ${s.counts.endpoints} endpoints, ${s.counts.ipcache} identities in the ipcache, ${s.counts.elements} policy set elements, ${s.applies} applies`,
        `policies: ${s.policies.length === 0 ? '(none)' : s.policies.join(', ')}`,
      ];
      for (const f of s.invalidFiles)
        lines.push(`invalid (last good state kept): ${f.file}: ${f.issues.join('; ')}`);
      for (const e of s.endpoints) {
        lines.push(
          `  #${e.id} ${e.endpoint} ${e.ip} identity ${e.identity}: ingress ${e.ingress}, egress ${e.egress}, ${e.entries} entries`,
        );
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
