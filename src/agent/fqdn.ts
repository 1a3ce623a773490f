// toFQDNs on a live node (issue 10): the DNS proxy's answers into the node's DNS cache, the
// kernel brought to the new FQDN selections before the answer is released, TTL expiry with
// Cilium's zombies, and the cache persisted per node so a restart keeps FQDN egress.
//
// An answer (`dns-answer` from the DNS proxy, held there until we resolve): learnt into the engine's
// DNS cache with the endpoint that asked; when it added addresses, their fqdn: labels change the
// selections and one NodeRuntime.syncFQDN applies the kernel delta and sends each proxy only what
// changed (fqdn-delta); the answer then waits for the acks of the proxies that judge this
// endpoint's egress to those addresses (its L7 toFQDNs: often none). When it only refreshed known
// addresses, the sync already in flight (if any) is awaited, the same way. Either way the kernel
// (and any proxy judging the pod's connection) allows the addresses when this resolves, so the
// pod's first connection passes.
//
// Expiry: every tick the node namespace's conntrack table says which addresses live connections
// use (DNSCache.setInUse); due entries are dropped (gc) and the kernel synced. An expired address in
// use stays as a zombie: before each sync the established connections to zombies are listed one
// by one in the table's fqdn_zombie set (compile.ts), so they keep working while a new connection
// to the address is judged by policy, which no longer selects it. A zombie goes when conntrack no
// longer has its connection.
//
// Persistence: the cache is written (fqdn/persist.ts, atomic) shortly after each change and at
// stop, and read back by restore() before the node's first transaction (the agent's beforeUp),
// so the table that replaces the previous run's already allows what the cache allows.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type CompiledEndpoint, ZOMBIE_SET } from '../datapath/nft/compile.ts';
import type { DNSCache } from '../fqdn/cache.ts';
import { CACHE_FILE_NAME, readCacheFile, saveCacheFile } from '../fqdn/persist.ts';
import type { PolicyEngineAPI } from '../policy/types.ts';
import { type CtEntry, parseConntrack } from '../proxy/dns/conntrack.ts';
import { type DNSAnswerMessage, epochMs } from '../proxy/ipc.ts';
import { ProxyComponent } from './proxy.ts';
import type { FQDNSyncResult, NodeRuntime, RuntimeComponent } from './runtime.ts';

export interface FQDNComponentOptions {
  /** Where the cache is kept (default: <run dir>/fqdn-cache.json); false: not persisted. */
  cacheFile?: string | false;
  /** The node namespace's conntrack table as text (default: /proc/net/nf_conntrack read there). */
  readConntrack?: (node: string) => Promise<string>;
  /** Runs an nft script in the node namespace (default: ip netns exec <node> nft -f -). */
  runNft?: (node: string, script: string) => Promise<void>;
  /** Expiry and zombie tick (ms, default 1000). */
  tickMs?: number;
  /** Cache writes wait this long for more changes (ms, default 200). */
  persistDelayMs?: number;
  now?: () => number;
  log?: (line: string) => void;
}

/** How long an answer's addresses stay allowed (see the dns-ack message). */
export interface AllowedUntil {
  until: number;
  minTtl: number;
}

export interface FQDNStatus {
  answers: number;
  /** Answers that added addresses (a kernel delta). */
  applied: number;
  /** Kernel deltas those answers needed: answers arriving together share one. */
  syncs: number;
  failed: number;
  /**
   * Answers the DNS proxy released before we acknowledged them (its
   * --tofqdns-proxy-response-max-delay passed): Cilium's proxy_datapath_update_timeout_total.
   */
  datapathUpdateTimeouts: number;
  restored: number;
  expiredOnRestore: number;
  zombies: number;
  /** Established connections listed in fqdn_zombie. */
  zombieConnections: number;
  /**
   * Answer received → kernel (and proxies) allow its addresses, ms: p50 / p99 / samples, over the
   * answers that changed the kernel (a repeat only waits for a sync in flight, if any).
   */
  answerToAllowedMs: LatencySummary;
  /** Of which the kernel delta (compile and nft transaction), ms. */
  kernelDeltaMs: LatencySummary;
  /**
   * From the DNS proxy having the answer to the kernel allowing its addresses, ms (the hop to the
   * agent included, the proxies' acknowledgements not): answers that changed the kernel and say
   * when the proxy had them.
   */
  answerToKernelMs: LatencySummary;
}

/** A latency's p50 and p99 (ms) over its samples (0 without any). */
export interface LatencySummary {
  p50: number;
  p99: number;
  samples: number;
}

