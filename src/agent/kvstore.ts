// A node in kvstore mode: this node's agent shares identities, its endpoints' addresses and its
// node record through etcd and turns what other nodes publish into engine updates and nftables
// deltas. Used by `seawall agent --kvstore`, `seawall test --live` (one per node) and the bench.
//
// Order (fail closed): connect() loads the store's state first, so the node's first transaction
// already holds every remote endpoint and node it knew (a restarted agent has no window in which
// a remote pod is world, nor one in which nothing is enforced: the table is replaced atomically).
// New label sets are allocated before the engine sees the pod (withIdentities). While etcd is
// away the mirror stays as it was: enforcement continues on the last state, and local pods whose
// labels the cluster knows still join; their keys are written when the store returns.
//
// A pod moving here with an address another node still publishes waits until that key is gone,
// writes its own, and then fences: every other node confirms it applied the store up to that
// point (the old key's delete included) before the pod's network exists, so no node judges the
// new pod by the old one's identity once it can send. A node that does not confirm in time (its
// agent dead) is named in the log; its kernel keeps its last state until its lease expires.

import { isIPv4 } from 'node:net';
import { DatapathError } from '../datapath/exec.ts';
import { routePods, type Underlay, underlayNodeIp, unroutePods } from '../datapath/underlay.ts';
import { KvstoreIdentityBackend } from '../kvstore/backend.ts';
import { KvstoreClient, type KvstoreStatus, parseEndpoint } from '../kvstore/client.ts';
import type { NodeInfo } from '../kvstore/layout.ts';
import type { EndpointSpec, PolicyEngineAPI } from '../policy/types.ts';
import type { NodeRuntime, RuntimeComponent } from './runtime.ts';

export interface KvstoreNodeOptions {
  /** `etcd://HOST:PORT`. */
  endpoint: string;
  node: string;
  nodeIp: string;
  podCIDRs?: string[];
  nodeLabels?: Record<string, string>;
  cluster?: string;
  /** The underlay the node joins (multi-node on one machine); routes follow the node store. */
  underlay?: Underlay;
  leaseTtlSeconds?: number;
  /** Coalescing delay of remote changes into one delta (ms). */
  syncDelayMs?: number;
  /** How long a moved pod waits for its old node's key to go (ms). */
  moveTimeoutMs?: number;
  /**
   * Period of the identity GC (ms; 0: none). Cilium's operator does it; here every agent may,
   * safely: each deletion is a transaction that re-checks that nobody references the identity.
   */
  gcIntervalMs?: number;
  log?: (line: string) => void;
}

export interface KvstoreNodeStatus {
  store: KvstoreStatus;
  endpoint: string;
  nodes: number;
  remoteEndpoints: number;
  identities: number;
  writes: number;
  keysWritten: number;
  /** Remote changes applied as deltas. */
  syncs: number;
}

export class KvstoreNode {
  readonly client: KvstoreClient;
  readonly backend: KvstoreIdentityBackend;
  private rt: NodeRuntime | undefined;
  private live = false;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> = Promise.resolve();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly routes = new Map<string, string>();
  private routing: Promise<void> = Promise.resolve();
  private readonly log: (line: string) => void;
  syncs = 0;
  /** Resolvers waiting for the next applied delta (the bench, tests). */
  private readonly appliedWaiters: Array<() => void> = [];

  constructor(readonly opts: KvstoreNodeOptions) {
    this.log = opts.log ?? (() => {});
    this.client = new KvstoreClient(opts.endpoint, {
      ...(opts.leaseTtlSeconds !== undefined ? { leaseTtlSeconds: opts.leaseTtlSeconds } : {}),
      log: this.log,
    });
    this.backend = new KvstoreIdentityBackend(this.client, {
      node: opts.node,
      nodeIp: opts.nodeIp,
      ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
      ...(opts.podCIDRs !== undefined ? { podCIDRs: opts.podCIDRs } : {}),
      ...(opts.nodeLabels !== undefined ? { nodeLabels: opts.nodeLabels } : {}),
    });
  }

