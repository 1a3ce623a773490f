// One node's live datapath: the topology (namespaces) plus the nftables table, driven by the
// policy engine. Used by the agent, `seawall test --live`, the demo and the benches.
//
// Ordering keeps enforcement fail-closed: a pod's policy and ipcache entry are in the kernel
// before its veth exists, and it leaves the kernel only after its namespace is gone.

import type { EndpointPolicy, EndpointSpec, PeerRef, PolicyEngineAPI } from '../policy/types.ts';
import { type ApplyStats, NftApplier } from './nft/apply.ts';
import {
  assemble,
  type CompiledEndpoint,
  type CompiledTable,
  compileEndpoint,
  DEFAULT_PROXY_TARGET,
  type ProxyTarget,
  patchEndpoint,
} from './nft/compile.ts';
import { GATEWAY_IP, type HostRecord, Topology, type TopologyOptions } from './topology.ts';

/** Test-only addresses of the hosts standing for entities (never routed outside the node). */
export const ENTITY_IPS: Record<string, string> = {
  world: '203.0.113.10',
  'remote-node': '172.31.255.2',
  'kube-apiserver': '172.31.255.3',
};

export interface LivePeer {
  key: string;
  ip: string;
  peer: PeerRef;
  /** Pod endpoint id (NFLOG prefixes carry it); absent for test hosts. */
  endpointId?: number;
  /** Namespace the peer's programs run in (the node's own for `host`). */
  ns: string;
}

interface CompiledPod {
  /** The policy compiled in full; undefined once patched (then it no longer describes `ep`). */
  policy: EndpointPolicy | undefined;
  identity: number;
  ep: CompiledEndpoint;
  skipped: string[];
}

/** Above this many entry changes a full compile of the endpoint is as cheap as patching. */
const PATCH_MAX_CHANGES = 4096;

/** Equal for the datapath: what compile reads (modes, keys, verdicts), not provenance or L7. */
function samePolicy(a: EndpointPolicy, b: EndpointPolicy): boolean {
  if (a.endpoint !== b.endpoint || a.identity !== b.identity) return false;
  const dirs = [a.ingress, b.ingress, a.egress, b.egress] as const;
  if (dirs[0].enforced !== dirs[1].enforced || dirs[0].defaultDeny !== dirs[1].defaultDeny) return false;
  if (dirs[2].enforced !== dirs[3].enforced || dirs[2].defaultDeny !== dirs[3].defaultDeny) return false;
  // an audited default deny turning enforced again must reach the kernel (else it stays open)
  if (
    dirs[0].auditDefaultDeny !== dirs[1].auditDefaultDeny ||
    dirs[2].auditDefaultDeny !== dirs[3].auditDefaultDeny
  )
    return false;
  if (a.entries === b.entries) return true;
  if (a.entries.length !== b.entries.length) return false;
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x.verdict !== y.verdict) return false;
    const k = x.key;
    const l = y.key;
    if (
      k.direction !== l.direction ||
      k.identity !== l.identity ||
      k.proto !== l.proto ||
      k.portLo !== l.portLo ||
      k.portHi !== l.portHi
    )
      return false;
  }
  return true;
}

export function peerKey(p: PeerRef): string {
  switch (p.kind) {
    case 'endpoint':
      return `pod:${p.namespace}/${p.name}`;
    case 'ip':
      return `ip:${p.ip}`;
    case 'entity':
      return `entity:${p.entity}`;
  }
}

export class NodeDatapath {
  readonly topo: Topology;
  readonly nft: NftApplier;
  private readonly pods = new Map<string, { id: number; spec: EndpointSpec }>();
  /** Endpoint ids survive restarts (the state file) so NFLOG prefixes keep their meaning. */
  private readonly knownIds = new Map<string, number>();
  private readonly others = new Map<string, { ip: string; peer: PeerRef }>();
  /**
   * Other nodes' endpoints and the nodes themselves (multi-node, from the kvstore): address →
   * identity in the ipcache map only. Their policy is their node's; a local entry wins.
   */
  private readonly remote = new Map<string, number>();
  private nextId = 1;
  /** Last compiled form of each pod, reused while its distilled policy is unchanged. */
  private readonly compiled = new Map<string, CompiledPod>();
  lastApply: ApplyStats | undefined;
  /** Where nat_pre sends redirected connections: the node address, one port per L7 parser. */
  readonly proxy: ProxyTarget;

  constructor(
    public engine: PolicyEngineAPI,
    opts: TopologyOptions = {},
  ) {
    this.topo = new Topology(opts);
    this.nft = new NftApplier(this.topo.node);
    this.proxy = { ...DEFAULT_PROXY_TARGET, address: this.topo.nodeIp };
  }

