// The identity backend over etcd (Cilium's kvstore mode): cluster identities allocated
// cluster-wide in transactions, references per node on the agent's lease, the ipcache shared as
// cilium/state/ip/v1, and this node published under cilium/state/nodes/v1. The engine reads a local
// mirror synchronously (backend.ts in identity/); the watch keeps it current and tells the
// listeners what other nodes changed, as local changes are told.
//
// Allocation (Cilium's pkg/allocator, without its lock key): one transaction creates the master key
// id/<n> → labels and this node's reference value/<labels>/<node> → n, on two conditions: id/<n> does
// not exist, and no reference to the label set exists anywhere (a ranged compare). Two agents
// allocating the same labels at once: one wins, the other finds its reference and uses its number;
// two agents allocating different labels at once cannot both take n. A label set new to the
// cluster needs that round trip, the engine cannot wait for it: allocate() then throws
// `kvstore-identity-pending` before anything changed, and withIdentities() (the edge) awaits the
// allocation and runs the step again.
//
// CIDR, FQDN and remote-node-scoped identities are node-local in Cilium and stay in a memory
// allocator here.

import type { Identity, IdentityListener } from '../identity/allocator.ts';
import { IdentityAllocator } from '../identity/allocator.ts';
import type {
  IdentityAllocatorAPI,
  IdentityBackend,
  IPCacheAPI,
  IPCacheListener,
} from '../identity/backend.ts';
import type { Prefix } from '../identity/cidr.ts';
import { IPCache } from '../identity/ipcache.ts';
import type { LabelSet } from '../labels/label.ts';
import type { KvstoreClient, StateHandler } from './client.ts';
import { prefixEnd } from './client.ts';
import {
  ACK_PREFIX,
  ackKey,
  decodeIPPair,
  decodeNode,
  encodeIPPair,
  encodeNode,
  FENCE_PREFIX,
  fenceKey,
  ID_PREFIX,
  idKey,
  ipKey,
  ipPrefix,
  KvstoreError,
  labelsKey,
  MAX_ID,
  MIN_ID,
  NODES_PREFIX,
  type NodeInfo,
  nodeKey,
  parseIdKey,
  parseLabelsKey,
  parseValueKey,
  VALUE_PREFIX,
  valueKey,
  valuePrefixOf,
} from './layout.ts';

export class IdentityPendingError extends KvstoreError {
  override name = 'IdentityPendingError';
  constructor(readonly labels: LabelSet) {
    super(
      'kvstore-identity-pending',
      `labels ${labelsKey(labels)}: no cluster identity yet (allocated through the kvstore first)`,
    );
  }
}

const isCluster = (id: number): boolean => id >= MIN_ID && id <= MAX_ID;

/** Cluster identities from the store's mirror; every other kind from a node-local allocator. */
class KvIdentities implements IdentityAllocatorAPI {
  readonly local = new IdentityAllocator();
  readonly byId = new Map<number, Identity>();
  readonly byLabels = new Map<string, Identity>();
  /** This node's references per labels key (the engine's allocate/release). */
  readonly refs = new Map<string, number>();
  private readonly listeners = new Set<IdentityListener>();

  constructor(private readonly kv: KvstoreIdentityBackend) {}

  get(id: number): Identity | undefined {
    return this.byId.get(id) ?? this.local.get(id);
  }

  *all(): IterableIterator<Identity> {
    yield* this.local.all();
    yield* this.byId.values();
  }

  get size(): number {
    return this.local.size + this.byId.size;
  }

  allocate(labels: LabelSet): Identity {
    const lk = labelsKey(labels);
    const identity = this.byLabels.get(lk);
    if (identity === undefined) throw new IdentityPendingError(labels);
    const n = (this.refs.get(lk) ?? 0) + 1;
    this.refs.set(lk, n);
    if (n === 1) this.kv.reference(lk, identity.id);
    return identity;
  }

  allocateNode(labels: LabelSet): Identity {
    return this.local.allocateNode(labels);
  }

  release(identity: Identity): void {
    if (identity.kind !== 'cluster') {
      this.local.release(identity);
      return;
    }
    const lk = labelsKey(identity.labels);
    const n = (this.refs.get(lk) ?? 0) - 1;
    if (n > 0) {
      this.refs.set(lk, n);
      return;
    }
    this.refs.delete(lk);
    this.kv.unreference(lk);
  }

