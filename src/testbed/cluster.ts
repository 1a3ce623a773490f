// Several nodes on one machine in kvstore mode: an etcd of its own (unless one is given), an
// underlay, and per node a NodeRuntime with its own engine on a KvstoreNode backend. The live
// multi-node tests, `seawall test --live` for files with `node:`, `seawall demo --nodes` and the
// kvstore bench build on it. Nodes get underlay addresses 172.31.254.k.

import { KvstoreNode } from '../agent/kvstore.ts';
import { NodeRuntime, type RuntimeComponent, type TestHostSpec } from '../agent/runtime.ts';
import { delNetns, netnsExists } from '../datapath/netns.ts';
import { Underlay, underlayNodeIp } from '../datapath/underlay.ts';
import { startEtcd, type TestEtcd } from '../kvstore/testing/etcd.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import type { EndpointSpec, EngineFactory, PolicyEngineAPI } from '../policy/types.ts';
import type { PolicyObject } from '../policy-api/types.ts';

export interface ClusterNodeSpec {
  /** The node namespace (seawall-… or sw-…), also its name in the store. */
  name: string;
  pods: EndpointSpec[];
  /** Test hosts on this node (outside addresses, world, kube-apiserver), as on a single node. */
  hosts?: TestHostSpec[];
  labels?: Record<string, string>;
  /** Routed to this node from the others (default: each pod's /32). */
  podCIDRs?: string[];
  components?: RuntimeComponent[];
  /** Delay before this node applies remote changes (ms): a slow node, for fault tests. */
  syncDelayMs?: number;
}

export interface ClusterOptions {
  nodes: ClusterNodeSpec[];
  policies?: PolicyObject[];
  namespaces?: ReadonlyMap<string, Record<string, string>>;
  /** An etcd to use (`etcd://HOST:PORT`); else the cluster starts its own. */
  kvstore?: string;
  /** The underlay namespace (default `sw-ul-<first node>`). */
  underlay?: string;
  leaseTtlSeconds?: number;
  createEngine?: EngineFactory;
  flows?: false;
  log?: (line: string) => void;
}

export interface ClusterNode {
  spec: ClusterNodeSpec;
  ip: string;
  engine: PolicyEngineAPI;
  kv: KvstoreNode;
  rt: NodeRuntime;
}

export class LiveCluster {
  readonly nodes: ClusterNode[] = [];
  etcd: TestEtcd | undefined;
  underlay!: Underlay;
  endpoint!: string;
  private constructor(private readonly opts: ClusterOptions) {}

  /** Brings every node up; on failure, tears down what was made and rejects. */
  static async start(opts: ClusterOptions): Promise<LiveCluster> {
    const c = new LiveCluster(opts);
    try {
      await c.bringUp();
    } catch (e) {
      await c.stop();
      throw e;
    }
    return c;
  }

  private async bringUp(): Promise<void> {
    const o = this.opts;
    if (o.kvstore === undefined) this.etcd = await startEtcd();
    this.endpoint = o.kvstore ?? this.etcd!.endpoint;
    this.underlay = new Underlay(
      o.underlay ?? `sw-ul-${o.nodes[0]?.name.replace(/^(seawall-|sw-)/, '') ?? 'x'}`.slice(0, 40),
    );
    await this.underlay.up();
    for (const [i, spec] of o.nodes.entries()) await this.startNode(spec, underlayNodeIp(i + 1));
  }

  /** One node: its store connection, engine, runtime (restart: the same spec again). */
  async startNode(spec: ClusterNodeSpec, ip: string, opts: { adopt?: boolean } = {}): Promise<ClusterNode> {
    const o = this.opts;
    const kv = new KvstoreNode({
      endpoint: this.endpoint,
      node: spec.name,
      nodeIp: ip,
      podCIDRs: spec.podCIDRs ?? spec.pods.map((p) => `${p.ip}/32`),
      ...(spec.labels !== undefined ? { nodeLabels: spec.labels } : {}),
      underlay: this.underlay,
      ...(spec.syncDelayMs !== undefined ? { syncDelayMs: spec.syncDelayMs } : {}),
      ...(o.leaseTtlSeconds !== undefined ? { leaseTtlSeconds: o.leaseTtlSeconds } : {}),
      ...(o.log !== undefined ? { log: (l: string) => o.log!(`${spec.name}: ${l}`) } : {}),
    });
    await kv.connect();
    const engine = (o.createEngine ?? defaultEngineFactory)(
      { localNode: spec.name },
      { identity: kv.backend },
    );
    for (const [ns, labels] of o.namespaces ?? []) engine.upsertNamespace(ns, labels);
    for (const p of o.policies ?? []) engine.upsertPolicy(p);
    await kv.prepare(engine, spec.pods);
    const rt = new NodeRuntime({
      engine,
      node: spec.name,
      nodeIp: ip,
      ...(opts.adopt ? { adopt: true } : {}),
      flows: o.flows ?? false,
      components: [kv.component(), ...(spec.components ?? [])],
    });
    kv.attach(rt);
    const n: ClusterNode = { spec, ip, engine, kv, rt };
    const at = this.nodes.findIndex((x) => x.spec.name === spec.name);
    if (at >= 0) this.nodes[at] = n;
    else this.nodes.push(n);
    await rt.start({ pods: spec.pods, ...(spec.hosts !== undefined ? { hosts: spec.hosts } : {}) });
    return n;
  }

  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.spec.name === name);
    if (n === undefined) throw new Error(`no node ${name} in the cluster`);
    return n;
  }

  /** Resolves once every node's store connection wrote what it holds and every node applied it. */
  async settle(): Promise<void> {
    for (const n of this.nodes) await n.kv.client.flushed();
    for (const n of this.nodes) await n.rt.sync();
  }

  async stop(): Promise<void> {
    for (const n of this.nodes.splice(0).reverse()) {
      await n.rt.stop().catch(() => {});
      for (const h of n.rt.datapath.topo.records) await delNetns(h.ns).catch(() => {});
      if (netnsExists(n.spec.name)) await delNetns(n.spec.name).catch(() => {});
    }
    // each node released its reference on stop; the underlay goes unless another run uses it
    await this.underlay?.downIfUnused().catch(() => {});
    await this.etcd?.stop();
  }
}
