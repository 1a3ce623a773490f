// What the live datapath needs from the machine, said in one sentence when it is missing.

import { execFileSync } from 'node:child_process';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Undefined when live enforcement can run here; else what is missing. */
export function liveUnavailable(tools: readonly string[] = ['ip', 'nft']): string | undefined {
  if (process.platform !== 'linux') return `the live datapath needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'the live datapath needs root (network namespaces and nftables)';
  const missing = tools.filter((t) => !has(t));
  if (missing.length > 0) {
    return `the live datapath needs ${missing.join(', ')} (apt-get install -y nftables iproute2 iputils-ping)`;
  }
  return undefined;
}