  allocateCIDR(prefix: Prefix): Identity {
    return this.local.allocateCIDR(prefix);
  }

  releaseCIDR(prefix: Prefix): void {
    this.local.releaseCIDR(prefix);
  }

  cidrIdentity(prefix: Prefix): Identity | undefined {
    return this.local.cidrIdentity(prefix);
  }

  setFQDNNames(identity: Identity, names: ReadonlySet<string>): void {
    this.local.setFQDNNames(identity, names);
  }

  addListener(l: IdentityListener): () => void {
    this.listeners.add(l);
    const off = this.local.addListener(l);
    return () => {
      this.listeners.delete(l);
      off();
    };
  }

  /** The store says id → labels (a new identity, or one learnt again after a resync). */
  learn(id: number, lk: string): void {
    const had = this.byId.get(id);
    if (had !== undefined && labelsKey(had.labels) === lk) return;
    if (had !== undefined) this.forget(id);
    // Two master keys for one label set (an old one not collected yet): the lower number wins.
    const other = this.byLabels.get(lk);
    if (other !== undefined && other.id < id) {
      this.byId.set(id, { id, kind: 'cluster', labels: other.labels });
      return;
    }
    const identity: Identity = { id, kind: 'cluster', labels: parseLabelsKey(lk) };
    this.byId.set(id, identity);
    this.byLabels.set(lk, identity);
    for (const l of this.listeners) l.identityAdded(identity);
  }

  forget(id: number): void {
    const identity = this.byId.get(id);
    if (identity === undefined) return;
    const lk = labelsKey(identity.labels);
    if (this.byLabels.get(lk) !== identity) {
      this.byId.delete(id); // a duplicate master key: nobody saw it
      return;
    }
    if ((this.refs.get(lk) ?? 0) > 0) {
      // Collected while this node holds it (its reference was not written yet): keep it, and the
      // reference's guard re-creates the master key.
      this.kv.reference(lk, id, true);
      return;
    }
    this.byId.delete(id);
    this.byLabels.delete(lk);
    for (const l of this.listeners) l.identityRemoved(identity);
  }
}

/** The owner of entries learnt from other nodes (the memory ipcache keeps entries per owner). */
const REMOTE: object = { remote: true };
/** The writer of local calls that name none. */
const LOCAL: object = { local: true };

export interface RemoteEndpoint {
  ip: string;
  id: number;
  hostIP: string;
  namespace?: string;
  pod?: string;
}

/**
 * The memory ipcache, published: this node's endpoint entries with a cluster identity go to
 * cilium/state/ip/v1 on the lease; other nodes' entries come in from the watch. A local entry
 * shadows a remote one for the same address (a pod that moved here is judged by what this node
 * knows, not by a stale key of its old node).
 */
class KvIPCache implements IPCacheAPI {
  readonly mem = new IPCache();
  /** Other nodes' entries, by address. */
  readonly remote = new Map<string, RemoteEndpoint>();
  /** When another node's entry for an address went (a pod taking it over here fences). */
  private readonly gone = new Map<string, number>();
  /** This node's claims per address (owner → id), the ones the memory cache holds too. */
  private readonly localClaims = new Map<string, Map<object, number>>();
  private readonly remoteListeners = new Set<(ip: string, e: RemoteEndpoint | undefined) => void>();

  constructor(private readonly kv: KvstoreIdentityBackend) {}

  upsertEndpoint(ip: string, id: number, owner: object = LOCAL): void {
    let c = this.localClaims.get(ip);
    if (c === undefined) {
      c = new Map();
      this.localClaims.set(ip, c);
    }
    c.delete(owner);
    c.set(owner, id);
    this.mem.upsertEndpoint(ip, id, owner);
    if (this.remote.has(ip)) this.mem.deleteEndpoint(ip, REMOTE);
    this.publish(ip);
  }

  deleteEndpoint(ip: string, owner: object = LOCAL): void {
    const c = this.localClaims.get(ip);
    if (c === undefined || !c.delete(owner)) return;
    if (c.size === 0) this.localClaims.delete(ip);
    this.mem.deleteEndpoint(ip, owner);
    const r = this.remote.get(ip);
    if (c.size === 0 && r !== undefined) this.mem.upsertEndpoint(ip, r.id, REMOTE);
    this.publish(ip);
  }

