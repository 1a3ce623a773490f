// The node and its workloads as network namespaces. One node namespace (`seawall-node1`) routes
// between pods (one namespace each, a veth into the node, a /32 and a default route via a
// link-local gateway, Calico-style) and test hosts standing for the outside world, the remote
// node and the API server. The node namespace is `reserved:host`. Names derive from a hash of
// node + key so they never collide, and every name made is recorded in a state file so that a
// crashed run can be cleaned up. A later issue adds node2 as a second Topology joined by a link.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatapathError, must, run } from './exec.ts';
import { addNetns, delNetns, ipBatch, netnsExists, sysctl } from './netns.ts';
import { PROXY_RETURN_MARK, PROXY_RETURN_MASK, PROXY_ROUTE_TABLE, PROXY_RULE_PREF } from './nft/compile.ts';

export const DEFAULT_NODE = 'seawall-node1';
export const STATE_DIR = '/run/seawall';

/** A state file's owner still runs (EPERM: it runs as another user; this process always runs). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
/**
 * Ephemeral ports of the node namespace (its proxies' upstream sockets), apart from the pods'
 * (Linux's default 32768-60999). An upstream leaves from the pod's own address; were its port the
 * one the pod's redirected connection used, both would have one conntrack tuple and the upstream
 * would be taken for the pod's connection (DNAT'd back to the proxy).
 */
export const NODE_PORT_RANGE = '61000 65535';

/** The proxies' return path in a node namespace (nft/compile.ts PROXY_RETURN_MARK says why). */
export const PROXY_RETURN_RULE = [
  'fwmark',
  `0x${PROXY_RETURN_MARK.toString(16)}/0x${PROXY_RETURN_MASK.toString(16)}`,
  'lookup',
  String(PROXY_ROUTE_TABLE),
  'pref',
  String(PROXY_RULE_PREF),
];

/**
 * Installs the return path in the node namespace `ns` (never the machine's own: every command
 * names it). Idempotent: an adopted namespace may have it already. IPv4 only, as the datapath.
 */
export async function proxyReturnPath(ns: string): Promise<void> {
  await sysctl(ns, 'net.ipv4.ip_local_port_range', NODE_PORT_RANGE);
  await ipBatch(ns, [`route replace local 0.0.0.0/0 dev lo table ${PROXY_ROUTE_TABLE}`]);
  const rules = await must('ip', ['-n', ns, 'rule', 'show', 'pref', String(PROXY_RULE_PREF)]);
  if (!rules.includes(`lookup ${PROXY_ROUTE_TABLE}`))
    await must('ip', ['-n', ns, 'rule', 'add', ...PROXY_RETURN_RULE]);
}

/** The pods' default gateway: answered by the node itself (address on the node's lo). */
export const GATEWAY_IP = '169.254.1.1';
export const DEFAULT_NODE_IP = '172.31.255.1';

export function stateFileFor(node: string): string {
  return node === DEFAULT_NODE ? `${STATE_DIR}/state.json` : `${STATE_DIR}/state-${node}.json`;
}

export interface HostRecord {
  /** What the host stands for: `pod:ns/name`, `ip:1.2.3.4`, `entity:world`, ... */
  key: string;
  ns: string;
  veth: string;
  ip: string;
}

export interface TopologyState {
  node: string;
  nodeIp: string;
  pid: number;
  hosts: HostRecord[];
  /** Extra facts owners record (the agent's endpoint ids), opaque here. */
  extra?: Record<string, unknown>;
}

export interface TopologyOptions {
  node?: string;
  nodeIp?: string;
  stateFile?: string;
}

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 10);
}

export class Topology {
  readonly node: string;
  readonly nodeIp: string;
  readonly stateFile: string;
  private readonly hosts = new Map<string, HostRecord>();
  /** Hosts an earlier run of this node recorded: adopted by up({adopt}), else removed. */
  private previous: HostRecord[];
  extra: Record<string, unknown> = {};

  constructor(opts: TopologyOptions = {}) {
    this.node = opts.node ?? DEFAULT_NODE;
    this.nodeIp = opts.nodeIp ?? DEFAULT_NODE_IP;
    this.stateFile = opts.stateFile ?? stateFileFor(this.node);
    this.previous = readState(this.stateFile)?.hosts ?? [];
  }

  get records(): HostRecord[] {
    return [...this.hosts.values()];
  }

  host(key: string): HostRecord | undefined {
    return this.hosts.get(key);
  }

  hostByIp(ip: string): HostRecord | undefined {
    for (const h of this.hosts.values()) if (h.ip === ip) return h;
    return undefined;
  }

