// Several nodes on one machine: an underlay namespace with one bridge that every node namespace
// joins by a veth (`ul0` in the node), as the nodes' shared L2 network. Each node keeps its address
// on lo (Topology), has it on ul0 too, and reaches the underlay subnet through ul0; the other nodes' pod CIDRs are
// routed via their node address, as a native-routing CNI does. The machine's own namespace and
// nftables are never touched: every interface lives in namespaces made here.
//
// The underlay namespace is recorded in a state file like a node's (no hosts), so `--cleanup`
// knows whose it is and a live run's underlay is never swept as a leftover. Several agents share
// one underlay and whichever came first made it, so the state file's pid says nothing about who
// still uses it: each node that joins leaves a reference (a file named after the node, holding its
// agent's pid, one file per node so two agents joining at once never lose each other's), and the
// underlay goes only when the last reference does (release) or, for `--cleanup`, when no
// referencing agent is alive any more.

import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatapathError, run } from './exec.ts';
import { removeLockFile, withFileLock } from './lock.ts';
import { addNetns, delNetns, ipBatch, netnsExists, ownedName } from './netns.ts';
import { pidAlive, STATE_DIR, stateFileFor, type TopologyState } from './topology.ts';

/** The nodes' addresses come from here: node k (1-based) is 172.31.254.k. */
export const UNDERLAY_SUBNET = '172.31.254.0/24';
export const UNDERLAY_DEV = 'ul0';

export function underlayNodeIp(k: number): string {
  if (!Number.isInteger(k) || k < 1 || k > 250)
    throw new DatapathError('bad-node-index', `node index ${k}: 1..250`);
  return `172.31.254.${k}`;
}

const BRIDGE = 'br0';

/** The references of an underlay's users: one file per node, its agent's pid inside. */
export function underlayUsersDir(name: string): string {
  return join(STATE_DIR, `underlay-${name}.users`);
}

/** The file of the lock that joining and releasing an underlay hold. */
export function underlayLockFile(name: string): string {
  return join(STATE_DIR, `underlay-${name}.lock`);
}

export interface UnderlayUser {
  node: string;
  pid: number;
  alive: boolean;
}