  private publish(ip: string): void {
    const c = this.localClaims.get(ip);
    let id: number | undefined;
    for (const v of c?.values() ?? []) id = v;
    if (id === undefined || !isCluster(id)) this.kv.unpublishIP(ip);
    else this.kv.publishIP(ip, id);
  }

  endpointIdentity(ip: string): number | undefined {
    return this.mem.endpointIdentity(ip);
  }

  upsertPrefix(p: Prefix, id: number): void {
    this.mem.upsertPrefix(p, id);
  }

  deletePrefix(p: Prefix): void {
    this.mem.deletePrefix(p);
  }

  lookup(ip: string): number {
    return this.mem.lookup(ip);
  }

  addListener(l: IPCacheListener): () => void {
    return this.mem.addListener(l);
  }

  /** Hears other nodes' endpoints come, change and go (undefined: gone). */
  onRemote(l: (ip: string, e: RemoteEndpoint | undefined) => void): () => void {
    this.remoteListeners.add(l);
    return () => this.remoteListeners.delete(l);
  }

  setRemote(ip: string, e: RemoteEndpoint | undefined): void {
    const had = this.remote.get(ip);
    if (e === undefined) {
      if (had === undefined) return;
      this.remote.delete(ip);
      this.gone.set(ip, Date.now());
      if (this.gone.size > 4096) this.gone.delete(this.gone.keys().next().value!);
      if (!this.localClaims.has(ip)) this.mem.deleteEndpoint(ip, REMOTE);
    } else {
      if (had !== undefined && had.id === e.id && had.hostIP === e.hostIP) return;
      this.remote.set(ip, e);
      if (!this.localClaims.has(ip)) this.mem.upsertEndpoint(ip, e.id, REMOTE);
    }
    for (const l of this.remoteListeners) l(ip, e);
  }

  /** Another node published the address within `ms` (or still does). */
  usedRemotely(ip: string, ms: number): boolean {
    if (this.remote.has(ip)) return true;
    const t = this.gone.get(ip);
    return t !== undefined && Date.now() - t < ms;
  }

  hasLocal(ip: string): boolean {
    return this.localClaims.has(ip);
  }
}

export interface KvstoreBackendOptions {
  node: string;
  /** This node's address: HostIP of its ipcache entries, its node record's InternalIP. */
  nodeIp: string;
  cluster?: string;
  podCIDRs?: string[];
  nodeLabels?: Record<string, string>;
}

export interface NodeListener {
  nodeUpserted(n: NodeInfo): void;
  nodeDeleted(name: string): void;
}

export class KvstoreIdentityBackend implements IdentityBackend, StateHandler {
  readonly identities: KvIdentities;
  readonly ipcache: KvIPCache;
  readonly node: string;
  readonly nodeIp: string;
  readonly cluster: string;
  /** Every node the store knows, this one included. */
  readonly nodes = new Map<string, NodeInfo>();
  private readonly nodeListeners = new Set<NodeListener>();
  /** Told after each full snapshot (the first one, and every resync after an outage). */
  private readonly snapshotListeners = new Set<() => void>();

  constructor(
    readonly client: KvstoreClient,
    private readonly opts: KvstoreBackendOptions,
  ) {
    this.node = opts.node;
    this.nodeIp = opts.nodeIp;
    this.cluster = opts.cluster ?? 'default';
    this.identities = new KvIdentities(this);
    this.ipcache = new KvIPCache(this);
  }

  /** Publishes this node and loads the mirror (resolves after the first snapshot). */
  async start(): Promise<void> {
    this.publishNode();
    await this.client.watch(this);
  }

  publishNode(patch: { labels?: Record<string, string>; podCIDRs?: string[] } = {}): void {
    if (patch.labels !== undefined) this.opts.nodeLabels = patch.labels;
    if (patch.podCIDRs !== undefined) this.opts.podCIDRs = patch.podCIDRs;
    const n: NodeInfo = {
      name: this.node,
      cluster: this.cluster,
      ip: this.nodeIp,
      podCIDRs: this.opts.podCIDRs ?? [],
      labels: this.opts.nodeLabels ?? {},
    };
    this.client.own(nodeKey(this.cluster, this.node), encodeNode(n));
  }