/** The DNS cache behind an engine (the real one has it; a stand-in engine may not). */
export function dnsCacheOf(engine: PolicyEngineAPI): DNSCache | undefined {
  return (engine as { dns?: DNSCache }).dns;
}

export function readNodeConntrack(node: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'ip',
      ['netns', 'exec', node, 'cat', '/proc/net/nf_conntrack'],
      { maxBuffer: 256 * 1024 * 1024, encoding: 'latin1' },
      (err, stdout) => (err ? reject(err) : resolve(stdout)),
    );
  });
}

export function runNodeNft(node: string, script: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const p = execFile('ip', ['netns', 'exec', node, 'nft', '-f', '-'], (err, _o, stderr) =>
      err ? reject(new Error(`fqdn_zombie: ${stderr.trim() || err.message}`)) : resolve(),
    );
    p.stdin?.end(script);
  });
}

/** A bounded sample list: the newest 10,000 at most. */
function push(xs: number[], x: number): void {
  xs.push(x);
  if (xs.length > 10_000) xs.splice(0, 5_000);
}

function summary(xs: readonly number[]): LatencySummary {
  const sorted = [...xs].sort((a, b) => a - b);
  const at = (p: number): number =>
    sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return { p50: at(50), p99: at(99), samples: sorted.length };
}

/** Connections that count as "in use" for zombies: everything but a closing TCP connection. */
function live(e: CtEntry): boolean {
  return e.proto === 'udp' || e.state === 'ESTABLISHED' || e.state === 'SYN_RECV' || e.state === 'SYN_SENT';
}

