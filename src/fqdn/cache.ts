// The node's DNS cache (name → IPs with expiry), fed by the DNS proxy from answers that passed a DNS
// L7 rule, shared by every pod of the node (cilium-semantics.md §12), and the FQDN selector cache
// that turns toFQDNs selectors into IP sets incrementally.
// Time is always passed in (nowMs), so the offline engine and tests are deterministic.

import type { FQDNSelector } from '../policy-api/types.ts';
import { canonicalIP } from './ip.ts';
import { compileFQDNSelector, fqdnSelectorKey, type NameMatcher, normalizeName } from './pattern.ts';

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

  /** Live IPs of every name the matcher accepts (a scan of all names: for one-off questions). */
  ipsMatching(matcher: NameMatcher, nowMs: number): string[] {
    const out = new Set<string>();
    for (const [n, entries] of this.byName) {
      if (!matcher(n)) continue;
      for (const [ip, exp] of entries) if (exp >= nowMs) out.add(ip);
    }
    return [...out].sort();
  }

  /** Every name with at least one entry (live or not yet collected). */
  names(): IterableIterator<string> {
    return this.byName.keys();
  }

  hasName(name: string): boolean {
    return this.byName.has(normalizeName(name));
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

/** Told when the IPs a selector selects change: (selector key, IPs now selected, IPs no longer). */
export type SelectorListener = (
  selector: string,
  added: readonly string[],
  removed: readonly string[],
) => void;

interface SelectorEntry {
  matcher: NameMatcher;
  refs: number;
  /** Cached names this selector matches. */
  names: Set<string>;
}

/**
 * Which toFQDNs selectors select which IPs, kept current as the DNS cache changes. Each name is
 * tested against the selectors once (when first learnt, or when a selector is registered), so
 * asking about an IP costs O(names of that IP).
 */
export class FQDNSelectorCache {
  private readonly selectors = new Map<string, SelectorEntry>();
  private readonly nameSelectors = new Map<string, Set<string>>(); // name → keys of matching selectors
  private readonly listeners = new Set<SelectorListener>();
  private readonly unsubscribe: () => void;

  constructor(private readonly cache: DNSCache) {
    this.unsubscribe = cache.subscribe((n, added, removed, now) => this.onNameChange(n, added, removed, now));
  }

  /** Stops following the DNS cache. */
  close(): void {
    this.unsubscribe();
  }

  subscribe(listener: SelectorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Registers a selector (counted: register as often as rules use it) and returns its key, the
   * handle for every other call. An invalid selector registers fine and selects nothing.
   */
  register(sel: Pick<FQDNSelector, 'matchName' | 'matchPattern'>): string {
    const key = fqdnSelectorKey(sel);
    const existing = this.selectors.get(key);
    if (existing !== undefined) {
      existing.refs++;
      return key;
    }
    const entry: SelectorEntry = { matcher: compileFQDNSelector(sel), refs: 1, names: new Set() };
    this.selectors.set(key, entry);
    for (const n of this.cache.names()) {
      if (!entry.matcher(n)) continue;
      entry.names.add(n);
      this.selectorsOfName(n).add(key);
    }
    return key;
  }

  /** Drops one registration; the selector goes when the last one does. */
  unregister(key: string): void {
    const entry = this.selectors.get(key);
    if (entry === undefined || --entry.refs > 0) return;
    this.selectors.delete(key);
    for (const n of entry.names) this.nameSelectors.get(n)?.delete(key);
  }

  /** Keys of the selectors that select this IP now, sorted. */
  selectorsForIP(ip: string, nowMs: number): string[] {
    const out = new Set<string>();
    for (const n of this.cache.namesForIP(ip, nowMs)) {
      const keys = this.nameSelectors.get(n);
      if (keys !== undefined) for (const k of keys) out.add(k);
    }
    return [...out].sort();
  }

  /** IPs a selector selects now, sorted. */
  ipsForSelector(key: string, nowMs: number): string[] {
    const entry = this.selectors.get(key);
    if (entry === undefined) return [];
    const out = new Set<string>();
    for (const n of entry.names) for (const ip of this.cache.lookupName(n, nowMs)) out.add(ip);
    return [...out].sort();
  }

  private selectorsOfName(n: string): Set<string> {
    let keys = this.nameSelectors.get(n);
    if (keys === undefined) {
      keys = new Set();
      this.nameSelectors.set(n, keys);
    }
    return keys;
  }

  private onNameChange(n: string, added: readonly string[], removed: readonly string[], nowMs: number): void {
    let keys = this.nameSelectors.get(n);
    if (keys === undefined && this.cache.hasName(n)) {
      keys = this.selectorsOfName(n);
      for (const [key, entry] of this.selectors) {
        if (!entry.matcher(n)) continue;
        keys.add(key);
        entry.names.add(n);
      }
    }
    if (keys === undefined) return;
    for (const key of keys) {
      const entry = this.selectors.get(key)!;
      // An IP is new (or gone) for the selector only if no other of its names holds it now.
      const heldElsewhere = (ip: string) =>
        this.cache.namesForIP(ip, nowMs).some((o) => o !== n && entry.names.has(o));
      const a = added.filter((ip) => !heldElsewhere(ip));
      const r = removed.filter((ip) => !heldElsewhere(ip));
      if (a.length === 0 && r.length === 0) continue;
      for (const l of this.listeners) l(key, a, r);
    }
    if (!this.cache.hasName(n)) {
      for (const key of keys) this.selectors.get(key)?.names.delete(n);
      this.nameSelectors.delete(n);
    }
  }
}