  /** Creates the node namespace: forwarding on, the gateway and node addresses on its lo. */
  async up(opts: { adopt?: boolean } = {}): Promise<void> {
    if (opts.adopt && netnsExists(this.node)) {
      // A crashed run of ours: keep its namespaces (their traffic stays under the old table)
      // and take over the hosts that still exist.
      for (const h of this.previous) if (netnsExists(h.ns)) this.hosts.set(h.key, h);
      this.previous = [];
      this.save();
      await proxyReturnPath(this.node); // a namespace made before the return path existed
      return;
    }
    for (const h of this.previous) await delNetns(h.ns);
    this.previous = [];
    this.save();
    await addNetns(this.node);
    await sysctl(this.node, 'net.ipv4.ip_forward', '1');
    await sysctl(this.node, 'net.ipv4.conf.all.rp_filter', '0');
    await sysctl(this.node, 'net.ipv4.conf.default.rp_filter', '0');
    await ipBatch(this.node, [`addr add ${GATEWAY_IP}/32 dev lo`, `addr add ${this.nodeIp}/32 dev lo`]);
    await proxyReturnPath(this.node);
  }

  /** Namespace name for a key: collision-safe across nodes and runs of different nodes. */
  nsName(key: string): string {
    return `sw-${shortHash(`${this.node}|${key}`)}`;
  }

  /** The host's veth in the node namespace (known before the host exists: policy goes first). */
  vethName(key: string): string {
    return `swv${this.nsName(key).slice(3)}`;
  }

  /** Adds a host (pod or test host) with one address behind the node. */
  async addHost(key: string, ip: string): Promise<HostRecord> {
    const had = this.hosts.get(key);
    if (had && had.ip === ip) return had; // adopted
    if (had) await this.removeHost(key);
    if (ip === this.nodeIp || ip === GATEWAY_IP || this.hostByIp(ip)) {
      throw new DatapathError('ip-in-use', `address ${ip} of ${key} is already used on ${this.node}`);
    }
    const ns = this.nsName(key);
    const veth = this.vethName(key);
    const rec: HostRecord = { key, ns, veth, ip };
    this.hosts.set(key, rec);
    this.save();
    await addNetns(ns);
    await ipBatch(this.node, [
      `link add ${veth} type veth peer name eth0 netns ${ns}`,
      `link set ${veth} up`,
      `route add ${ip}/32 dev ${veth} src ${this.nodeIp}`,
    ]);
    await ipBatch(ns, [
      `addr add ${ip}/32 dev eth0`,
      'link set eth0 up',
      `route add ${GATEWAY_IP}/32 dev eth0 scope link`,
      `route add default via ${GATEWAY_IP} dev eth0`,
    ]);
    return rec;
  }

  async removeHost(key: string): Promise<void> {
    const h = this.hosts.get(key);
    if (!h) return;
    // Deleting the veth destroys both ends now; a deleted namespace frees its veth only later
    // (asynchronously in the kernel), and re-adding the same host would then find the name taken.
    await run('ip', ['-n', this.node, 'link', 'del', h.veth]);
    await delNetns(h.ns);
    this.hosts.delete(key);
    this.save();
  }

  /** Removes every namespace this topology made, then its state file. */
  async down(): Promise<void> {
    await Promise.all([...this.hosts.values()].map((h) => delNetns(h.ns)));
    this.hosts.clear();
    await delNetns(this.node);
    rmSync(this.stateFile, { force: true });
  }

  private save(): void {
    const st: TopologyState = {
      node: this.node,
      nodeIp: this.nodeIp,
      pid: process.pid,
      // until up() decides, an earlier run's hosts stay recorded (for --cleanup)
      hosts: [...this.previous.filter((h) => !this.hosts.has(h.key)), ...this.records],
      extra: this.extra,
    };
    mkdirSync(dirname(this.stateFile), { recursive: true });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(st, null, 2));
    renameSync(tmp, this.stateFile);
  }

  persist(): void {
    this.save();
  }
}

/** The state file, or undefined when it is missing or not of our shape (cleanup then removes it). */
export function readState(file: string): TopologyState | undefined {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  const st = v as Partial<TopologyState> | null;
  const hostOk = (h: unknown): boolean => {
    const r = h as Partial<HostRecord> | null;
    return (
      typeof r === 'object' &&
      r !== null &&
      typeof r.key === 'string' &&
      typeof r.ns === 'string' &&
      typeof r.veth === 'string' &&
      typeof r.ip === 'string'
    );
  };
  if (
    typeof st !== 'object' ||
    st === null ||
    typeof st.node !== 'string' ||
    typeof st.nodeIp !== 'string' ||
    typeof st.pid !== 'number' ||
    !Array.isArray(st.hosts) ||
    !st.hosts.every(hostOk)
  ) {
    return undefined;
  }
  return st as TopologyState;
}

export function nodeExists(node: string): boolean {
  return netnsExists(node);
}

/** The node's run directory: its flow log, ulogd files and sockets. */
export function runDirFor(node: string): string {
  return join(STATE_DIR, node);
}