/** The nodes that hold a reference on an underlay (a reference left by a dead agent: alive false). */
export function underlayUsers(name: string): UnderlayUser[] {
  const dir = underlayUsersDir(name);
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return [];
  }
  const out: UnderlayUser[] = [];
  for (const node of files) {
    if (node.startsWith('.')) continue; // a reference being written
    let pid = Number.NaN;
    try {
      pid = Number(readFileSync(join(dir, node), 'utf8').trim());
    } catch {
      continue; // removed meanwhile
    }
    out.push({ node, pid, alive: Number.isInteger(pid) && pid > 0 && pidAlive(pid) });
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

/** An underlay state file (`extra.underlay`) that some live agent still references. */
export function underlayInUse(st: TopologyState): boolean {
  return st.extra?.underlay === true && underlayUsers(st.node).some((u) => u.alive);
}

function portName(node: string): string {
  return `ulp${createHash('sha256').update(node).digest('hex').slice(0, 10)}`;
}

export class Underlay {
  readonly stateFile: string;

  constructor(readonly name: string) {
    if (!ownedName(name) || name.length > 40)
      throw new DatapathError(
        'bad-node-name',
        `underlay name ${JSON.stringify(name)}: must start with seawall- or sw-`,
      );
    this.stateFile = stateFileFor(name);
  }

  /**
   * A node joins: the underlay made if missing, then attached. Agents of several nodes start at
   * once, so this holds the underlay's lock: otherwise both find no namespace and the second
   * `ip netns add` fails, or replaces the bridge the first one just made.
   */
  async join(node: string, nodeIp: string): Promise<void> {
    await withFileLock(underlayLockFile(this.name), async () => {
      await this.up();
      await this.attach(node, nodeIp);
    });
  }

  /** Creates the bridge namespace, or uses it when another node's agent made it already. */
  async up(): Promise<void> {
    if (netnsExists(this.name)) {
      const r = await run('ip', ['-n', this.name, 'link', 'show', BRIDGE]);
      if (r.code === 0) return;
    }
    this.save();
    await addNetns(this.name);
    await ipBatch(this.name, [`link add ${BRIDGE} type bridge`, `link set ${BRIDGE} up`]);
  }

  /** Joins a node namespace (after Topology.up made it and put its address on lo). */
  async attach(node: string, nodeIp: string): Promise<void> {
    const port = portName(node);
    // the reference first: from here on no other agent's release or --cleanup removes the bridge
    this.reference(node);
    if ((await run('ip', ['-n', node, 'link', 'show', UNDERLAY_DEV])).code === 0) return; // adopted
    await run('ip', ['-n', this.name, 'link', 'del', port]); // a leftover of a dead node
    await ipBatch(node, [
      `link add ${UNDERLAY_DEV} type veth peer name ${port} netns ${this.name}`,
      // Also on ul0: ARP for a forwarded pod packet takes its sender address from the outgoing
      // device, and without one there Linux picks the pod gateway (169.254.1.1, on every node's
      // lo), which the other node drops as its own address.
      `addr add ${nodeIp}/32 dev ${UNDERLAY_DEV}`,
      `link set ${UNDERLAY_DEV} up`,
      `route add ${UNDERLAY_SUBNET} dev ${UNDERLAY_DEV} src ${nodeIp}`,
    ]);
    await ipBatch(this.name, [`link set ${port} master ${BRIDGE}`, `link set ${port} up`]);
    // A new bridge port carries nothing until both veth ends report carrier (about a second):
    // the node counts as joined only then, so first packets are not lost to the link coming up.
    const end = Date.now() + 10_000;
    for (;;) {
      const a = await run('ip', ['-n', this.name, '-br', 'link', 'show', port]);
      const b = await run('ip', ['-n', node, '-br', 'link', 'show', UNDERLAY_DEV]);
      const up = (out: string): boolean => out.trim().split(/\s+/)[1] === 'UP'; // operstate column
      if (up(a.stdout) && up(b.stdout)) break;
      if (Date.now() > end)
        throw new DatapathError('underlay-link', `${node}: underlay link not up after 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Removes a node's port (its namespace going takes ul0 with it anyway) and its reference. */
  async detach(node: string): Promise<void> {
    await run('ip', ['-n', this.name, 'link', 'del', portName(node)]);
    rmSync(join(underlayUsersDir(this.name), node), { force: true });
  }

  /**
   * A node leaves: its port and reference go, and the underlay with them when no other node
   * references it (a dead agent's reference does not count). Returns whether the underlay went.
   */
  async release(node: string): Promise<boolean> {
    // under the lock: a node joining meanwhile holds its reference before the last one looks
    return withFileLock(underlayLockFile(this.name), async () => {
      await this.detach(node);
      return this.downIfUnused();
    });
  }

  /** Deletes the underlay when no live agent references it (a run that failed before attach). */
  async downIfUnused(): Promise<boolean> {
    if (underlayUsers(this.name).some((u) => u.alive)) return false;
    await this.down();
    return true;
  }

  /**
   * Deletes the bridge namespace, its state file, its references and its lock's file, whoever
   * still uses it (release() calls it holding the lock; a node joining then takes a new one).
   */
  async down(): Promise<void> {
    await delNetns(this.name);
    rmSync(this.stateFile, { force: true });
    rmSync(underlayUsersDir(this.name), { recursive: true, force: true });
    removeLockFile(underlayLockFile(this.name));
  }

  /** This process's reference for a node (replacing one a dead agent of that node left). */
  private reference(node: string): void {
    const dir = underlayUsersDir(this.name);
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.${node}.${process.pid}.tmp`);
    writeFileSync(tmp, `${process.pid}\n`);
    renameSync(tmp, join(dir, node));
  }

  private save(): void {
    const st: TopologyState = {
      node: this.name,
      nodeIp: '',
      pid: process.pid,
      hosts: [],
      extra: { underlay: true },
    };
    mkdirSync(dirname(this.stateFile), { recursive: true });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(st, null, 2));
    renameSync(tmp, this.stateFile);
  }
}

/**
 * A route in a node namespace to another node's pods (`cidr` via its node address), from the
 * node's own address (ul0 has none: the kernel would pick the gateway's).
 */
export async function routePods(node: string, cidr: string, via: string, src: string): Promise<void> {
  await ipBatch(node, [`route replace ${cidr} via ${via} dev ${UNDERLAY_DEV} onlink src ${src}`]);
}

export async function unroutePods(node: string, cidr: string): Promise<void> {
  await run('ip', ['-n', node, 'route', 'del', cidr, 'dev', UNDERLAY_DEV]);
}
