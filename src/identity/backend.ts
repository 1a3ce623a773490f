// The identity backend: where an engine gets numeric identities (labels → id) and the IP → identity
// cache from. In memory now (MemoryIdentityBackend); an etcd one (Cilium's kvstore mode, kvstore/)
// can come later behind the same interface. The engine calls it synchronously (decide reads get(id)
// and lookup(ip) on every flow), so a remote backend answers from a local mirror it keeps in sync,
// and tells the engine what others changed through the listeners, as it tells local changes. Where
// allocation needs a round trip (a label set new to the cluster), that wait belongs at the edge: the
// agent awaits the backend before handing the endpoint to the engine.
//
// One backend instance is one node's view: cluster and remote-node identities are what a kvstore
// would share between nodes, while CIDR/FQDN identities (local scope) and the prefixes behind them
// are node-local in Cilium; a kvstore backend keeps those per node, and engines sharing one memory
// backend act for one node (they must share its DNS cache, which the engine checks).

import type { LabelSet } from '../labels/label.ts';
import { type Identity, IdentityAllocator, type IdentityListener } from './allocator.ts';
import type { Prefix } from './cidr.ts';
import { IPCache } from './ipcache.ts';

/**
 * Identity allocation with Cilium's numbering: reserved identities (reserved.ts) always present,
 * cluster identities from 256 (one per distinct label set), remote-node-scoped identities
 * (0x02000000|n), node-local CIDR identities (0x01000000|n). Every allocate takes one reference and
 * every release gives one back; an identity goes away at zero references.
 */
export interface IdentityAllocatorAPI {
  get(id: number): Identity | undefined;
  all(): Iterable<Identity>;
  readonly size: number;
  /** Cluster identity of a label set, allocated on first use. */
  allocate(labels: LabelSet): Identity;
  /** A remote node's identity (remote-node scope); nodes with equal labels share one. */
  allocateNode(labels: LabelSet): Identity;
  /** Gives back one reference of an identity from allocate, allocateNode or allocateCIDR. */
  release(identity: Identity): void;
  /** CIDR identity of a prefix (/0 is world, never counted). */
  allocateCIDR(prefix: Prefix): Identity;
  releaseCIDR(prefix: Prefix): void;
  /** The CIDR identity of a prefix while someone holds it. */
  cidrIdentity(prefix: Prefix): Identity | undefined;
  /** The DNS names whose live answers include a CIDR identity's address (its fqdn: labels). */
  setFQDNNames(identity: Identity, names: ReadonlySet<string>): void;
  /**
   * Hears every identity added, removed or relabelled, whoever caused it (this node's engine or,
   * with a shared store, another node). Returns the function that unsubscribes.
   */
  addListener(l: IdentityListener): () => void;
}

/** Changes of the IP → identity cache; `key` is an address or a prefix (a.b.c.d/len). */
export interface IPCacheListener {
  /** The identity `key` resolves to is now `id` (a new entry or a changed one). */
  ipcacheUpserted(key: string, id: number): void;
  ipcacheDeleted(key: string): void;
}

/**
 * IP → identity, as Cilium's ipcache: endpoint addresses exactly, other addresses by the longest
 * known prefix, world when none covers them. Endpoint entries are kept per writer (`owner`: one per
 * engine), so that one writer's delete never removes an entry another still holds; an address
 * resolves to the latest write of those still holding it.
 */
export interface IPCacheAPI {
  upsertEndpoint(ip: string, id: number, owner?: object): void;
  deleteEndpoint(ip: string, owner?: object): void;
  endpointIdentity(ip: string): number | undefined;
  upsertPrefix(p: Prefix, id: number): void;
  deletePrefix(p: Prefix): void;
  /** Identity of an address: endpoint, else longest prefix, else world. */
  lookup(ip: string): number;
  /** Returns the function that unsubscribes. */
  addListener(l: IPCacheListener): () => void;
}

export interface IdentityBackend {
  readonly identities: IdentityAllocatorAPI;
  readonly ipcache: IPCacheAPI;
}

/** The in-process backend: the allocator and the ipcache the engine has always used. */
export class MemoryIdentityBackend implements IdentityBackend {
  readonly identities = new IdentityAllocator();
  readonly ipcache = new IPCache();
}