  get node(): string {
    return this.topo.node;
  }

  /** Node namespace up, table installed in one transaction (replacing any leftover of ours). */
  async up(opts: { adopt?: boolean } = {}): Promise<void> {
    await this.topo.up(opts);
    // Adopted namespaces that no declared peer claims at their address go while the old table
    // still holds them: the new one has no policy for them (unbound veth, no ep_in/ep_eg entry).
    if (opts.adopt) await this.pruneHosts();
    // The delta session starts beside the first transaction, and the node is up only once it
    // answers: no FQDN answer waits for nft to start. A session that will not start is no
    // failure: deltas then start one or go in full.
    const warming = this.nft.warm().catch(() => {});
    this.lastApply = await this.nft.applyFull(this.compile());
    await warming;
  }

  /** Creates the namespaces of declared peers that have none yet (after their policy is in). */
  async connect(): Promise<void> {
    for (const [key, { spec }] of this.pods) if (!this.topo.host(key)) await this.topo.addHost(key, spec.ip);
    for (const [key, { ip }] of this.others) if (!this.topo.host(key)) await this.topo.addHost(key, ip);
  }

  /** Namespaces of a previous run that no declared peer claims any more, or at another address. */
  async pruneHosts(): Promise<void> {
    for (const h of this.topo.records) {
      const ip = this.pods.get(h.key)?.spec.ip ?? this.others.get(h.key)?.ip;
      if (ip !== h.ip) await this.topo.removeHost(h.key);
    }
  }