  onNode(l: NodeListener): () => void {
    this.nodeListeners.add(l);
    return () => this.nodeListeners.delete(l);
  }

  onSnapshot(l: () => void): () => void {
    this.snapshotListeners.add(l);
    return () => this.snapshotListeners.delete(l);
  }

  // ---------------------------------------------------------------- allocation

  /** The cluster identity of a label set, allocated in the store when it is new to the cluster. */
  async allocateLabels(labels: LabelSet): Promise<number> {
    const lk = labelsKey(labels);
    const known = this.identities.byLabels.get(lk);
    if (known !== undefined) return known.id;
    const c = this.client;
    const tried = new Set<number>();
    for (let attempt = 0; attempt < 64; attempt++) {
      const lease = await c.leaseIdNow();
      const refs = await c.etcd.kv.range({
        key: Buffer.from(valuePrefixOf(lk)),
        range_end: prefixEnd(valuePrefixOf(lk)),
      });
      // Someone references the set already: its number, and a reference of ours (guarded).
      for (const kv of refs.kvs) {
        const id = Number(kv.value.toString());
        if (!isCluster(id)) continue;
        this.identities.learn(id, lk);
        return this.identities.byLabels.get(lk)!.id;
      }
      const cand = this.freeId(tried);
      tried.add(cand);
      const vk = valueKey(lk, this.node);
      c.writes++;
      c.keysWritten += 2;
      const r = await c.etcd.kv.txn({
        compare: [
          { key: Buffer.from(idKey(cand)), target: 'Create', result: 'Equal', create_revision: 0 },
          {
            key: Buffer.from(valuePrefixOf(lk)),
            range_end: prefixEnd(valuePrefixOf(lk)),
            target: 'Version',
            result: 'Equal',
            version: 0,
          },
        ],
        success: [
          { request_put: { key: Buffer.from(idKey(cand)), value: Buffer.from(lk) } },
          { request_put: { key: Buffer.from(vk), value: Buffer.from(String(cand)), lease } },
        ],
      });
      if (!r.succeeded) continue; // the number was taken, or the set got a reference meanwhile
      c.ownWritten(vk, String(cand), { key: idKey(cand), value: lk });
      this.identities.learn(cand, lk);
      return cand;
    }
    throw new KvstoreError('kvstore-allocation', `labels ${lk}: no free identity after 64 attempts`);
  }

  /** The lowest number no identity the mirror knows (nor an attempt) holds. */
  private freeId(tried: ReadonlySet<number>): number {
    for (let n = MIN_ID; n <= MAX_ID; n++) if (!this.identities.byId.has(n) && !tried.has(n)) return n;
    throw new KvstoreError('kvstore-allocation', `no free cluster identity in ${MIN_ID}..${MAX_ID}`);
  }

