// `seawall agent --cleanup`: removes what crashed runs left behind: the namespaces recorded in
// state files whose owner is gone (the nft table lives in the node namespace and goes with it),
// and any other namespace with a Seawall prefix that no live run claims. Processes still running
// inside those namespaces (ulogd2, probe workers, servers started with `seawall exec`) are
// stopped first: they would keep a deleted namespace, and its table, alive. A node's run dir
// loses its transient files (ulogd's raw output, config, pid file, socket); the flow log stays.

import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { delNetns, listNetns, netnsPids, ownedName } from './netns.ts';
import { pidAlive, readState, runDirFor, STATE_DIR, stateFileFor } from './topology.ts';
import { stopStaleUlogd } from './ulogd.ts';
import { underlayInUse, underlayLockFile, underlayUsersDir } from './underlay.ts';

/** Files of a node's run dir that only a running pipeline needs. */
const TRANSIENT = ['ulogd.pid', 'ulogd.conf', 'flows.json', 'flows.json.1', 'hubble.sock', 'flows.sock'];

/** Stops what runs inside, deletes the namespace, and tidies its run dir if it was a node. */
async function remove(ns: string): Promise<void> {
  // ulogd by its pid file first (it is ours for sure), then whatever else still runs inside
  stopStaleUlogd(runDirFor(ns));
  for (const pid of await netnsPids(ns)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone already
    }
  }
  await delNetns(ns);
  const dir = runDirFor(ns);
  for (const f of TRANSIENT) rmSync(join(dir, f), { force: true });
  try {
    rmdirSync(dir); // only when nothing (no flow log) is left
  } catch {
    // not there, or the flow log stays
  }
}

export interface CleanupReport {
  removed: string[];
  keptLive: string[];
}

/**
 * `all`: also remove what live runs claim (used by `--cleanup --force`). `node`: only that node's
 * run (its state file's namespaces and the node namespace), never another node's leftovers.
 */
export async function cleanup(opts: { all?: boolean; node?: string } = {}): Promise<CleanupReport> {
  const claimed = new Set<string>();
  const removed: string[] = [];
  const keptLive: string[] = [];
  let files: string[] = [];
  try {
    const only = opts.node !== undefined ? basename(stateFileFor(opts.node)) : undefined;
    files = readdirSync(STATE_DIR).filter(
      (f) => f.startsWith('state') && f.endsWith('.json') && (only === undefined || f === only),
    );
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
    // an underlay is live while any node's agent references it, not only while its maker runs
    if (!opts.all && (pidAlive(st.pid) || underlayInUse(st))) {
      for (const n of names) claimed.add(n);
      keptLive.push(`${st.node} (pid ${st.pid})`);
      continue;
    }
    for (const n of names) {
      if (!ownedName(n)) continue;
      await remove(n);
      removed.push(n);
    }
    rmSync(path, { force: true });
    if (st.extra?.underlay === true) {
      rmSync(underlayUsersDir(st.node), { recursive: true, force: true });
      rmSync(underlayLockFile(st.node), { force: true });
    }
  }
  for (const n of await listNetns()) {
    if (opts.node !== undefined && n !== opts.node) continue;
    if (ownedName(n) && !claimed.has(n) && !removed.includes(n)) {
      await remove(n);
      removed.push(n);
    }
  }
  return { removed, keptLive };
}