  /** Publishes the node and loads the store (rejects when etcd cannot be read). */
  async connect(): Promise<void> {
    await this.backend.start();
  }

  /**
   * Binds the node runtime (before its start: the first transaction then holds the remote state):
   * remote endpoints and nodes into its datapath and engine, every later change as a delta.
   */
  attach(rt: NodeRuntime): void {
    this.rt = rt;
    const dp = rt.datapath;
    const engine = rt.engine;
    for (const n of this.backend.nodes.values()) this.nodeUp(engine, n);
    for (const e of this.backend.remoteEndpoints()) dp.setRemote(e.ip, e.id);
    this.unsubscribe.push(
      // a fence: ack once a delta with everything seen so far is in the kernel
      this.backend.onFence((ip, requester) => {
        this.fencesDue.push([ip, requester]);
        this.schedule(true);
      }),
      this.backend.ipcache.onRemote((ip, e) => {
        dp.setRemote(ip, e?.id); // a local pod at the address wins in compile()
        this.schedule();
      }),
      this.backend.identities.addListener({
        identityAdded: () => this.schedule(),
        identityRemoved: () => this.schedule(),
        identityUpdated: () => {},
      }),
      this.backend.onNode({
        nodeUpserted: (n) => {
          this.nodeUp(engine, n);
          this.schedule();
        },
        nodeDeleted: (name) => {
          const ip = this.nodeIps.get(name);
          engine.removeNode(name);
          this.nodeIps.delete(name);
          if (ip !== undefined) dp.setRemote(ip, undefined);
          this.unroute(name);
          this.schedule();
        },
      }),
    );
  }

  private readonly nodeIps = new Map<string, string>();

  private nodeUp(engine: PolicyEngineAPI, n: NodeInfo): void {
    engine.upsertNode(n.name, n.labels, n.ip);
    this.nodeIps.set(n.name, n.ip);
    if (n.name === this.opts.node) return;
    this.rt?.datapath.setRemote(n.ip, engine.identityOf({ kind: 'ip', ip: n.ip }));
    this.route(n);
  }

  private route(n: NodeInfo): void {
    const u = this.opts.underlay;
    if (u === undefined) return;
    const key = `${n.ip}|${n.podCIDRs.join(',')}`;
    if (this.routes.get(n.name) === key) return;
    const old = this.routes.get(n.name);
    this.routes.set(n.name, key);
    this.routing = this.routing.then(async () => {
      if (!this.live) return; // start() routes every node once the namespace exists
      for (const c of old?.split('|')[1]?.split(',') ?? [])
        if (c !== '') await unroutePods(this.opts.node, c);
      for (const c of n.podCIDRs)
        await routePods(this.opts.node, c, n.ip, this.opts.nodeIp).catch((e: Error) =>
          this.log(`route ${c}: ${e.message}`),
        );
    });
  }

  private unroute(name: string): void {
    const old = this.routes.get(name);
    if (old === undefined) return;
    this.routes.delete(name);
    this.routing = this.routing.then(async () => {
      if (!this.live) return;
      for (const c of old.split('|')[1]?.split(',') ?? []) if (c !== '') await unroutePods(this.opts.node, c);
    });
  }

  private readonly fencesDue: Array<[string, string]> = [];
  private gcTimer: NodeJS.Timeout | undefined;

