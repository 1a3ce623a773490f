// The policy mirror every proxy process judges from: the agent's latest snapshot (peers: IP →
// identity; the endpoints that have redirect entries), replaced whole on each one, and what a
// parser derives from it per connection key (its rule sets), computed once per snapshot so the
// judges' compiled rules and decision memos are reused instead of rebuilt per request. The cache
// is bounded: past MAX_CACHED keys it starts over, so a pod dialling many addresses cannot grow it.

import type { FlowEndpoint } from '../flow/types.ts';
import type { PolicySnapshot, SnapshotEndpoint } from './ipc.ts';

const WORLD = 2;
export const MAX_CACHED = 10_000;

export class SnapshotMirror<T> {
  version = -1;
  protected peers = new Map<string, FlowEndpoint>();
  protected endpoints = new Map<string, SnapshotEndpoint>();
  private cache = new Map<string, T>();

  load(s: PolicySnapshot): void {
    this.peers = new Map(s.peers);
    this.endpoints = new Map(s.endpoints.map((e) => [e.ip, e]));
    this.cache = new Map();
    this.version = s.version;
  }

  /** False until the first snapshot: a proxy without one refuses everything. */
  get loaded(): boolean {
    return this.version >= 0;
  }

  /** The ipcache's identity of an address; world for one the snapshot does not know. */
  identityOf(ip: string): number {
    return this.peers.get(ip)?.identity ?? WORLD;
  }

  peer(ip: string): FlowEndpoint {
    return this.peers.get(ip) ?? { identity: WORLD, labels: ['reserved:world'] };
  }

  endpointOf(ip: string): SnapshotEndpoint | undefined {
    return this.endpoints.get(ip);
  }

  /** The value for `key` in the current snapshot, computed on first use. */
  protected cached(key: string, compute: () => T): T {
    if (this.cache.has(key)) return this.cache.get(key) as T;
    const v = compute();
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, v);
    return v;
  }
}
