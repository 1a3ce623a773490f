// IP → identity. Pod addresses map exactly; outside addresses take the identity of the longest
// known prefix (Cilium's LPM ipcache), and world when no prefix covers them.

import type { IPCacheAPI, IPCacheListener } from './backend.ts';
import { formatPrefix, type Prefix, parseIPv4 } from './cidr.ts';
import { ID } from './reserved.ts';

/** The writer of calls that name none. */
const ANY_OWNER: object = {};

/** The memory implementation of IPCacheAPI (backend.ts). */
export class IPCache implements IPCacheAPI {
  /** The identity each endpoint address resolves to now: the one lookup reads. */
  private readonly exact = new Map<string, number>();
  /** Per endpoint address, each writer's entry, oldest write first. */
  private readonly claims = new Map<string, Map<object, number>>();
  /** Per prefix length: network address → identity. */
  private readonly byLen: Array<Map<number, number>> = Array.from({ length: 33 }, () => new Map());
  private lengths: number[] = [];
  private readonly listeners = new Set<IPCacheListener>();

  addListener(l: IPCacheListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  upsertEndpoint(ip: string, id: number, owner: object = ANY_OWNER): void {
    let c = this.claims.get(ip);
    if (c === undefined) {
      c = new Map();
      this.claims.set(ip, c);
    }
    c.delete(owner); // re-inserted last: the latest write wins
    c.set(owner, id);
    this.setExact(ip, id);
  }

  deleteEndpoint(ip: string, owner: object = ANY_OWNER): void {
    const c = this.claims.get(ip);
    if (c === undefined || !c.delete(owner)) return;
    let latest: number | undefined;
    for (const id of c.values()) latest = id;
    if (latest !== undefined) {
      this.setExact(ip, latest);
      return;
    }
    this.claims.delete(ip);
    this.exact.delete(ip);
    for (const l of this.listeners) l.ipcacheDeleted(ip);
  }

  private setExact(ip: string, id: number): void {
    if (this.exact.get(ip) === id) return;
    this.exact.set(ip, id);
    for (const l of this.listeners) l.ipcacheUpserted(ip, id);
  }

  endpointIdentity(ip: string): number | undefined {
    return this.exact.get(ip);
  }

  upsertPrefix(p: Prefix, id: number): void {
    const m = this.byLen[p.len]!;
    const old = m.get(p.addr);
    m.set(p.addr, id);
    if (!this.lengths.includes(p.len)) this.lengths = [...this.lengths, p.len].sort((a, b) => b - a);
    if (old !== id) for (const l of this.listeners) l.ipcacheUpserted(formatPrefix(p), id);
  }

  deletePrefix(p: Prefix): void {
    const m = this.byLen[p.len]!;
    const had = m.delete(p.addr);
    if (m.size === 0) this.lengths = this.lengths.filter((l) => l !== p.len);
    if (had) for (const l of this.listeners) l.ipcacheDeleted(formatPrefix(p));
  }

  /** Identity of an address: endpoint, else longest prefix, else world. */
  lookup(ip: string): number {
    const ep = this.exact.get(ip);
    if (ep !== undefined) return ep;
    const addr = parseIPv4(ip);
    if (addr === undefined) return ID.world;
    for (const len of this.lengths) {
      const net = len === 0 ? 0 : (addr & ((0xffffffff << (32 - len)) >>> 0)) >>> 0;
      const id = this.byLen[len]!.get(net);
      if (id !== undefined) return id;
    }
    return ID.world;
  }
}
