// Forwarded SYNs by connection, to record a retransmitted SYN once (Cilium's policy verdict comes
// once, when the connection's conntrack entry is made; nftables logs every SYN that passes
// `ct state new`, retransmits included).
// Keyed without strings: source address → destination address → a number of the ports and the
// direction, so that a SYN costs three map look-ups and no key string (a string per SYN, hashed
// and kept, cost about 2 µs a SYN). The connections seen last are kept, up to a bound: a FIFO of
// insertions (re-inserting moves a connection to its end, as deleting and setting a Map key does)
// evicts the one inserted longest ago.

import type { KernelDir } from './nflog.ts';

/** Ports in a key: 0..65535, or absent (a cut-short header). */
const NO_PORT = 65536;

function portCode(p: number | undefined): number {
  if (p === undefined) return NO_PORT;
  return Number.isInteger(p) && p >= 0 && p <= 65535 ? p : -1;
}

export class RepeatedSYNs {
  /** srcIP → dstIP → ports and direction → FIFO position of the connection's last insertion. */
  private readonly bySrc = new Map<string, Map<string, Map<number, number>>>();
  /** Connections of ports no key holds (never from the kernel): the same, by string. */
  private readonly odd = new Map<string, number>();
  // The FIFO, position p at slot p % cap: the connection's maps and key, and its time.
  private cap = 1024;
  private inner: (Map<number, number> | undefined)[] = new Array(this.cap);
  private keys = new Float64Array(this.cap);
  private times = new Float64Array(this.cap);
  private srcs: (string | undefined)[] = new Array(this.cap);
  private dsts: (string | undefined)[] = new Array(this.cap);
  private head = 0;
  private tail = 0;
  /** Connections held (FIFO positions still current). */
  private live = 0;

  /**
   * @param windowMs a SYN within this of its connection's last recorded one is a repeat
   * @param max connections held at most (the ones inserted longest ago go first)
   */
  constructor(
    private readonly windowMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.live + this.odd.size;
  }

  /**
   * True when this connection's SYN was recorded within the window (at or before `nowMs`): a
   * retransmission. Otherwise the SYN is recorded (as the connection's newest) and false.
   */
  repeated(
    dir: KernelDir,
    srcIP: string,
    sport: number | undefined,
    dstIP: string,
    dport: number | undefined,
    nowMs: number,
  ): boolean {
    const sp = portCode(sport);
    const dp = portCode(dport);
    if (sp < 0 || dp < 0) return this.repeatedOdd(`${dir}|${srcIP}|${sport}|${dstIP}|${dport}`, nowMs);
    const key = (sp * 65537 + dp) * 2 + (dir === 'in' ? 0 : 1);
    let mid = this.bySrc.get(srcIP);
    let conns = mid?.get(dstIP);
    const at = conns?.get(key);
    if (at !== undefined) {
      const prev = this.times[at % this.cap]!;
      if (nowMs - prev < this.windowMs && nowMs >= prev) return true;
    }
    if (mid === undefined) {
      mid = new Map();
      this.bySrc.set(srcIP, mid);
    }
    if (conns === undefined) {
      conns = new Map();
      mid.set(dstIP, conns);
    }
    if (at === undefined) this.live++;
    this.push(conns, key, nowMs, srcIP, dstIP);
    if (this.live > this.max) this.evictOldest();
    return false;
  }

  /** The string-keyed path for ports outside 0..65535, with the same rules and its own bound. */
  private repeatedOdd(key: string, nowMs: number): boolean {
    const prev = this.odd.get(key);
    if (prev !== undefined && nowMs - prev < this.windowMs && nowMs >= prev) return true;
    if (prev !== undefined) this.odd.delete(key);
    this.odd.set(key, nowMs);
    if (this.odd.size > this.max) this.odd.delete(this.odd.keys().next().value!);
    return false;
  }

  /** The FIFO position `p` holds its connection's last insertion. */
  private current(p: number): boolean {
    const s = p % this.cap;
    return this.inner[s]?.get(this.keys[s]!) === p;
  }

  private push(conns: Map<number, number>, key: number, nowMs: number, src: string, dst: string): void {
    if (this.tail - this.head === this.cap) this.compact();
    const p = this.tail++;
    const s = p % this.cap;
    this.inner[s] = conns;
    this.keys[s] = key;
    this.times[s] = nowMs;
    this.srcs[s] = src;
    this.dsts[s] = dst;
    conns.set(key, p);
  }

  /** Drops the FIFO's stale positions; grows it when it stays over half full. */
  private compact(): void {
    const oldCap = this.cap;
    let cap = oldCap;
    if (this.live * 2 > oldCap) cap = oldCap * 2;
    const inner: (Map<number, number> | undefined)[] = cap === oldCap ? this.inner : new Array(cap);
    const keys = cap === oldCap ? this.keys : new Float64Array(cap);
    const times = cap === oldCap ? this.times : new Float64Array(cap);
    const srcs: (string | undefined)[] = cap === oldCap ? this.srcs : new Array(cap);
    const dsts: (string | undefined)[] = cap === oldCap ? this.dsts : new Array(cap);
    // in place when the size stays: each kept position moves down to w ≤ r, a slot already read
    let w = this.head;
    for (let r = this.head; r < this.tail; r++) {
      if (!this.current(r)) continue;
      const from = r % oldCap;
      const to = w % cap;
      const conns = this.inner[from]!;
      const key = this.keys[from]!;
      inner[to] = conns;
      keys[to] = key;
      times[to] = this.times[from]!;
      srcs[to] = this.srcs[from];
      dsts[to] = this.dsts[from];
      conns.set(key, w);
      w++;
    }
    if (cap === oldCap) for (let q = w; q < this.tail; q++) this.clearSlot(q);
    this.tail = w;
    this.cap = cap;
    this.inner = inner;
    this.keys = keys;
    this.times = times;
    this.srcs = srcs;
    this.dsts = dsts;
  }

  /** Removes the connection inserted longest ago (and the maps it leaves empty). */
  private evictOldest(): void {
    while (this.head < this.tail && !this.current(this.head)) this.clearSlot(this.head++);
    if (this.head === this.tail) return;
    const s = this.head % this.cap;
    const conns = this.inner[s]!;
    conns.delete(this.keys[s]!);
    if (conns.size === 0) {
      const mid = this.bySrc.get(this.srcs[s]!);
      if (mid !== undefined && mid.get(this.dsts[s]!) === conns) {
        mid.delete(this.dsts[s]!);
        if (mid.size === 0) this.bySrc.delete(this.srcs[s]!);
      }
    }
    this.clearSlot(this.head++);
    this.live--;
  }

  private clearSlot(p: number): void {
    const s = p % this.cap;
    this.inner[s] = undefined;
    this.srcs[s] = undefined;
    this.dsts[s] = undefined;
  }
}
