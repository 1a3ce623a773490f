// The options every scenario command (trace, matrix, policy show) shares: where endpoints and
// policies come from, which PolicyTest, the enforcement mode and audit mode.

import type { Command } from 'commander';

export const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

export function addScenarioOptions(cmd: Command): Command {
  return cmd
    .option(
      '-f, --file <path>',
      'PolicyTest file, or Kubernetes manifests (file or directory); repeatable',
      collect,
    )
    .option('--policies <path>', 'policy file or directory; repeatable', collect)
    .option('--test <name>', 'which PolicyTest of a multi-document file (default: the first)')
    .option('--enforcement-mode <mode>', 'default | always | never (overrides the PolicyTest config)')
    .option('--policy-audit-mode', 'every endpoint in PolicyAuditMode: what policy would drop is AUDIT');
}
