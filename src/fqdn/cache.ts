// The node's DNS cache (name → IPs with expiry), fed by the DNS proxy from answers that passed a DNS
// L7 rule, shared by every pod of the node (cilium-semantics.md §12). toFQDNs selection is the
// policy engine's: learnt names become fqdn: labels of CIDR identities, matched by its SelectorCache.
// Time is always passed in (nowMs), so the offline engine and tests are deterministic.
//
// For the live side it also keeps, as Cilium does per endpoint (pkg/fqdn DNSCache in each
// endpoint's DNSHistory): which endpoints looked each name up, capped per endpoint and name
// (--tofqdns-endpoint-max-ip-per-hostname); zombies (an expired address that a live connection
// still uses: out of policy, so new connections are refused, but remembered so the datapath keeps
// the established ones, capped by --tofqdns-max-deferred-connection-deletes); and a serialisable
// snapshot (persist.ts) so an agent restart does not cut FQDN egress.

import { canonicalIP } from './ip.ts';
import { normalizeName } from './pattern.ts';

export interface DNSCacheOptions {
  /** --tofqdns-min-ttl in seconds (default 0: honour the DNS TTL). */
  minTTL?: number;
  /** Most IPs kept per name (default 1000); the entries expiring first are evicted. */
  maxIPsPerName?: number;
  /**
   * --tofqdns-endpoint-max-ip-per-hostname: most IPs one endpoint's lookups keep per name
   * (Cilium's default is 1000 since 1.14; 50 before). Past it the soonest-expiring go, and an IP no
   * other lookup holds leaves the node's cache too.
   */
  maxIPsPerEndpointName?: number;
  /** --tofqdns-max-deferred-connection-deletes: most zombies kept (default 10000); oldest go first. */
  maxZombies?: number;
}

/** One endpoint's lookup of a name: the IPs its answers held and when each expires. */
export interface EndpointLookup {
  endpoint: string;
  name: string;
  ips: Array<{ ip: string; expiresAt: number }>;
}

/** An expired address a live connection still uses (Cilium's DNSZombieMapping). */
export interface Zombie {
  ip: string;
  /** Names that resolved to it when it expired, sorted. */
  names: string[];
  /** Endpoints whose lookups held it, sorted. */
  endpoints: string[];
  /** When its last name expired (ms). */
  expiredAt: number;
}

/** One row of the cache as `seawall fqdn cache list` shows it. */
export interface CacheRow {
  name: string;
  ip: string;
  expiresAt: number;
  /** Endpoints that looked the name up and still hold this IP, sorted. */
  endpoints: string[];
  /** lookup: alive from a DNS answer; connection: a zombie kept for a live connection. */
  source: 'lookup' | 'connection';
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
  /** endpoint → name → ip → expiresAt (ms): who looked what up. */
  private readonly byEndpoint = new Map<string, Map<string, Map<string, number>>>();
  /** Addresses live connections use (the agent's conntrack view): kept as zombies on expiry. */
  private inUse = new Set<string>();
  private readonly zombieMap = new Map<string, Zombie>();
  /** A lower bound of every entry's expiry (exact after gc): lets callers skip a gc with nothing due. */
  private soonest = Number.POSITIVE_INFINITY;
  readonly minTTL: number;
  /**
   * Addresses removed before their expiry (the per-name and per-endpoint caps), ever: a proxy that
   * skips telling us answers it knows are allowed must forget what it knows when this changes.
   */
  revocations = 0;
  readonly maxIPsPerName: number;
  readonly maxIPsPerEndpointName: number;
  readonly maxZombies: number;