  /** One delta for a burst of remote changes, after the node is up (then the fences due). */
  private schedule(_fence = false): void {
    if (!this.live || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const fences = this.fencesDue.splice(0);
      this.syncing = this.syncing.then(async () => {
        const rt = this.rt;
        if (rt === undefined || rt.stopping) return;
        try {
          await rt.sync();
          this.syncs++;
          for (const [ip, requester] of fences) this.backend.ackFence(ip, requester);
        } catch (e) {
          this.log(`kvstore: delta failed: ${(e as Error).message}`); // no ack: the mover waits
        }
        for (const w of this.appliedWaiters.splice(0)) w();
      });
    }, this.opts.syncDelayMs ?? 0);
  }

  /** Resolves after the next delta applied from remote changes. */
  nextApplied(): Promise<void> {
    return new Promise((r) => this.appliedWaiters.push(r));
  }

  /**
   * Adds a local pod: its identity allocated in the store when new, a moved address waited for,
   * the engine and the kernel policy first, its own key in the store, its network last.
   */
  async addPod(spec: EndpointSpec): Promise<void> {
    const rt = this.rt;
    if (rt === undefined) throw new DatapathError('agent-stopped', 'the node is not up');
    // another node used the address lately: the other nodes may still map it to that pod
    const moved = this.backend.ipcache.usedRemotely(spec.ip, 60_000);
    if (this.backend.ipcache.remote.has(spec.ip)) await this.waitRemoteGone(spec.ip);
    await this.backend.withIdentities(() => rt.datapath.addPod(spec, { connect: false }));
    if (moved) {
      await this.client.flushed();
      const missing = await this.backend.fence(spec.ip, this.opts.moveTimeoutMs ?? 10_000);
      if (missing.length > 0)
        this.log(`kvstore: ${spec.ip} moved here; no confirmation from ${missing.join(', ')}`);
    } else {
      // a new address: every node maps it to world until its key arrives (fail closed)
      await Promise.race([this.client.flushed(), new Promise((r) => setTimeout(r, 2000))]);
    }
    await rt.datapath.connect();
  }

  /** This node's pod CIDRs changed: the others route them here. */
  setPodCIDRs(cidrs: string[]): void {
    this.backend.publishNode({ podCIDRs: cidrs });
  }

  async removePod(namespace: string, name: string): Promise<void> {
    await this.rt?.datapath.removePod(namespace, name);
  }

  private async waitRemoteGone(ip: string): Promise<void> {
    const end = Date.now() + (this.opts.moveTimeoutMs ?? 30_000);
    while (this.backend.ipcache.remote.has(ip)) {
      if (Date.now() > end) {
        const e = this.backend.ipcache.remote.get(ip)!;
        throw new DatapathError('ip-in-use', `address ${ip} is still published by the node at ${e.hostIP}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Primes the engine with the pods' identities (before the runtime declares them). */
  async prepare(engine: PolicyEngineAPI, pods: readonly EndpointSpec[]): Promise<void> {
    for (const p of pods) await this.backend.withIdentities(() => engine.upsertEndpoint(p));
  }

  status(): KvstoreNodeStatus {
    return {
      store: this.client.status,
      endpoint: this.opts.endpoint,
      nodes: this.backend.nodes.size,
      remoteEndpoints: this.backend.ipcache.remote.size,
      identities: this.backend.identities.byId.size,
      writes: this.client.writes,
      keysWritten: this.client.keysWritten,
      syncs: this.syncs,
    };
  }

  /**
   * The runtime component: joins the underlay and routes the other nodes once the namespaces
   * exist; on stop, revokes the lease (a clean exit takes this node's keys out at once) and
   * releases its underlay reference, unless `keepKeys` (a restart that should hand both over).
   */
  component(opts: { keepKeys?: () => boolean } = {}): RuntimeComponent {
    return {
      name: 'kvstore',
      start: async (rt) => {
        const u = this.opts.underlay;
        if (u !== undefined) await u.join(rt.node, this.opts.nodeIp);
        this.live = true;
        for (const n of this.backend.nodes.values()) {
          if (n.name === this.opts.node) continue;
          this.routes.delete(n.name);
          this.route(n);
        }
        await this.routing;
        this.schedule(); // whatever changed between the first transaction and now
        const gcMs = this.opts.gcIntervalMs ?? 60_000;
        if (gcMs > 0) {
          this.gcTimer = setInterval(() => {
            this.backend
              .gc()
              .then((ids) => {
                if (ids.length > 0) this.log(`kvstore: collected identities ${ids.join(', ')}`);
              })
              .catch((e: Error) => this.log(`kvstore: identity GC: ${e.message}`));
          }, gcMs);
          this.gcTimer.unref();
        }
      },
      stop: async () => {
        this.live = false;
        if (this.gcTimer !== undefined) clearInterval(this.gcTimer);
        if (this.timer !== undefined) clearTimeout(this.timer);
        await this.syncing;
        for (const u of this.unsubscribe.splice(0)) u();
        const keep = opts.keepKeys?.() ?? false;
        await this.client.close({ revoke: !keep });
        // this node's reference on the underlay goes; the underlay with it only if it was the last
        if (!keep)
          await this.opts.underlay
            ?.release(this.opts.node)
            .catch((e: Error) => this.log(`underlay: ${e.message}`));
      },
    };
  }
}

/** `seawall agent --kvstore …`: what the agent needs to run its node in kvstore mode. */
export interface AgentKvstoreOptions {
  endpoint: string;
  /** This node's underlay address (172.31.254.k for node k when --node-index is given). */
  nodeIp: string;
  /** The underlay namespace to join (several nodes on one machine); none: no underlay. */
  underlay?: string;
  podCIDRs?: string[];
  nodeLabels?: Record<string, string>;
  /** The Kubernetes node name endpoints' `node:` names (default: the agent's --node). */
  k8sNode?: string;
  leaseTtlSeconds?: number;
}

/** The endpoints of a file that run on this node (`node:`, default node-1, as the format says). */
export function endpointsOfNode(endpoints: readonly EndpointSpec[], k8sNode: string): EndpointSpec[] {
  return endpoints.filter((e) => (e.node ?? 'node-1') === k8sNode);
}

/** The agent's kvstore flags checked and converted; each error names its flag. */
export function agentKvstoreOptions(o: {
  kvstore?: string;
  nodeIndex?: string;
  nodeIp?: string;
  underlay?: string;
  podCidr?: string[];
  nodeLabel?: string[];
  k8sNode?: string;
  leaseTtl?: string;
}): AgentKvstoreOptions {
  if (o.kvstore === undefined) throw new DatapathError('bad-flag', '--kvstore is required');
  parseEndpoint(o.kvstore); // says what is wrong with it
  let nodeIp: string;
  if (o.nodeIp !== undefined) {
    if (!isIPv4(o.nodeIp)) throw new DatapathError('bad-flag', `--node-ip ${o.nodeIp}: not an IPv4 address`);
    nodeIp = o.nodeIp;
  } else if (o.nodeIndex !== undefined) {
    if (!/^\d+$/.test(o.nodeIndex))
      throw new DatapathError('bad-flag', `--node-index ${o.nodeIndex}: not a number`);
    nodeIp = underlayNodeIp(Number(o.nodeIndex));
  } else {
    throw new DatapathError(
      'bad-flag',
      '--kvstore needs --node-index K or --node-ip IP (each node its own address)',
    );
  }
  for (const c of o.podCidr ?? []) {
    const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(c);
    if (m === null || !isIPv4(m[1]!) || Number(m[2]) > 32)
      throw new DatapathError('bad-flag', `--pod-cidr ${c}: expected a.b.c.d/len`);
  }
  const labels: Record<string, string> = {};
  for (const l of o.nodeLabel ?? []) {
    const i = l.indexOf('=');
    if (i <= 0) throw new DatapathError('bad-flag', `--node-label ${l}: expected key=value`);
    labels[l.slice(0, i)] = l.slice(i + 1);
  }
  if (o.leaseTtl !== undefined && (!/^\d+$/.test(o.leaseTtl) || Number(o.leaseTtl) < 2))
    throw new DatapathError('bad-flag', `--lease-ttl ${o.leaseTtl}: seconds, at least 2`);
  return {
    endpoint: o.kvstore,
    nodeIp,
    ...(o.underlay !== undefined ? { underlay: o.underlay } : {}),
    ...(o.podCidr !== undefined ? { podCIDRs: o.podCidr } : {}),
    ...(o.nodeLabel !== undefined ? { nodeLabels: labels } : {}),
    ...(o.k8sNode !== undefined ? { k8sNode: o.k8sNode } : {}),
    ...(o.leaseTtl !== undefined ? { leaseTtlSeconds: Number(o.leaseTtl) } : {}),
  };
}
