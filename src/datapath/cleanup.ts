// `seawall agent --cleanup`: removes what crashed runs left behind: the namespaces recorded in
// state files whose owner is gone (the nft table lives in the node namespace and goes with it),
// and any other namespace with a Seawall prefix that no live run claims.

import { readdirSync, rmSync } from 'node:fs';
import { runDirFor, stopStaleUlogd } from './flows.ts';
import { delNetns, listNetns, ownedName } from './netns.ts';
import { readState, STATE_DIR } from './topology.ts';

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface CleanupReport {
  removed: string[];
  keptLive: string[];
}

/** `all`: also remove what live runs claim (used by `--cleanup --force`). */
export async function cleanup(opts: { all?: boolean } = {}): Promise<CleanupReport> {
  const claimed = new Set<string>();
  const removed: string[] = [];
  const keptLive: string[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(STATE_DIR).filter((f) => f.startsWith('state') && f.endsWith('.json'));
  } catch {
    files = [];
  }
  for (const f of files) {
    const path = `${STATE_DIR}/${f}`;
    const st = readState(path);
    if (!st) {
      rmSync(path, { force: true });
      continue;
    }
    const names = [st.node, ...st.hosts.map((h) => h.ns)];
    if (!opts.all && alive(st.pid)) {
      for (const n of names) claimed.add(n);
      keptLive.push(`${st.node} (pid ${st.pid})`);
      continue;
    }
    // A SIGKILLed agent leaves its ulogd behind in the node namespace: stop it first.
    stopStaleUlogd(runDirFor(st.node));
    for (const n of names) {
      if (!ownedName(n)) continue;
      await delNetns(n);
      removed.push(n);
    }
    rmSync(path, { force: true });
  }
  for (const n of await listNetns()) {
    if (ownedName(n) && !claimed.has(n) && !removed.includes(n)) {
      await delNetns(n);
      removed.push(n);
    }
  }
  return { removed, keptLive };
}