  constructor(opts: DNSCacheOptions = {}) {
    this.minTTL = Math.max(0, opts.minTTL ?? 0);
    this.maxIPsPerName = Math.max(1, Math.floor(opts.maxIPsPerName ?? 1000));
    this.maxIPsPerEndpointName = Math.max(1, Math.floor(opts.maxIPsPerEndpointName ?? 1000));
    this.maxZombies = Math.max(0, Math.floor(opts.maxZombies ?? 10_000));
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
  learn(
    name: string,
    ips: readonly string[],
    ttlSeconds: number,
    nowMs: number,
    endpoint?: string,
  ): LearnResult {
    const n = normalizeName(name);
    const ttl = Number.isFinite(ttlSeconds) && ttlSeconds > 0 ? ttlSeconds : 0;
    const expiresAt = nowMs + Math.max(ttl, this.minTTL) * 1000;
    return this.learnAt(n, ips, expiresAt, nowMs, endpoint);
  }

  /** learn with an absolute expiry (restore uses it: a restart must not extend a TTL). */
  private learnAt(
    n: string,
    ips: readonly string[],
    expiresAt: number,
    nowMs: number,
    endpoint: string | undefined,
  ): LearnResult {
    const removed = new Set(this.expireName(n, nowMs));
    let entries = this.byName.get(n);
    const added = new Set<string>();
    const rejected: string[] = [];
    const answer: string[] = [];
    for (const raw of ips) {
      const ip = canonicalIP(raw);
      if (ip === undefined) {
        rejected.push(String(raw));
        continue;
      }
      answer.push(ip);
      if (entries === undefined) {
        entries = new Map();
        this.byName.set(n, entries);
      }
      // A fresh answer for a zombie's address makes it alive again (Cilium's ForceExpireByNameIP).
      this.zombieMap.delete(ip);
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
        this.revocations++;
        if (added.has(ip)) added.delete(ip);
        else removed.add(ip);
      }
    }
    if (endpoint !== undefined && entries !== undefined) {
      const kept = answer.filter((ip) => entries!.has(ip));
      for (const ip of this.recordLookup(endpoint, n, kept, expiresAt, nowMs)) {
        // The endpoint cap evicted it and no other lookup holds it: it leaves the node too.
        entries.delete(ip);
        this.unindex(ip, n);
        this.revocations++;
        if (added.has(ip)) added.delete(ip);
        else removed.add(ip);
      }
      if (entries.size === 0) this.byName.delete(n);
    }
    const result = { name: n, added: [...added], removed: [...removed], rejected };
    this.emit(n, result.added, result.removed, nowMs);
    return result;
  }

  /**
   * Adds this answer's IPs (those the node's cache kept) to the endpoint's lookups of the name and
   * applies the endpoint cap; returns the evicted IPs that no other endpoint's lookup holds.
   */
  private recordLookup(
    endpoint: string,
    n: string,
    ips: readonly string[],
    expiresAt: number,
    nowMs: number,
  ): string[] {
    let names = this.byEndpoint.get(endpoint);
    if (names === undefined) {
      names = new Map();
      this.byEndpoint.set(endpoint, names);
    }
    let mine = names.get(n);
    if (mine === undefined) {
      mine = new Map();
      names.set(n, mine);
    }
    for (const [ip, exp] of mine) if (exp < nowMs) mine.delete(ip);
    for (const ip of ips) {
      const prev = mine.get(ip);
      if (prev === undefined || expiresAt > prev) mine.set(ip, expiresAt);
    }
    const orphans: string[] = [];
    if (mine.size > this.maxIPsPerEndpointName) {
      const order = [...mine].sort((a, b) => b[1] - a[1]);
      for (const [ip] of order.slice(this.maxIPsPerEndpointName)) {
        mine.delete(ip);
        if (!this.heldByAnyEndpoint(n, ip)) orphans.push(ip);
      }
    }
    return orphans;
  }

  private heldByAnyEndpoint(n: string, ip: string): boolean {
    for (const names of this.byEndpoint.values()) if (names.get(n)?.has(ip)) return true;
    return false;
  }

  /** Which endpoints looked a name up, with the IPs their answers still hold (alive), sorted. */
  lookupsOf(name: string, nowMs: number): EndpointLookup[] {
    const n = normalizeName(name);
    const out: EndpointLookup[] = [];
    for (const [endpoint, names] of this.byEndpoint) {
      const mine = names.get(n);
      if (mine === undefined) continue;
      const ips = [...mine]
        .filter(([, exp]) => exp >= nowMs)
        .map(([ip, expiresAt]) => ({ ip, expiresAt }))
        .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
      if (ips.length > 0) out.push({ endpoint, name: n, ips });
    }
    return out.sort((a, b) => (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0));
  }