  /**
   * Runs `step` (an engine change that may allocate); when a label set has no cluster identity
   * yet, allocates it in the store and runs the step again. The step must change nothing before
   * it allocates (the engine allocates first).
   */
  async withIdentities<T>(step: () => T | Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await step();
      } catch (e) {
        if (!(e instanceof IdentityPendingError) || i >= 16) throw e;
        await this.allocateLabels(e.labels);
      }
    }
  }

  /** This node's reference on a label set's identity (written on the lease, master key guarded). */
  reference(lk: string, id: number, rewrite = false): void {
    const vk = valueKey(lk, this.node);
    this.client.own(vk, String(id), { key: idKey(id), value: lk });
    if (rewrite) this.client.touch(vk);
  }

  unreference(lk: string): void {
    this.client.disown(valueKey(lk, this.node));
  }

  publishIP(ip: string, id: number): void {
    this.client.own(
      ipKey(this.cluster, ip),
      encodeIPPair({ IP: ip, Mask: null, HostIP: this.nodeIp, ID: id, Key: 0, Metadata: '' }),
    );
  }

  unpublishIP(ip: string): void {
    this.client.disown(ipKey(this.cluster, ip));
  }

  /**
   * Deletes master keys no node references (Cilium's operator does this): each in a transaction
   * that re-checks "no reference" and "unchanged since read", so an allocation racing it wins.
   * Returns the numbers collected.
   */
  async gc(): Promise<number[]> {
    const c = this.client;
    const r = await c.etcd.kv.range({ key: Buffer.from(ID_PREFIX), range_end: prefixEnd(ID_PREFIX) });
    const referenced = new Set<string>();
    const { entries } = await c.list(VALUE_PREFIX);
    for (const k of entries.keys()) {
      const v = parseValueKey(k);
      if (v !== undefined) referenced.add(v.labels);
    }
    const out: number[] = [];
    for (const kv of r.kvs) {
      const id = parseIdKey(kv.key.toString());
      const lk = kv.value.toString();
      if (id === undefined || referenced.has(lk)) continue;
      c.writes++;
      c.keysWritten++;
      const t = await c.etcd.kv.txn({
        compare: [
          { key: kv.key, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision },
          {
            key: Buffer.from(valuePrefixOf(lk)),
            range_end: prefixEnd(valuePrefixOf(lk)),
            target: 'Version',
            result: 'Equal',
            version: 0,
          },
        ],
        success: [{ request_delete_range: { key: kv.key } }],
      });
      if (t.succeeded) out.push(id);
    }
    return out;
  }

  // ---------------------------------------------------------------- fences (moved addresses)

  /** Fences other nodes asked for (key → requester, ip) and acks of ours (ip|requester). */
  private readonly fences = new Map<string, { ip: string; node: string }>();
  private readonly acks = new Map<string, Set<string>>();
  private readonly fenceListeners = new Set<(ip: string, requester: string) => void>();
  private readonly ackListeners = new Set<() => void>();

  /** Hears fences of other nodes: the listener acks once it applied everything seen so far. */
  onFence(l: (ip: string, requester: string) => void): () => void {
    this.fenceListeners.add(l);
    return () => this.fenceListeners.delete(l);
  }

  /** Confirms a fence (after the delta holding everything seen before it was applied). */
  ackFence(ip: string, requester: string): void {
    if ([...this.fences.values()].some((f) => f.ip === ip && f.node === requester))
      this.client.own(ackKey(ip, requester, this.node), '1');
  }

  /**
   * Asks every other node the store knows to confirm it applied the store up to now; resolves with
   * the nodes that did not within `timeoutMs` (a dead agent: its lease takes its state away).
   */
  async fence(ip: string, timeoutMs: number): Promise<string[]> {
    const want = [...this.nodes.keys()].filter((n) => n !== this.node);
    const k = fenceKey(ip, this.node);
    this.acks.set(ip, new Set());
    this.client.own(k, '1');
    const end = Date.now() + timeoutMs;
    try {
      for (;;) {
        const got = this.acks.get(ip) ?? new Set();
        const missing = want.filter((n) => !got.has(n) && this.nodes.has(n));
        if (missing.length === 0 || Date.now() > end) return missing;
        await new Promise<void>((r) => {
          const t = setTimeout(done, 20);
          function done(): void {
            clearTimeout(t);
            r();
          }
          this.ackListeners.add(done);
        });
        this.ackListeners.clear();
      }
    } finally {
      this.client.disown(k);
      this.acks.delete(ip);
    }
  }

  private fenceEvent(key: string, value: string | undefined): boolean {
    if (key.startsWith(FENCE_PREFIX)) {
      const rest = key.slice(FENCE_PREFIX.length);
      const i = rest.lastIndexOf('/');
      const ip = rest.slice(0, i);
      const node = rest.slice(i + 1);
      if (node === this.node) return true;
      if (value === undefined) {
        this.fences.delete(key);
        this.client.disown(ackKey(ip, node, this.node));
      } else {
        this.fences.set(key, { ip, node });
        for (const l of this.fenceListeners) l(ip, node);
      }
      return true;
    }
    if (key.startsWith(ACK_PREFIX)) {
      const [ip, requester, acker] = key.slice(ACK_PREFIX.length).split('/');
      if (requester !== this.node || ip === undefined || acker === undefined) return true;
      if (value !== undefined) this.acks.get(ip)?.add(acker);
      for (const l of [...this.ackListeners]) l();
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- the watch

  snapshot(entries: ReadonlyMap<string, string>): void {
    const ids = new Map<number, string>();
    const ips = new Map<string, RemoteEndpoint>();
    const nodes = new Map<string, NodeInfo>();
    for (const [k, v] of entries) if (!this.fenceEvent(k, v)) this.classify(k, v, ids, ips, nodes);
    for (const [id, lk] of ids) this.identities.learn(id, lk);
    for (const id of [...this.identities.byId.keys()]) if (!ids.has(id)) this.identities.forget(id);
    for (const [ip, e] of ips) this.ipcache.setRemote(ip, e);
    for (const ip of [...this.ipcache.remote.keys()]) if (!ips.has(ip)) this.ipcache.setRemote(ip, undefined);
    for (const n of nodes.values()) this.setNode(n);
    for (const name of [...this.nodes.keys()]) if (!nodes.has(name)) this.dropNode(name);
    // Our own keys may have gone while we were away (lease expired): write them again.
    for (const k of this.client.ownedKeys()) if (!entries.has(k)) this.client.touch(k);
    for (const l of this.snapshotListeners) l();
  }

  put(key: string, value: string): void {
    if (this.fenceEvent(key, value)) return;
    const ids = new Map<number, string>();
    const ips = new Map<string, RemoteEndpoint>();
    const nodes = new Map<string, NodeInfo>();
    this.classify(key, value, ids, ips, nodes);
    for (const [id, lk] of ids) this.identities.learn(id, lk);
    for (const [ip, e] of ips) this.ipcache.setRemote(ip, e);
    for (const n of nodes.values()) this.setNode(n);
  }

  del(key: string): void {
    if (this.fenceEvent(key, undefined)) return;
    const id = parseIdKey(key);
    if (id !== undefined) {
      this.identities.forget(id);
      return;
    }
    if (key.startsWith(ipPrefix(this.cluster))) {
      const ip = key.slice(ipPrefix(this.cluster).length);
      this.ipcache.setRemote(ip, undefined);
      if (this.ipcache.hasLocal(ip)) this.client.touch(key); // ours went (lease): write it again
      return;
    }
    if (key.startsWith(`${NODES_PREFIX}${this.cluster}/`)) {
      const name = key.slice(`${NODES_PREFIX}${this.cluster}/`.length);
      if (name === this.node) this.client.touch(key);
      else this.dropNode(name);
    }
  }

  private classify(
    k: string,
    v: string,
    ids: Map<number, string>,
    ips: Map<string, RemoteEndpoint>,
    nodes: Map<string, NodeInfo>,
  ): void {
    try {
      const id = parseIdKey(k);
      if (id !== undefined) {
        if (isCluster(id)) ids.set(id, v);
        return;
      }
      if (k.startsWith(ipPrefix(this.cluster))) {
        const p = decodeIPPair(k, v);
        if (p.HostIP === this.nodeIp) return; // our own entry
        ips.set(p.IP, {
          ip: p.IP,
          id: p.ID,
          hostIP: p.HostIP,
          ...(p.K8sNamespace === undefined ? {} : { namespace: p.K8sNamespace }),
          ...(p.K8sPodName === undefined ? {} : { pod: p.K8sPodName }),
        });
        return;
      }
      if (k.startsWith(`${NODES_PREFIX}${this.cluster}/`)) {
        const n = decodeNode(k, v);
        nodes.set(n.name, n);
      }
    } catch (e) {
      // a value we cannot read selects nothing (fail closed); status says which
      this.logBad((e as Error).message);
    }
  }

  private logBad(msg: string): void {
    this.badValues.push(msg);
    if (this.badValues.length > 100) this.badValues.shift();
  }

  /** The last values the watch could not decode (for status). */
  readonly badValues: string[] = [];

  private setNode(n: NodeInfo): void {
    const had = this.nodes.get(n.name);
    if (had !== undefined && JSON.stringify(had) === JSON.stringify(n)) return;
    this.nodes.set(n.name, n);
    for (const l of this.nodeListeners) l.nodeUpserted(n);
  }

  private dropNode(name: string): void {
    if (name === this.node || !this.nodes.delete(name)) return;
    for (const l of this.nodeListeners) l.nodeDeleted(name);
  }

  /** Remote endpoints (address → identity, node) the mirror holds. */
  remoteEndpoints(): IterableIterator<RemoteEndpoint> {
    return this.ipcache.remote.values();
  }

  async close(opts: { revoke?: boolean } = {}): Promise<void> {
    await this.client.close(opts);
  }
}
