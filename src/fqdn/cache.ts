// The node's DNS cache (name → IPs with expiry), fed by the DNS proxy from answers that passed a DNS
// L7 rule, shared by every pod of the node (cilium-semantics.md §12). toFQDNs selection is the
// policy engine's: learnt names become fqdn: labels of CIDR identities, matched by its SelectorCache.
// Time is always passed in (nowMs), so the offline engine and tests are deterministic.

import { canonicalIP } from './ip.ts';
import { normalizeName } from './pattern.ts';

export interface DNSCacheOptions {
  /** --tofqdns-min-ttl in seconds (default 0: honour the DNS TTL). */
  minTTL?: number;
  /** Most IPs kept per name (default 1000); the entries expiring first are evicted. */
  maxIPsPerName?: number;
}

/** Called after a name's IP set changed (learn, eviction or expiry). */
export type DNSCacheListener = (
  name: string,
  added: readonly string[],
  removed: readonly string[],
  nowMs: number,
) => void;

export interface LearnResult {
  /** Canonical name the IPs were stored under. */
  name: string;
  /** IPs the name did not have (alive) before. */
  added: string[];
  /** IPs the name lost (expired or evicted by the cap). */
  removed: string[];
  /** Inputs that were not IP addresses (ignored). */
  rejected: string[];
}

export class DNSCache {
  private readonly byName = new Map<string, Map<string, number>>(); // name → ip → expiresAt (ms)
  private readonly byIP = new Map<string, Set<string>>(); // ip → names holding it
  private readonly listeners = new Set<DNSCacheListener>();
  /** A lower bound of every entry's expiry (exact after gc): lets callers skip a gc with nothing due. */
  private soonest = Number.POSITIVE_INFINITY;
  readonly minTTL: number;
  readonly maxIPsPerName: number;

  constructor(opts: DNSCacheOptions = {}) {
    this.minTTL = Math.max(0, opts.minTTL ?? 0);
    this.maxIPsPerName = Math.max(1, Math.floor(opts.maxIPsPerName ?? 1000));
  }

  /** Returns an unsubscribe function. */
  subscribe(listener: DNSCacheListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Records a DNS answer: each IP lives until now + max(ttl, minTTL). An IP already known keeps the
   * later of its two expiries. CNAME chains are the caller's to collapse onto the queried name.
   */
  learn(name: string, ips: readonly string[], ttlSeconds: number, nowMs: number): LearnResult {
    const n = normalizeName(name);
    const ttl = Number.isFinite(ttlSeconds) && ttlSeconds > 0 ? ttlSeconds : 0;
    const expiresAt = nowMs + Math.max(ttl, this.minTTL) * 1000;
    const removed = new Set(this.expireName(n, nowMs));
    let entries = this.byName.get(n);
    const added = new Set<string>();
    const rejected: string[] = [];
    for (const raw of ips) {
      const ip = canonicalIP(raw);
      if (ip === undefined) {
        rejected.push(String(raw));
        continue;
      }
      if (entries === undefined) {
        entries = new Map();
        this.byName.set(n, entries);
      }
      const prev = entries.get(ip);
      if (expiresAt < this.soonest) this.soonest = expiresAt;
      if (prev === undefined) {
        entries.set(ip, expiresAt);
        this.index(ip, n);
        if (removed.has(ip))
          removed.delete(ip); // expired and re-learnt in one step: no change
        else added.add(ip);
      } else if (expiresAt > prev) entries.set(ip, expiresAt);
    }
    if (entries !== undefined && entries.size > this.maxIPsPerName) {
      // Keep the entries that live longest; ties keep the earlier-learnt one.
      const order = [...entries].sort((a, b) => b[1] - a[1]);
      for (const [ip] of order.slice(this.maxIPsPerName)) {
        entries.delete(ip);
        this.unindex(ip, n);
        if (added.has(ip)) added.delete(ip);
        else removed.add(ip);
      }
    }
    const result = { name: n, added: [...added], removed: [...removed], rejected };
    this.emit(n, result.added, result.removed, nowMs);
    return result;
  }

  /** Live IPs of a name (expiry ≥ now), sorted. */
  lookupName(name: string, nowMs: number): string[] {
    const entries = this.byName.get(normalizeName(name));
    if (entries === undefined) return [];
    const out: string[] = [];
    for (const [ip, exp] of entries) if (exp >= nowMs) out.push(ip);
    return out.sort();
  }

  /** Names that currently resolve to an IP, sorted. */
  namesForIP(ip: string, nowMs: number): string[] {
    const c = canonicalIP(ip);
    const names = c === undefined ? undefined : this.byIP.get(c);
    if (names === undefined) return [];
    const out: string[] = [];
    for (const n of names) {
      const exp = this.byName.get(n)?.get(c!);
      if (exp !== undefined && exp >= nowMs) out.push(n);
    }
    return out.sort();
  }

  /** The earliest time an entry may expire (+Infinity when empty); nothing expires before it. */
  nextExpiry(): number {
    return this.soonest;
  }

  /** Drops expired entries (expiry < now) and tells listeners; returns what went, per name. */
  gc(nowMs: number): Array<{ name: string; removed: string[] }> {
    const out: Array<{ name: string; removed: string[] }> = [];
    for (const n of [...this.byName.keys()]) {
      const removed = this.expireName(n, nowMs);
      if (removed.length > 0) {
        out.push({ name: n, removed });
        this.emit(n, [], removed, nowMs);
      }
    }
    let soonest = Number.POSITIVE_INFINITY;
    for (const entries of this.byName.values())
      for (const exp of entries.values()) if (exp < soonest) soonest = exp;
    this.soonest = soonest;
    return out;
  }

  private expireName(n: string, nowMs: number): string[] {
    const entries = this.byName.get(n);
    if (entries === undefined) return [];
    const removed: string[] = [];
    for (const [ip, exp] of entries) {
      if (exp < nowMs) {
        entries.delete(ip);
        this.unindex(ip, n);
        removed.push(ip);
      }
    }
    if (entries.size === 0) this.byName.delete(n);
    return removed;
  }

  private index(ip: string, n: string): void {
    let names = this.byIP.get(ip);
    if (names === undefined) {
      names = new Set();
      this.byIP.set(ip, names);
    }
    names.add(n);
  }

  private unindex(ip: string, n: string): void {
    const names = this.byIP.get(ip);
    if (names === undefined) return;
    names.delete(n);
    if (names.size === 0) this.byIP.delete(ip);
  }

  private emit(n: string, added: readonly string[], removed: readonly string[], nowMs: number): void {
    if (added.length === 0 && removed.length === 0) return;
    for (const l of this.listeners) l(n, added, removed, nowMs);
  }
}