  /** The names an endpoint looked up that still hold an alive IP, sorted. */
  namesLookedUpBy(endpoint: string, nowMs: number): string[] {
    const names = this.byEndpoint.get(endpoint);
    if (names === undefined) return [];
    const out: string[] = [];
    for (const [n, mine] of names) {
      for (const exp of mine.values()) {
        if (exp >= nowMs) {
          out.push(n);
          break;
        }
      }
    }
    return out.sort();
  }

  /**
   * When the earliest of `ips` leaves the name's entries (ms); undefined when one is not there
   * (expired, evicted, never learnt). Zombies do not count: they allow no new connection.
   */
  allowedUntil(name: string, ips: readonly string[], nowMs: number): number | undefined {
    const entries = this.byName.get(normalizeName(name));
    if (entries === undefined || ips.length === 0) return undefined;
    let until = Number.POSITIVE_INFINITY;
    for (const raw of ips) {
      const ip = canonicalIP(raw);
      const exp = ip === undefined ? undefined : entries.get(ip);
      if (exp === undefined || exp < nowMs) return undefined;
      if (exp < until) until = exp;
    }
    return until;
  }

  /**
   * An endpoint went away: its lookups are forgotten. The node's entries stay until their TTL (other
   * pods share them, as in Cilium); zombies keep their record.
   */
  forgetEndpoint(endpoint: string): void {
    this.byEndpoint.delete(endpoint);
  }

  // ---------------------------------------------------------------- zombies

  /**
   * The addresses live connections use now (the agent's conntrack view; replaces the previous set).
   * A zombie whose address is no longer in use is deleted; an alive address in use becomes a zombie
   * when it expires instead of being forgotten.
   */
  setInUse(ips: Iterable<string>): void {
    const next = new Set<string>();
    for (const raw of ips) {
      const ip = canonicalIP(raw);
      if (ip !== undefined) next.add(ip);
    }
    this.inUse = next;
    for (const ip of [...this.zombieMap.keys()]) if (!next.has(ip)) this.zombieMap.delete(ip);
  }

  /** The names a zombie address had, empty when it is none: one lookup (records ask per flow). */
  zombieNames(ip: string): readonly string[] {
    const c = canonicalIP(ip);
    return (c === undefined ? undefined : this.zombieMap.get(c)?.names) ?? [];
  }

  get zombieCount(): number {
    return this.zombieMap.size;
  }

  /** Zombies, sorted by IP. */
  zombies(): Zombie[] {
    return [...this.zombieMap.values()]
      .map((z) => ({ ...z, names: [...z.names], endpoints: [...z.endpoints] }))
      .sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
  }

  /** A new connection to the IP may be allowed by toFQDNs: some name resolves to it now. */
  allowsNewConnection(ip: string, nowMs: number): boolean {
    return this.namesForIP(ip, nowMs).length > 0;
  }

  /** An established connection to the IP keeps working: alive, or a zombie of a live connection. */
  allowsExistingConnection(ip: string, nowMs: number): boolean {
    const c = canonicalIP(ip);
    return c !== undefined && (this.zombieMap.has(c) || this.namesForIP(c, nowMs).length > 0);
  }

  private bury(ip: string, n: string, nowMs: number): void {
    if (this.maxZombies === 0) return;
    let z = this.zombieMap.get(ip);
    if (z === undefined) {
      z = { ip, names: [], endpoints: [], expiredAt: nowMs };
      this.zombieMap.set(ip, z);
    }
    if (!z.names.includes(n)) z.names = [...z.names, n].sort();
    for (const [endpoint, names] of this.byEndpoint) {
      if (names.get(n)?.has(ip) && !z.endpoints.includes(endpoint))
        z.endpoints = [...z.endpoints, endpoint].sort();
    }
    z.expiredAt = nowMs;
    if (this.zombieMap.size > this.maxZombies) {
      const oldest = [...this.zombieMap.values()].sort((a, b) => a.expiredAt - b.expiredAt)[0]!;
      this.zombieMap.delete(oldest.ip);
    }
  }

