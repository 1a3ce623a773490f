// IP → identity. Pod addresses map exactly; outside addresses take the identity of the longest
// known prefix (Cilium's LPM ipcache), and world when no prefix covers them.

import { type Prefix, parseIPv4 } from './cidr.ts';
import { ID } from './reserved.ts';

export class IPCache {
  private readonly exact = new Map<string, number>();
  /** Per prefix length: network address → identity. */
  private readonly byLen: Array<Map<number, number>> = Array.from({ length: 33 }, () => new Map());
  private lengths: number[] = [];

  upsertEndpoint(ip: string, id: number): void {
    this.exact.set(ip, id);
  }

  deleteEndpoint(ip: string): void {
    this.exact.delete(ip);
  }

  endpointIdentity(ip: string): number | undefined {
    return this.exact.get(ip);
  }

  upsertPrefix(p: Prefix, id: number): void {
    this.byLen[p.len]!.set(p.addr, id);
    if (!this.lengths.includes(p.len)) this.lengths = [...this.lengths, p.len].sort((a, b) => b - a);
  }

  deletePrefix(p: Prefix): void {
    const m = this.byLen[p.len]!;
    m.delete(p.addr);
    if (m.size === 0) this.lengths = this.lengths.filter((l) => l !== p.len);
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