  endpointIds(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.pods) out[k] = v.id;
    return out;
  }

  podKeys(): string[] {
    return [...this.pods.keys()];
  }

  /** The declared pods with their endpoint ids (the L7 proxies' mirror is built from them). */
  podSpecs(): Array<{ key: string; id: number; spec: EndpointSpec }> {
    return [...this.pods].map(([key, v]) => ({ key, id: v.id, spec: v.spec }));
  }

  /** Adds a pod: engine first, kernel policy second, network last. */
  async addPod(
    spec: EndpointSpec,
    opts: { sync?: boolean; connect?: boolean } = {},
  ): Promise<LivePeer | undefined> {
    const ns = spec.namespace ?? 'default';
    const key = `pod:${ns}/${spec.name}`;
    const id = this.pods.get(key)?.id ?? this.knownIds.get(key) ?? this.allocId();
    this.pods.set(key, { id, spec: { ...spec, namespace: ns } });
    this.engine.upsertEndpoint({ ...spec, namespace: ns });
    this.recordIds();
    if (opts.sync !== false) await this.sync();
    if (opts.connect === false) return undefined;
    const h = await this.topo.addHost(key, spec.ip);
    return {
      key,
      ip: h.ip,
      peer: { kind: 'endpoint', namespace: ns, name: spec.name },
      endpointId: id,
      ns: h.ns,
    };
  }

  private allocId(): number {
    const used = new Set([...this.knownIds.values(), ...[...this.pods.values()].map((p) => p.id)]);
    while (used.has(this.nextId)) this.nextId++;
    return this.nextId++;
  }

  /** Takes endpoint ids recorded by an earlier run of this node. */
  rememberIds(ids: Record<string, number>): void {
    for (const [k, v] of Object.entries(ids)) this.knownIds.set(k, v);
  }

  /** Removes a pod: network first, then its policy. */
  async removePod(namespace: string, name: string, opts: { sync?: boolean } = {}): Promise<void> {
    const key = `pod:${namespace}/${name}`;
    await this.topo.removeHost(key);
    this.pods.delete(key);
    this.engine.removeEndpoint(namespace, name);
    this.recordIds();
    if (opts.sync !== false) await this.sync();
  }

  /** An address of another node (or one of its pods) and its identity; undefined: gone. */
  setRemote(ip: string, identity: number | undefined): void {
    if (identity === undefined) this.remote.delete(ip);
    else this.remote.set(ip, identity);
  }

  remoteCount(): number {
    return this.remote.size;
  }

  /** Declares a test host without making it: its ipcache entry compiles, connect() makes it. */
  declareTestHost(peer: PeerRef, ip: string): void {
    this.others.set(peerKey(peer), { ip, peer });
  }

  /** A test host for an outside address or an entity (world, remote-node, kube-apiserver). */
  async addTestHost(peer: PeerRef, ip: string, opts: { sync?: boolean } = {}): Promise<LivePeer> {
    const key = peerKey(peer);
    this.others.set(key, { ip, peer });
    if (opts.sync !== false) await this.sync();
    const h = await this.topo.addHost(key, ip);
    return { key, ip, peer, ns: h.ns };
  }

  /** Where a peer lives, when it exists on this node. */
  live(peer: PeerRef): LivePeer | undefined {
    if (peer.kind === 'entity' && peer.entity === 'host') {
      return { key: 'entity:host', ip: this.topo.nodeIp, peer, ns: this.topo.node };
    }
    const key = peerKey(peer);
    const h: HostRecord | undefined = this.topo.host(key);
    if (!h) return undefined;
    const pod = this.pods.get(key);
    return { key, ip: h.ip, peer, ns: h.ns, ...(pod ? { endpointId: pod.id } : {}) };
  }

  /**
   * The engine's current view as a compiled table. Incremental: a pod whose distilled policy,
   * id, address and veth are unchanged keeps its compiled object (the delta skips it in O(1)).
   * `only` (endpoint names `ns/name`) limits re-distilling to those pods, for callers that know
   * what an event touched; every other pod keeps its last compiled form as is.
   */
  compile(opts: { only?: Iterable<string> } = {}): CompiledTable {
    const only = opts.only === undefined ? undefined : new Set([...opts.only].map((k) => `pod:${k}`));
    const ipcache = new Map<string, number>(this.remote);
    const host = this.engine.identityOf({ kind: 'entity', entity: 'host' });
    ipcache.set(this.topo.nodeIp, host);
    ipcache.set(GATEWAY_IP, host);
    const endpoints: CompiledEndpoint[] = [];
    const skipped: string[] = [];
    for (const key of [...this.compiled.keys()]) if (!this.pods.has(key)) this.compiled.delete(key);
    for (const [key, { id, spec }] of this.pods) {
      const iface = this.topo.vethName(key);
      let c = this.compiled.get(key);
      const stale = !c || c.ep.id !== id || c.ep.ip !== spec.ip || c.ep.iface !== iface;
      if (stale || only === undefined || only.has(key)) {
        const ns = spec.namespace ?? 'default';
        // the engine's change log: a small change patches the compiled form
        const ch = this.engine.drainEndpointChanges(ns, spec.name);
        let done = false;
        if (c && !stale && !ch.full && ch.identity === c.identity) {
          const k = ch.added.length + ch.removed.length;
          if (k === 0) done = true;
          else if (k <= PATCH_MAX_CHANGES) {
            const ep = patchEndpoint(c.ep, ch);
            if (ep !== undefined) {
              c = { policy: undefined, identity: c.identity, ep, skipped: c.skipped };
              this.compiled.set(key, c);
              done = true;
            }
          }
        }
        if (!done) {
          const policy = this.engine.endpointPolicy(ns, spec.name);
          if (stale || !c || c.policy === undefined || !samePolicy(c.policy, policy)) {
            const sk: string[] = [];
            const ep = compileEndpoint({ id, ip: spec.ip, policy, iface }, sk);
            c = { policy, identity: policy.identity, ep, skipped: sk };
            this.compiled.set(key, c);
          }
        }
      }
      if (!c) continue;
      ipcache.set(spec.ip, c.identity);
      endpoints.push(c.ep);
      skipped.push(...c.skipped);
    }
    for (const { ip, peer } of this.others.values()) ipcache.set(ip, this.engine.identityOf(peer));
    return assemble(endpoints, ipcache, skipped, this.proxy);
  }

  /**
   * Brings the kernel to the engine's view with one delta transaction (`full`: one transaction
   * replacing the whole table). `endpoints` limits re-distilling as in compile().
   */
  async sync(opts: { full?: boolean; endpoints?: Iterable<string> } = {}): Promise<ApplyStats> {
    // One at a time, each compiled when its turn comes: a delta is rendered against the state
    // the kernel holds, which a concurrent one (a pod joining while remote changes arrive from
    // the kvstore) would change underneath it.
    const run = this.syncQueue.then(async () => {
      const t = this.compile(opts.endpoints === undefined ? {} : { only: opts.endpoints });
      this.lastApply = opts.full ? await this.nft.applyFull(t) : await this.nft.apply(t);
      return this.lastApply;
    });
    this.syncQueue = run.catch(() => {});
    return run;
  }

  private syncQueue: Promise<unknown> = Promise.resolve();

  /** Clean exit: everything made goes (the table with its namespace). */
  async down(): Promise<void> {
    this.nft.close();
    await this.topo.down();
  }

  private recordIds(): void {
    this.topo.extra = { ...this.topo.extra, endpointIds: this.endpointIds() };
    this.topo.persist();
  }
}