export class FQDNComponent implements RuntimeComponent {
  readonly name = 'fqdn';
  private rt: NodeRuntime | undefined;
  private restoredFor: PolicyEngineAPI | undefined;
  private timer: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private unhook: (() => void) | undefined;
  private conns: CtEntry[] = [];
  private zombieElements = new Set<string>();
  private readonly latencies: number[] = [];
  /** Of which the nft transaction (compile + apply), per answer that changed the kernel. */
  private readonly kernelMs: number[] = [];
  /** From the proxy's `at` to the kernel delta's end, per answer that changed the kernel. */
  private readonly fromProxyMs: number[] = [];
  private readonly counts = {
    answers: 0,
    applied: 0,
    syncs: 0,
    failed: 0,
    datapathUpdateTimeouts: 0,
    restored: 0,
    expiredOnRestore: 0,
  };
  /** A sync asked for and not started yet: answers learnt meanwhile join it (one delta). */
  private joinable: Promise<FQDNSyncResult> | undefined;
  /** The last sync asked for (started or not): what a refreshing answer waits for. */
  private lastSync: Promise<FQDNSyncResult | undefined> = Promise.resolve(undefined);
  /** Per compiled endpoint: the L7 parsers its egress redirects to, by peer identity. */
  private readonly redirects = new WeakMap<CompiledEndpoint, Map<number, Set<string>>>();
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: FQDNComponentOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => {});
  }

  private fileFor(runDir: string): string | undefined {
    if (this.opts.cacheFile === false) return undefined;
    return this.opts.cacheFile ?? join(runDir, CACHE_FILE_NAME);
  }

  /**
   * Loads the persisted cache into the engine's DNS cache (once per engine): call before the
   * node's first transaction. A missing file is no error; a bad one is logged and ignored.
   */
  restore(engine: PolicyEngineAPI, runDir: string, datapath?: NodeRuntime['datapath']): void {
    if (this.restoredFor === engine) return;
    this.restoredFor = engine;
    const file = this.fileFor(runDir);
    const cache = dnsCacheOf(engine);
    if (file === undefined || cache === undefined || !existsSync(file)) return;
    try {
      const snap = readCacheFile(file);
      const r = cache.restore(snap, this.now());
      // the first table must map the restored addresses to their identities (ipcache entries)
      if (datapath !== undefined) {
        const now = this.now();
        const alive = snap.entries.filter((e) => e.expiresAt >= now).map((e) => e.ip);
        for (const ip of new Set([...alive, ...snap.zombies.map((z) => z.ip)]))
          if (!isIPv6(ip)) datapath.declareTestHost({ kind: 'ip', ip }, ip);
      }
      this.counts.restored += r.restored;
      this.counts.expiredOnRestore += r.expired;
      this.log(`fqdn cache: ${r.restored} entries restored from ${file} (${r.expired} expired)`);
    } catch (e) {
      this.log(`fqdn cache: ${(e as Error).message}; starting empty`);
    }
  }

  start(rt: NodeRuntime): void {
    this.rt = rt;
    this.restore(rt.engine, rt.runDir);
    // never fails a sync: a zombie that cannot be listed only means its connection may be cut
    this.unhook = rt.beforeSync(() => this.syncZombies().catch((e: Error) => this.log(`fqdn: ${e.message}`)));
    const tick = this.opts.tickMs ?? 1000;
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.unhook?.();
    this.persist();
  }

  /**
   * One DNS answer; resolves when the kernel allows its addresses (the proxy then releases it),
   * with until when they stay allowed (the proxy need not send a repeat that expires earlier).
   */
  async learn(m: DNSAnswerMessage): Promise<AllowedUntil | undefined> {
    const rt = this.rt;
    if (rt === undefined || this.stopped) throw new Error('the node is not up');
    const t0 = performance.now();
    this.counts.answers++;
    try {
      const cache = dnsCacheOf(rt.engine);
      let added: readonly string[];
      if (cache !== undefined) {
        added = cache.learn(m.name, m.ips, m.ttl, this.now(), m.endpoint).added;
      } else {
        rt.engine.learnDNS(m.name, m.ips, m.ttl, this.now());
        added = m.ips;
      }
      if (added.length > 0) {
        this.counts.applied++;
        // an address the node has no ipcache entry for would stay world in the kernel
        for (const ip of added) {
          if (rt.datapath.nft.state.ipcache.has(ip) || isIPv6(ip)) continue;
          rt.datapath.declareTestHost({ kind: 'ip', ip }, ip);
        }
        const st = await this.syncSoon(rt);
        push(this.kernelMs, st.stats.ms);
        if (m.at !== undefined) push(this.fromProxyMs, epochMs() - m.at);
        await this.proxiesFor(rt, m, st);
        push(this.latencies, performance.now() - t0);
      } else {
        // known addresses: allowed once the sync that carries them (if not done yet) is done
        const [last] = await Promise.all([this.lastSync, rt.synced()]);
        if (last !== undefined) await this.proxiesFor(rt, m, last);
      }
    } catch (e) {
      this.counts.failed++;
      throw e;
    }
    this.persistSoon();
    const cache = dnsCacheOf(rt.engine);
    const until = cache?.allowedUntil(m.name, m.ips, this.now());
    return cache === undefined || until === undefined ? undefined : { until, minTtl: cache.minTTL };
  }

  /**
   * One sync for the answers learnt until it starts: the first answer asks for it, the others
   * arriving before it starts (while an earlier sync runs) join it. Each answer was learnt into
   * the cache before the sync compiles, so the delta carries its addresses.
   */
  private syncSoon(rt: NodeRuntime): Promise<FQDNSyncResult> {
    if (this.joinable !== undefined) return this.joinable;
    const p = rt.synced().then(() => {
      this.joinable = undefined;
      this.counts.syncs++;
      return rt.syncFQDN();
    });
    this.joinable = p;
    this.lastSync = p.catch(() => undefined);
    return p;
  }

  /**
   * Waits for the proxies that judge this endpoint's egress to the answer's addresses: a proxy
   * its egress redirects to for their identities (or for any peer, identity 0). Any other
   * component that follows policy, and every proxy when the endpoint is not known here, is waited
   * for too (fail closed: never released before what judges its connections has the change).
   */
  private async proxiesFor(rt: NodeRuntime, m: DNSAnswerMessage, st: FQDNSyncResult): Promise<void> {
    if (st.acks.length === 0) return;
    const parsers = this.redirectParsers(rt, m);
    const wait = st.acks.filter(
      ({ component: c }) => !(c instanceof ProxyComponent) || parsers === 'all' || parsers.has(c.parser),
    );
    await Promise.all(wait.map((a) => a.acked));
  }

  private redirectParsers(rt: NodeRuntime, m: DNSAnswerMessage): Set<string> | 'all' {
    const dp = rt.datapath;
    const id = dp.endpointIds()[`pod:${m.endpoint}`];
    const ce = id === undefined ? undefined : dp.nft.state.endpoints.get(id);
    if (ce === undefined) return 'all';
    let byId = this.redirects.get(ce);
    if (byId === undefined) {
      byId = new Map();
      const slash = m.endpoint.indexOf('/');
      const pol = rt.engine.endpointPolicy(m.endpoint.slice(0, slash), m.endpoint.slice(slash + 1));
      for (const e of pol.entries) {
        if (e.key.direction !== 'EGRESS' || e.verdict !== 'redirect') continue;
        let s = byId.get(e.key.identity);
        if (s === undefined) {
          s = new Set();
          byId.set(e.key.identity, s);
        }
        s.add(e.l7?.parser ?? '*'); // a redirect without its parser: wait for every proxy
      }
      this.redirects.set(ce, byId);
    }
    const out = new Set<string>(byId.get(0) ?? []);
    for (const ip of m.ips) {
      const identity = dp.nft.state.ipcache.get(ip);
      if (identity === undefined) continue;
      for (const p of byId.get(identity) ?? []) out.add(p);
    }
    return out.has('*') ? 'all' : out;
  }

  /** The DNS proxy released an answer before our ack came. */
  countTimeout(): void {
    this.counts.datapathUpdateTimeouts++;
  }

  /** Prometheus text: Cilium's agent metric for answers released before the datapath was updated. */
  metricsText(): string {
    const name = 'cilium_proxy_datapath_update_timeout_total';
    return [
      `# HELP ${name} Number of total datapath update timeouts due to FQDN IP updates`,
      `# TYPE ${name} counter`,
      `${name} ${this.counts.datapathUpdateTimeouts}`,
      '',
    ].join('\n');
  }

  status(): FQDNStatus {
    const cache = this.rt === undefined ? undefined : dnsCacheOf(this.rt.engine);
    return {
      ...this.counts,
      zombies: cache?.zombieCount ?? 0,
      zombieConnections: this.zombieElements.size,
      answerToAllowedMs: summary(this.latencies),
      kernelDeltaMs: summary(this.kernelMs),
      answerToKernelMs: summary(this.fromProxyMs),
    };
  }

  /** Expiry: conntrack → in use, due entries dropped, the kernel synced (zombies go in first). */
  async tick(): Promise<void> {
    const rt = this.rt;
    if (rt === undefined || this.ticking || this.stopped) return;
    const cache = dnsCacheOf(rt.engine);
    if (cache === undefined) return;
    this.ticking = true;
    try {
      const read = this.opts.readConntrack ?? readNodeConntrack;
      this.conns = parseConntrack(await read(rt.node)).filter(live);
      cache.setInUse(this.conns.map((c) => c.orig.dst));
      const now = this.now();
      if (cache.nextExpiry() < now) {
        const gone = cache.gc(now);
        if (gone.length > 0) {
          this.log(`fqdn: expired ${gone.map((g) => `${g.name} (${g.removed.join(', ')})`).join('; ')}`);
          this.persistSoon();
        }
        await rt.sync();
      } else if (this.zombieElements.size > 0) {
        await this.syncZombies();
      }
    } catch (e) {
      if (!this.stopped) this.log(`fqdn tick: ${(e as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  /** The established connections to zombies, as fqdn_zombie elements (one transaction). */
  private async syncZombies(): Promise<void> {
    const rt = this.rt;
    if (rt === undefined) return;
    const cache = dnsCacheOf(rt.engine);
    if (cache === undefined) return;
    const zombies = new Set(cache.zombies().map((z) => z.ip));
    const want = new Set<string>();
    for (const c of this.conns) {
      if (!zombies.has(c.orig.dst) || (c.proto === 'tcp' && c.state !== 'ESTABLISHED')) continue;
      want.add(`${c.orig.src} . ${c.orig.dst} . ${c.proto} . ${c.orig.dport}`);
    }
    // a full transaction since (adoption, a lost nft session) emptied the set
    const replaced = rt.datapath.lastApply?.kind === 'full' && want.size > 0;
    const same = want.size === this.zombieElements.size && [...want].every((w) => this.zombieElements.has(w));
    if (same && !replaced) return;
    const t = 'inet seawall';
    const lines = [`flush set ${t} ${ZOMBIE_SET}`];
    if (want.size > 0) lines.push(`add element ${t} ${ZOMBIE_SET} { ${[...want].join(', ')} }`);
    await (this.opts.runNft ?? runNodeNft)(rt.node, `${lines.join('\n')}\n`);
    this.zombieElements = want;
  }

  private persistSoon(): void {
    if (this.persistTimer !== undefined || this.stopped) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.persist();
    }, this.opts.persistDelayMs ?? 200);
    this.persistTimer.unref();
  }

  private persist(): void {
    const rt = this.rt;
    if (rt === undefined) return;
    const file = this.fileFor(rt.runDir);
    const cache = dnsCacheOf(rt.engine);
    if (file === undefined || cache === undefined) return;
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
      saveCacheFile(file, cache, this.now());
    } catch (e) {
      this.log(`fqdn cache: cannot write ${file}: ${(e as Error).message}`);
    }
  }
}

/** The node's DNS proxy and the FQDN component it reports answers to, in start order. */
export function dnsComponents(fqdn: FQDNComponent, log: (line: string) => void): RuntimeComponent[] {
  return [
    fqdn,
    new ProxyComponent({
      parser: 'dns',
      log,
      onDNSAnswer: (a) => fqdn.learn(a),
      onDNSTimeout: () => fqdn.countTimeout(),
    }),
  ];
}
