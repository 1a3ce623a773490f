// `seawall exec NS/POD -- CMD...`: runs a program inside a pod's network namespace of a running
// agent (or an outside test host, by its address), so users can curl, dig or ping as that pod.

import { spawnSync } from 'node:child_process';
import type { Command } from 'commander';

export function registerExec(program: Command): void {
  program
    .command('exec')
    .description("run a program inside a pod's network namespace (a running agent's endpoints)")
    .argument('<endpoint>', 'NAMESPACE/NAME of a pod, or the IP of an outside test host')
    .argument('<command...>', 'the program and its arguments (after --)')
    .option('--node <name>', 'node namespace of the agent', 'seawall-node1')
    .addHelpText(
      'after',
      `
Examples:
  $ sudo seawall exec production/frontend -- curl -s http://10.0.2.10:8080/
  $ sudo seawall exec kube-system/coredns -- ss -lun
  $ sudo seawall exec 203.0.113.10 -- ip addr
`,
    )
    .action(async (endpoint: string, command: string[], o: { node: string }) => {
      const { liveUnavailable } = await import('../datapath/preflight.ts');
      const why = liveUnavailable();
      if (why) {
        process.stderr.write(`seawall exec: ${why}\n`);
        process.exitCode = 2;
        return;
      }
      const { readState, stateFileFor } = await import('../datapath/topology.ts');
      const state = readState(stateFileFor(o.node));
      if (!state) {
        process.stderr.write(
          `seawall exec: no agent state for node ${o.node}; is \`seawall agent\` running?\n`,
        );
        process.exitCode = 2;
        return;
      }
      const key = endpoint.includes('/') ? `pod:${endpoint}` : `ip:${endpoint}`;
      const host = state.hosts.find((h) => h.key === key || (key.startsWith('ip:') && h.ip === endpoint));
      if (!host) {
        const known = state.hosts.map((h) => h.key.replace(/^(pod|ip):/, '')).join(', ');
        process.stderr.write(`seawall exec: no endpoint ${endpoint} on node ${o.node} (known: ${known})\n`);
        process.exitCode = 2;
        return;
      }
      const r = spawnSync('ip', ['netns', 'exec', host.ns, ...command], { stdio: 'inherit' });
      if (r.error) {
        process.stderr.write(`seawall exec: ${r.error.message}\n`);
        process.exitCode = 2;
        return;
      }
      process.exitCode = r.status ?? 1;
    });
}