  // ---------------------------------------------------------------- listing and persistence

  /** Every alive entry and every zombie, sorted by name then IP (zombies once per name). */
  rows(nowMs: number): CacheRow[] {
    const out: CacheRow[] = [];
    for (const [n, entries] of this.byName) {
      for (const [ip, expiresAt] of entries) {
        if (expiresAt < nowMs) continue;
        const endpoints: string[] = [];
        for (const [endpoint, names] of this.byEndpoint) {
          const exp = names.get(n)?.get(ip);
          if (exp !== undefined && exp >= nowMs) endpoints.push(endpoint);
        }
        out.push({ name: n, ip, expiresAt, endpoints: endpoints.sort(), source: 'lookup' });
      }
    }
    for (const z of this.zombieMap.values()) {
      for (const n of z.names) {
        out.push({
          name: n,
          ip: z.ip,
          expiresAt: z.expiredAt,
          endpoints: [...z.endpoints],
          source: 'connection',
        });
      }
    }
    return out.sort((a, b) =>
      a.name !== b.name
        ? a.name < b.name
          ? -1
          : 1
        : a.ip !== b.ip
          ? a.ip < b.ip
            ? -1
            : 1
          : a.source < b.source
            ? 1
            : -1,
    );
  }

  /** A plain-data snapshot: alive entries with their endpoints, and zombies (persist.ts writes it). */
  snapshot(nowMs: number): CacheSnapshot {
    const entries: CacheSnapshot['entries'] = [];
    for (const r of this.rows(nowMs)) {
      if (r.source === 'lookup')
        entries.push({ name: r.name, ip: r.ip, expiresAt: r.expiresAt, endpoints: r.endpoints });
    }
    return { version: 1, savedAt: nowMs, entries, zombies: this.zombies() };
  }

  /**
   * Loads a snapshot into this cache: entries keep their absolute expiry (a restart does not extend a
   * TTL), those already expired are skipped, zombies come back until the next setInUse says their
   * connections are gone. Listeners hear the additions, so selections are rebuilt.
   */
  restore(snap: CacheSnapshot, nowMs: number): { restored: number; expired: number } {
    let restored = 0;
    let expired = 0;
    for (const e of snap.entries) {
      if (e.expiresAt < nowMs) {
        expired++;
        continue;
      }
      const n = normalizeName(e.name);
      if (e.endpoints.length === 0) this.learnAt(n, [e.ip], e.expiresAt, nowMs, undefined);
      for (const ep of e.endpoints) this.learnAt(n, [e.ip], e.expiresAt, nowMs, ep);
      restored++;
    }
    for (const z of snap.zombies) {
      const ip = canonicalIP(z.ip);
      if (ip === undefined || this.namesForIP(ip, nowMs).length > 0) continue;
      this.zombieMap.set(ip, {
        ip,
        names: [...z.names].sort(),
        endpoints: [...z.endpoints].sort(),
        expiredAt: z.expiredAt,
      });
      this.inUse.add(ip);
    }
    return { restored, expired };
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
        if (this.inUse.has(ip)) this.bury(ip, n, nowMs);
        entries.delete(ip);
        this.unindex(ip, n);
        removed.push(ip);
      }
    }
    if (entries.size === 0) this.byName.delete(n);
    if (removed.length > 0) this.expireLookups(n, nowMs);
    return removed;
  }

  private expireLookups(n: string, nowMs: number): void {
    for (const [endpoint, names] of this.byEndpoint) {
      const mine = names.get(n);
      if (mine === undefined) continue;
      for (const [ip, exp] of mine) if (exp < nowMs) mine.delete(ip);
      if (mine.size === 0) names.delete(n);
      if (names.size === 0) this.byEndpoint.delete(endpoint);
    }
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

/** What persist.ts writes: plain JSON, absolute times in ms since the epoch. */
export interface CacheSnapshot {
  version: 1;
  savedAt: number;
  entries: Array<{ name: string; ip: string; expiresAt: number; endpoints: string[] }>;
  zombies: Zombie[];
}
