// One node runtime: the engine's view enforced by a NodeDatapath (namespaces + nftables), the flow
// pipeline (ulogd2 → Hubble records) and the node's other components (the agent's status API and
// policy watcher; proxies later), with the one bring-up and the one tear-down every user shares:
// `seawall agent`, `seawall demo`, `seawall test --live` and the datapath bench.
//
// Bring-up (fail closed): peers are declared to the datapath first (their policy and ipcache
// entries compile before any veth exists), then one transaction installs the table (replacing,
// or with `adopt` taking over, what an earlier run left), then the namespaces are made, then the
// flow pipeline, then the components in order.
// Tear-down: components in reverse, the flow pipeline (ulogd runs inside the node namespace, so it
// stops before the namespace goes), the run dir, then the namespaces with the table. stop() is
// idempotent and safe during start(): the step in flight finishes (a namespace half made would
// escape the teardown), start() rejects with `agent-stopped`, and what exists is removed.

import { readdirSync, rmdirSync, rmSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { DatapathError } from '../datapath/exec.ts';
import { ownedName } from '../datapath/netns.ts';
import type { ApplyStats } from '../datapath/nft/apply.ts';
import { NodeDatapath } from '../datapath/node.ts';
import { readState, runDirFor, stateFileFor, type TopologyState } from '../datapath/topology.ts';
import type { EndpointSpec, PeerRef, PolicyEngineAPI } from '../policy/types.ts';
import { FlowPipeline, type FlowPipelineOptions } from './flows.ts';

/**
 * A part of the node with its own lifetime (the status API, the policy watcher, probe servers,
 * later the L7 proxies): started once the node enforces and its namespaces exist, stopped before
 * the flow pipeline and the namespaces go. stop() must not throw.
 */
export interface RuntimeComponent {
  readonly name: string;
  start(rt: NodeRuntime): Promise<void> | void;
  stop(): Promise<void> | void;
  /**
   * The kernel now enforces a new policy view (NodeRuntime.sync): a proxy pushes its mirror and
   * resolves once the proxy acknowledged it, so the change counts as applied only then.
   */
  policyChanged?(): Promise<void> | void;
  /**
   * The kernel now allows what FQDN answers added (NodeRuntime.syncFQDN): push only that change;
   * resolves once acknowledged. Without it, policyChanged is used.
   */
  fqdnChanged?(): Promise<void> | void;
}

/** One FQDN sync: the kernel's delta, and each component's acknowledgement of the change. */
export interface FQDNSyncResult {
  stats: ApplyStats;
  /** Not awaited by the sync: each answer waits for the ones it needs (agent/fqdn.ts). */
  acks: Array<{ component: RuntimeComponent; acked: Promise<void> }>;
}

/** A test host: an outside address or an entity (world, remote-node, kube-apiserver). */
export interface TestHostSpec {
  peer: PeerRef;
  ip: string;
}

export interface NodeRuntimeOptions {
  engine: PolicyEngineAPI;
  node: string;
  /** The node's address (default 172.31.255.1; several nodes on one underlay need their own). */
  nodeIp?: string;
  /** Take over an earlier run's namespaces in the one transaction (the agent); else replace them. */
  adopt?: boolean;
  /** How long a delta may wait for `nft -i` before it is killed and the table replaced (ms). */
  nftTimeoutMs?: number;
  /** The flow pipeline's options; false: no flow records. */
  flows?: FlowPipelineOptions | false;
  /** Started in order after the flow pipeline; stopped in reverse before it. */
  components?: RuntimeComponent[];
  /**
   * What a clean stop keeps of the run dir (/run/seawall/<node>): nothing, or the flow log (and
   * its rotations) when it lives there. Everything else (ulogd's files, sockets) goes.
   */
  keep?: 'nothing' | 'flow-log';
  log?: (line: string) => void;
}

export interface NodePlan {
  pods: readonly EndpointSpec[];
  hosts?: readonly TestHostSpec[];
  /** After the peers are declared, before the first transaction (the agent loads policies here). */
  beforeUp?: () => void | Promise<void>;
}

/** A node name the datapath may own: `seawall-` or `sw-` and then letters, digits, `_.-`. */
export function checkNodeName(node: string): void {
  if (!ownedName(node) || node.length > 40) {
    throw new DatapathError(
      'bad-node-name',
      `node name ${JSON.stringify(node)}: must start with seawall- or sw- and use only letters, digits and _.- (at most 40 characters)`,
    );
  }
}

/** IPv4 only: the live datapath has no IPv6 policy path, and nft's error would say nothing. */
export function checkEndpointAddresses(endpoints: readonly EndpointSpec[]): void {
  for (const ep of endpoints) {
    if (isIPv4(ep.ip)) continue;
    const name = `${ep.namespace ?? 'default'}/${ep.name}`;
    throw new DatapathError(
      'bad-endpoint',
      isIPv6(ep.ip)
        ? `endpoint ${name}: address ${ep.ip} is IPv6; the live datapath is IPv4 only`
        : `endpoint ${name}: address ${JSON.stringify(ep.ip)} is not an IPv4 address`,
    );
  }
}

export class NodeRuntime {
  readonly datapath: NodeDatapath;
  readonly runDir: string;
  /** The state file an earlier run of this node left, read before anything changed it. */
  readonly previous: TopologyState | undefined;
  flows: FlowPipeline | undefined;
  private readonly components: RuntimeComponent[];
  private readonly started: RuntimeComponent[] = [];
  private starting: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;
  private stopRequested = false;
  /** From datapath.up() on, this run owns namespaces and a table that stop() must remove. */
  private madeNode = false;
  private readonly log: (line: string) => void;
  private syncing: Promise<void> = Promise.resolve();
  private readonly beforeSyncHooks: Array<() => Promise<void> | void> = [];

  constructor(private readonly opts: NodeRuntimeOptions) {
    checkNodeName(opts.node); // before anything is written (the state file)
    this.previous = readState(stateFileFor(opts.node));
    this.datapath = new NodeDatapath(opts.engine, {
      node: opts.node,
      ...(opts.nodeIp !== undefined ? { nodeIp: opts.nodeIp } : {}),
    });
    if (opts.nftTimeoutMs !== undefined) this.datapath.nft.sessionTimeoutMs = opts.nftTimeoutMs;
    this.runDir = runDirFor(opts.node);
    this.components = [...(opts.components ?? [])];
    this.log = opts.log ?? (() => {});
  }

  get node(): string {
    return this.datapath.node;
  }

  get engine(): PolicyEngineAPI {
    return this.datapath.engine;
  }

  /** stop() was called: a step that sees this gives up (start() then rejects). */
  get stopping(): boolean {
    return this.stopRequested;
  }

  /** Brings the node up (once); rejects with code `agent-stopped` when stop() came first. */
  start(plan: NodePlan): Promise<void> {
    if (this.starting === undefined) this.starting = this.bringUp(plan);
    return this.starting;
  }

  /** Throws `agent-stopped` once stop() was called (between bring-up steps, and for callers). */
  checkStopping(): void {
    if (this.stopRequested) throw new DatapathError('agent-stopped', 'stopped during startup');
  }

  private async bringUp(plan: NodePlan): Promise<void> {
    this.checkStopping();
    checkEndpointAddresses(plan.pods);
    const dp = this.datapath;
    for (const ep of plan.pods) await dp.addPod(ep, { sync: false, connect: false });
    for (const h of plan.hosts ?? []) dp.declareTestHost(h.peer, h.ip);
    await plan.beforeUp?.();
    this.checkStopping();
    this.madeNode = true;
    // one transaction: every declared peer's policy and ipcache entry, before any veth exists
    await dp.up(this.opts.adopt ? { adopt: true } : {});
    this.checkStopping();
    await dp.connect();
    this.checkStopping();
    if (this.opts.flows !== false) {
      this.flows = new FlowPipeline(dp, { log: this.log, ...(this.opts.flows ?? {}) });
      await this.flows.start();
      this.checkStopping();
    }
    for (const c of this.components) {
      await c.start(this);
      this.started.push(c);
      this.checkStopping();
    }
  }

  /**
   * A policy change: the kernel first (one delta), then every started component that mirrors
   * policy (the L7 proxies), each acknowledging before this resolves.
   */
  sync(opts: { full?: boolean; endpoints?: Iterable<string> } = {}): ReturnType<NodeDatapath['sync']> {
    // Serialized: each delta is computed from the state the previous one left (the agent's
    // reloads and the DNS proxy's answers both sync).
    const run = this.syncing.then(async () => {
      for (const h of this.beforeSyncHooks) await h();
      const st = await this.datapath.sync(opts);
      for (const c of this.started) await c.policyChanged?.();
      return st;
    });
    this.syncing = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /**
   * What FQDN answers changed: the kernel delta, then each component is sent the change (the
   * proxies: a delta of their mirror) without waiting here, so an answer need not wait for a proxy
   * that does not judge its endpoint's traffic to the new addresses, and the next sync need not
   * wait for acks either (each proxy reads its messages in order). An ack that fails is logged.
   */
  syncFQDN(): Promise<FQDNSyncResult> {
    const run = this.syncing.then(async (): Promise<FQDNSyncResult> => {
      for (const h of this.beforeSyncHooks) await h();
      const stats = await this.datapath.sync();
      // The pushes run after the answers waiting for this sync were released (a macrotask later):
      // an answer that needs a proxy waits for its ack, the others are not held by their cost.
      const pushed = new Promise<void>((r) => setImmediate(r));
      const acks: FQDNSyncResult['acks'] = [];
      for (const c of this.started) {
        if (c.fqdnChanged === undefined && c.policyChanged === undefined) continue;
        const acked = pushed.then(() =>
          c.fqdnChanged !== undefined ? c.fqdnChanged() : c.policyChanged?.(),
        );
        acked.catch((e: Error) => this.log(`${c.name}: ${e.message}`));
        acks.push({ component: c, acked });
      }
      return { stats, acks };
    });
    this.syncing = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Resolves when every sync asked for so far has finished (or failed). */
  synced(): Promise<void> {
    return this.syncing;
  }

  /**
   * Runs before every sync computes its delta (agent/fqdn.ts puts FQDN zombies into the kernel
   * there, so an expired answer never cuts a live connection). Returns a remover.
   */
  beforeSync(hook: () => Promise<void> | void): () => void {
    this.beforeSyncHooks.push(hook);
    return () => {
      const i = this.beforeSyncHooks.indexOf(hook);
      if (i >= 0) this.beforeSyncHooks.splice(i, 1);
    };
  }

  /** Tears down what exists (once; later calls get the same promise). */
  stop(): Promise<void> {
    this.stopRequested = true;
    if (this.stopped === undefined) this.stopped = this.tearDown();
    return this.stopped;
  }

  private async tearDown(): Promise<void> {
    await this.starting?.catch(() => {});
    for (const c of this.started.reverse()) {
      try {
        await c.stop();
      } catch (e) {
        this.log(`stopping ${c.name}: ${(e as Error).message}`);
      }
    }
    this.started.length = 0;
    // ulogd runs inside the node namespace: stop it before the namespace goes
    await this.flows?.stop();
    // Before up() nothing of this run is in the kernel: an earlier run's namespaces then stay
    // (their enforcement with them) for `--cleanup`.
    if (!this.madeNode && this.previous !== undefined) return;
    this.removeRunDir();
    await this.datapath.down();
  }

  /** The run dir's files go (ulogd's config, output and log, sockets); the flow log may stay. */
  private removeRunDir(): void {
    if (this.opts.keep !== 'flow-log') {
      rmSync(this.runDir, { recursive: true, force: true });
      return;
    }
    // the flow log this run writes, and the default one an earlier run may have left
    const keep = new Set(['flows.jsonl']);
    const f = this.opts.flows === false ? undefined : this.opts.flows?.flowLog;
    if (typeof f === 'string' && dirname(f) === this.runDir) keep.add(basename(f));
    let names: string[];
    try {
      names = readdirSync(this.runDir);
    } catch {
      return;
    }
    const kept = (n: string): boolean =>
      [...keep].some((k) => n === k || (n.startsWith(`${k}.`) && /^\d+$/.test(n.slice(k.length + 1))));
    for (const n of names) if (!kept(n)) rmSync(join(this.runDir, n), { recursive: true, force: true });
    try {
      rmdirSync(this.runDir); // only when no flow log is there
    } catch {
      // the flow log stays
    }
  }
}
