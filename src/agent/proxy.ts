// The node's L7 proxies as runtime components: one child process per parser, run inside the node
// network namespace (`ip netns exec <node> node --import tsx <entry>`), supervised (restarted with
// backoff when it exits), fed the policy mirror over its stdin and read for records and acks on
// its stdout (src/proxy/ipc.ts). Generic over the parser: http, dns and kafka (the DNS proxy's
// answers come back as `dns-answer` and are acknowledged once learnt, onDNSAnswer).
//
// Fail closed: while the process is down, nothing listens on the port nat_pre DNATs to, so a
// redirected SYN gets a RST; until a restarted proxy has its first snapshot it refuses every
// connection (no mirror). A policy change counts as applied when policyChanged() resolves, which
// is after the proxy acknowledged the snapshot's version: no request is judged by an older one
// after that.

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { type CompiledEndpoint, type L7Parser, PROXY_UID } from '../datapath/nft/compile.ts';
import { endpointOf } from '../flow/record.ts';
import type { Flow, FlowEndpoint } from '../flow/types.ts';
import type { EndpointSpec, MapStateEntry, PeerRef, PolicyEngineAPI } from '../policy/types.ts';
import { DNSFlowExpander } from '../proxy/dns/compact.ts';
import { DNS_PROXY_NODE_FLAGS } from '../proxy/dns/node-flags.ts';
import { HTTPFlowExpander } from '../proxy/http/compact.ts';
import { HTTP_PROXY_NODE_FLAGS } from '../proxy/http/node-flags.ts';
import {
  type AgentMessage,
  type DNSAnswerMessage,
  type EndpointPatch,
  type EntryRef,
  encode,
  entryRefKey,
  FLOW_FD_ENV,
  lineDecoder,
  type PolicyDelta,
  type PolicySnapshot,
  type ProxyMessage,
  type SnapshotEndpoint,
} from '../proxy/ipc.ts';
import { resolverFor } from './flows.ts';
import type { NodeRuntime, RuntimeComponent } from './runtime.ts';

const REPO = join(import.meta.dirname, '..', '..');

export const PROXY_ENTRIES: Partial<Record<L7Parser, string>> = {
  http: join(REPO, 'src', 'proxy', 'http', 'main.ts'),
  kafka: join(REPO, 'src', 'proxy', 'kafka', 'main.ts'),
  dns: join(REPO, 'src', 'proxy', 'dns', 'main.ts'),
};

export interface ProxyComponentOptions {
  parser: L7Parser;
  /** Default: PROXY_ENTRIES[parser]. */
  entry?: string;
  uid?: number;
  secretsDir?: string;
  /** First restart delay; doubles up to maxBackoffMs, back to the first after a stable minute. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** How long policyChanged() waits for an ack before it rejects (the change is not applied). */
  ackTimeoutMs?: number;
  /** More arguments for the proxy process (the DNS proxy's --response-max-delay, ...). */
  args?: string[];
  /**
   * The DNS proxy's answers (toFQDNs): resolves once the kernel allows the addresses; the proxy
   * holds the answer until then (agent/fqdn.ts). Without it answers are acknowledged at once.
   */
  onDNSAnswer?: (a: DNSAnswerMessage) => Promise<{ until: number; minTtl: number } | undefined>;
  /** The DNS proxy released an answer before our ack came (its max delay passed). */
  onDNSTimeout?: (m: { endpoint: string; name: string }) => void;
  log?: (line: string) => void;
}

export interface ProxyStatus {
  parser: L7Parser;
  running: boolean;
  pid?: number;
  restarts: number;
  /** Snapshot version the running proxy acknowledged (-1: none yet). */
  acked: number;
  version: number;
  refused: number;
  /**
   * Flow records the proxy lost because its record channel was full (the agent read too slowly),
   * as it reported them; also in hubble_lost_events_total. Absent when none.
   */
  lostRecords?: number;
  /** The uid the running proxy reported after dropping privileges. */
  uid?: number;
}

/**
 * What a proxy was last sent (a snapshot and the deltas after it), for the next FQDN delta: each
 * address's identity, and each local endpoint's compiled form (the datapath keeps that object while
 * the endpoint's policy is unchanged, so a new object is a changed MapState).
 */
interface SentMirror {
  peers: Map<string, number>;
  /** Per endpoint address: its compiled form then, and what the proxy holds (null: not in the mirror). */
  endpoints: Map<string, { compiled: CompiledEndpoint | undefined; mirror: SnapshotEndpoint | null }>;
}

/** An endpoint's mirror entry per compiled form (null: no redirect entry), shared by the proxies. */
const mirrorEndpoints = new WeakMap<CompiledEndpoint, SnapshotEndpoint | null>();

function snapshotEndpoint(engine: PolicyEngineAPI, spec: EndpointSpec): SnapshotEndpoint | undefined {
  const ns = spec.namespace ?? 'default';
  const pol = engine.endpointPolicy(ns, spec.name);
  if (!pol.entries.some((e) => e.verdict === 'redirect')) return undefined;
  return {
    ip: spec.ip,
    endpoint: pol.endpoint,
    namespace: ns,
    ingress: pol.ingress,
    egress: pol.egress,
    entries: pol.entries,
  };
}

/** Compiled endpoints by address (the kernel's view of each local endpoint). */
function compiledByIp(rt: NodeRuntime): Map<string, CompiledEndpoint> {
  const out = new Map<string, CompiledEndpoint>();
  for (const ce of rt.datapath.nft.state.endpoints.values()) out.set(ce.ip, ce);
  return out;
}

/** The mirror the proxies judge from, built from the runtime's engine and datapath. */
export function buildSnapshot(rt: NodeRuntime, version: number, sent?: SentMirror): PolicySnapshot {
  const dp = rt.datapath;
  const engine = rt.engine;
  const resolve = resolverFor(dp);
  const ids = dp.endpointIds();
  const peers: Array<[string, FlowEndpoint]> = [];
  for (const [ip, identity] of dp.nft.state.ipcache) {
    const peer = resolve(ip);
    const id = peer.kind === 'endpoint' ? ids[`pod:${peer.namespace}/${peer.name}`] : undefined;
    peers.push([ip, endpointOf(engine, peer, identity, id)]);
  }
  const compiled = sent === undefined ? undefined : compiledByIp(rt);
  const endpoints: SnapshotEndpoint[] = [];
  for (const { spec } of dp.podSpecs()) {
    const e = snapshotEndpoint(engine, spec);
    if (e !== undefined) endpoints.push(e);
    sent?.endpoints.set(spec.ip, { compiled: compiled?.get(spec.ip), mirror: e ?? null });
  }
  if (sent !== undefined) sent.peers = new Map(dp.nft.state.ipcache);
  const revocations = (engine as { dns?: { revocations?: number } }).dns?.revocations;
  return { version, peers, endpoints, ...(revocations !== undefined ? { fqdnRevision: revocations } : {}) };
}

/** Patches between two mirror entries of an endpoint, made once whichever proxy asks. */
const patches = new WeakMap<SnapshotEndpoint, WeakMap<SnapshotEndpoint, EndpointPatch>>();

function sameJSON(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Same key, verdict, parser, rules and provenance (references first, text only when they differ). */
function sameEntry(a: MapStateEntry, b: MapStateEntry): boolean {
  if (a.verdict !== b.verdict || !sameJSON(a.l7, b.l7)) return false;
  if (a.derivedFrom.length !== b.derivedFrom.length) return false;
  for (let i = 0; i < a.derivedFrom.length; i++)
    if (!sameJSON(a.derivedFrom[i], b.derivedFrom[i])) return false;
  return true;
}

/** The entries that changed from `was` to `now` (one endpoint): removed by reference, added whole. */
export function diffEndpoint(was: SnapshotEndpoint, now: SnapshotEndpoint): EndpointPatch {
  let byNew = patches.get(was);
  const hit = byNew?.get(now);
  if (hit !== undefined) return hit;
  const old = new Map<string, MapStateEntry>();
  for (const e of was.entries) old.set(entryRefKey(e), e);
  const p: EndpointPatch = { ip: now.ip, ingress: now.ingress, egress: now.egress, removed: [], added: [] };
  for (const e of now.entries) {
    const k = entryRefKey(e);
    const o = old.get(k);
    if (o !== undefined) {
      old.delete(k);
      if (sameEntry(o, e)) continue;
      p.removed.push(entryRef(o));
    }
    p.added.push(e);
  }
  for (const o of old.values()) p.removed.push(entryRef(o));
  if (byNew === undefined) {
    byNew = new WeakMap();
    patches.set(was, byNew);
  }
  byNew.set(now, p);
  return p;
}

function entryRef(e: MapStateEntry): EntryRef {
  return e.l7 === undefined
    ? { key: e.key, verdict: e.verdict }
    : { key: e.key, verdict: e.verdict, parser: e.l7.parser };
}

function emptyPatch(p: EndpointPatch, was: SnapshotEndpoint): boolean {
  return (
    p.removed.length === 0 &&
    p.added.length === 0 &&
    sameJSON(p.ingress, was.ingress) &&
    sameJSON(p.egress, was.egress)
  );
}

/**
 * What changed since `sent` (updated to now): addresses whose identity changed, and the entries of
 * endpoints whose compiled form changed (re-read from the engine once per compiled form and diffed
 * once per pair, whichever proxy asks).
 */
export function buildDelta(rt: NodeRuntime, version: number, sent: SentMirror): PolicyDelta {
  const dp = rt.datapath;
  const engine = rt.engine;
  const ipcache = dp.nft.state.ipcache;
  const d: PolicyDelta = {
    version,
    peers: [],
    removedPeers: [],
    endpoints: [],
    patches: [],
    removedEndpoints: [],
  };
  let resolve: ((ip: string) => PeerRef) | undefined;
  let ids: Record<string, number> | undefined;
  for (const [ip, identity] of ipcache) {
    if (sent.peers.get(ip) === identity) continue;
    resolve ??= resolverFor(dp);
    ids ??= dp.endpointIds();
    const peer = resolve(ip);
    const id = peer.kind === 'endpoint' ? ids[`pod:${peer.namespace}/${peer.name}`] : undefined;
    d.peers.push([ip, endpointOf(engine, peer, identity, id)]);
  }
  for (const ip of sent.peers.keys()) if (!ipcache.has(ip)) d.removedPeers.push(ip);
  sent.peers = new Map(ipcache);
  const compiled = compiledByIp(rt);
  const seen = new Set<string>();
  for (const { spec } of dp.podSpecs()) {
    seen.add(spec.ip);
    const ce = compiled.get(spec.ip);
    const was = sent.endpoints.get(spec.ip);
    if (was !== undefined && ce !== undefined && was.compiled === ce) continue;
    let e: SnapshotEndpoint | null | undefined = ce === undefined ? undefined : mirrorEndpoints.get(ce);
    if (e === undefined) {
      e = snapshotEndpoint(engine, spec) ?? null;
      if (ce !== undefined) mirrorEndpoints.set(ce, e);
    }
    const before = was === undefined ? undefined : was.mirror;
    if (e === null) {
      if (before !== null) d.removedEndpoints.push(spec.ip);
    } else if (before === undefined || before === null) {
      d.endpoints.push(e);
    } else if (before !== e) {
      const p = diffEndpoint(before, e);
      if (!emptyPatch(p, before)) d.patches.push(p);
    }
    sent.endpoints.set(spec.ip, { compiled: ce, mirror: e });
  }
  for (const [ip, was] of sent.endpoints) {
    if (seen.has(ip)) continue;
    if (was.mirror !== null) d.removedEndpoints.push(ip);
    sent.endpoints.delete(ip);
  }
  const revocations = (engine as { dns?: { revocations?: number } }).dns?.revocations;
  if (revocations !== undefined) d.fqdnRevision = revocations;
  return d;
}

/**
 * A proxy process's records as the agent takes them: flow messages as they are, the DNS proxy's
 * compact ones expanded (its shapes kept per process), losses counted: those the proxy reported
 * (`flows-lost`) and records whose shape was lost with an earlier batch.
 */
export class ProxyRecords {
  private readonly dns = new DNSFlowExpander();
  private readonly http = new HTTPFlowExpander();

  constructor(private readonly out: { ingest(f: Flow): void; lost(n: number): void }) {}

  take(m: Extract<ProxyMessage, { type: RecordMessageType }>): void {
    switch (m.type) {
      case 'http-shape':
      case 'http-flow':
        this.takeHTTP(m);
        return;
      case 'flow':
        this.out.ingest(m.flow);
        return;
      case 'flows-lost':
        this.out.lost(m.count);
        return;
      case 'dns-shape':
        this.dns.shape(m);
        return;
      case 'dns-flow': {
        const f = this.dns.flow(m);
        if (f !== undefined) this.out.ingest(f);
        else this.out.lost(1);
        return;
      }
    }
  }

  /** The HTTP proxy's compact records (http/compact.ts): a shape kept, a record expanded or lost. */
  private takeHTTP(m: Extract<ProxyMessage, { type: 'http-shape' | 'http-flow' }>): void {
    if (m.type === 'http-shape') {
      this.http.shape(m);
      return;
    }
    const f = this.http.flow(m);
    if (f !== undefined) this.out.ingest(f);
    else this.out.lost(1);
  }
}

/** The messages that carry records (or their loss). */
type RecordMessageType = 'flow' | 'flows-lost' | 'dns-shape' | 'dns-flow' | 'http-shape' | 'http-flow';

export class ProxyComponent implements RuntimeComponent {
  readonly name: string;
  readonly parser: L7Parser;
  private rt: NodeRuntime | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private version = 0;
  private acked = -1;
  private restarts = 0;
  private refused = 0;
  private lostRecords = 0;
  private uid: number | undefined;
  private backoff: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private waiters: Array<{ version: number; resolve: () => void }> = [];
  /** What the running process was sent (undefined: nothing yet, the next push is a snapshot). */
  private sent: SentMirror | undefined;
  private readyWaiters: Array<() => void> = [];
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ProxyComponentOptions) {
    this.name = `${opts.parser} proxy`;
    this.parser = opts.parser;
    this.backoff = opts.backoffMs ?? 200;
    this.log = opts.log ?? (() => {});
  }

  get port(): number {
    const p = this.rt?.datapath.proxy.ports[this.opts.parser];
    if (p === undefined) throw new Error(`no proxy port for parser ${this.opts.parser}`);
    return p;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  status(): ProxyStatus {
    const s: ProxyStatus = {
      parser: this.opts.parser,
      running: this.child !== undefined && this.child.exitCode === null,
      restarts: this.restarts,
      acked: this.acked,
      version: this.version,
      refused: this.refused,
    };
    if (this.lostRecords > 0) s.lostRecords = this.lostRecords;
    if (this.child?.pid !== undefined) s.pid = this.child.pid;
    if (this.uid !== undefined) s.uid = this.uid;
    return s;
  }

  async start(rt: NodeRuntime): Promise<void> {
    this.rt = rt;
    this.spawn();
    await this.policyChanged();
  }

  /** Pushes a new snapshot and resolves once the proxy acknowledged it (or a later one). */
  policyChanged(): Promise<void> {
    return this.update(() => this.push());
  }

  /**
   * An FQDN sync (NodeRuntime.syncFQDN): only what changed since the last push (fqdn-delta), or a
   * snapshot when this process has none yet. Resolves once acknowledged, as policyChanged.
   */
  fqdnChanged(): Promise<void> {
    return this.update(() => (this.sent === undefined ? this.push() : this.pushDelta()));
  }

  private update(send: () => void): Promise<void> {
    const rt = this.rt;
    if (rt === undefined || this.stopping) return Promise.resolve();
    const v = ++this.version;
    const acked = new Promise<void>((resolve) => this.waiters.push({ version: v, resolve }));
    send();
    const ms = this.opts.ackTimeoutMs ?? 20_000;
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${this.name} did not acknowledge policy version ${v} in ${ms} ms`)),
        ms,
      );
      void acked.then(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Resolves when a (re)started proxy process is listening and has the current snapshot. */
  whenReady(): Promise<void> {
    if (this.acked === this.version && this.status().running) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  /** Kills the process (tests of fail-closed; the supervisor restarts it). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const c = this.child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 3_000);
    await gone;
    clearTimeout(t);
  }

  private writable(): ChildProcess | undefined {
    const c = this.child;
    if (c === undefined || this.rt === undefined || c.stdin === null || c.stdin.destroyed) return undefined;
    return c;
  }

  private push(): void {
    const c = this.writable();
    if (c === undefined) return;
    // the current version, whatever was asked: waiters for older versions resolve with it
    const sent: SentMirror = { peers: new Map(), endpoints: new Map() };
    const m: AgentMessage = { type: 'snapshot', snapshot: buildSnapshot(this.rt!, this.version, sent) };
    c.stdin!.write(encode(m));
    this.sent = sent;
  }

  private pushDelta(): void {
    const c = this.writable();
    if (c === undefined || this.sent === undefined) return;
    const m: AgentMessage = { type: 'fqdn-delta', delta: buildDelta(this.rt!, this.version, this.sent) };
    c.stdin!.write(encode(m));
  }

  private spawn(): void {
    const rt = this.rt!;
    const entry = this.opts.entry ?? PROXY_ENTRIES[this.opts.parser];
    if (entry === undefined) throw new Error(`no proxy entry for parser ${this.opts.parser}`);
    const args = [
      'netns',
      'exec',
      rt.node,
      process.execPath,
      ...(this.opts.parser === 'http'
        ? HTTP_PROXY_NODE_FLAGS
        : this.opts.parser === 'dns'
          ? DNS_PROXY_NODE_FLAGS
          : []),
      '--import',
      'tsx',
      entry,
      '--address',
      rt.datapath.proxy.address,
      '--port',
      String(this.port),
      '--uid',
      String(this.opts.uid ?? rt.datapath.proxy.uid ?? PROXY_UID),
      '--node',
      rt.node,
    ];
    if (this.opts.secretsDir !== undefined) args.push('--secrets', this.opts.secretsDir);
    args.push(...(this.opts.args ?? []));
    // fd 3: the DNS proxy's records (process.ts), apart from stdout's acks and DNS answers, which
    // must not queue behind them
    const c = spawn('ip', args, {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, [FLOW_FD_ENV]: '3' },
    });
    this.child = c;
    const startedAt = Date.now();
    c.stdin.on('error', () => {});
    c.stderr.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l.trim() !== '') this.log(`${this.name}: ${l}`);
    });
    // this process's records (the DNS proxy's shape ids are the process's own)
    const records = new ProxyRecords({
      ingest: (f) => this.rt?.flows?.ingestFlow(f),
      lost: (n) => {
        if (this.lostRecords === 0)
          this.log(
            `${this.name}: records lost (the agent read too slowly); counted in hubble_lost_events_total`,
          );
        this.lostRecords += n;
        this.rt?.flows?.addProxyLost(n);
      },
    });
    for (const out of [c.stdout, c.stdio[3] as Readable]) {
      out.on('error', () => {});
      out.on(
        'data',
        lineDecoder<ProxyMessage>(
          (m) => this.onMessage(m, records),
          (line) => this.log(`${this.name}: not a message: ${line.slice(0, 120)}`),
        ),
      );
    }
    c.once('exit', (code, sig) => {
      if (this.child === c) this.child = undefined;
      this.sent = undefined; // the next process starts from a snapshot
      if (this.stopping) return;
      this.acked = -1;
      this.log(`${this.name} exited (${sig ?? code}); restarting in ${this.backoff} ms`);
      if (Date.now() - startedAt > 60_000) this.backoff = this.opts.backoffMs ?? 200;
      this.restartTimer = setTimeout(() => {
        this.restarts++;
        this.spawn();
      }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 5_000);
    });
  }

  private onMessage(m: ProxyMessage, records: ProxyRecords): void {
    switch (m.type) {
      case 'ready':
        this.uid = m.uid;
        this.log(`${this.name} listening on ${m.address}:${m.port} as uid ${m.uid}`);
        this.push();
        return;
      case 'ack': {
        this.acked = Math.max(this.acked, m.version);
        const keep: typeof this.waiters = [];
        for (const w of this.waiters) {
          if (w.version <= this.acked) w.resolve();
          else keep.push(w);
        }
        this.waiters = keep;
        if (this.acked === this.version) for (const r of this.readyWaiters.splice(0)) r();
        return;
      }
      case 'need-snapshot':
        // it could not apply a delta: it refuses everything until this snapshot comes
        this.log(`${this.name}: could not apply policy version ${m.version}; sending a snapshot`);
        this.push();
        return;
      case 'flow':
      case 'flows-lost':
      case 'dns-shape':
      case 'dns-flow':
      case 'http-shape':
      case 'http-flow':
        records.take(m);
        return;
      case 'refused':
        this.refused++;
        return;
      case 'error':
        this.log(`${this.name}: ${m.message}`);
        return;
      case 'dns-answer':
        this.answer(m);
        return;
      case 'dns-timeout':
        this.opts.onDNSTimeout?.(m);
        return;
    }
  }

  private answer(m: DNSAnswerMessage): void {
    const c = this.child;
    const reply = (ack: AgentMessage) => {
      if (c !== undefined && c === this.child && c.stdin !== null && !c.stdin.destroyed)
        c.stdin.write(encode(ack));
    };
    const learn = this.opts.onDNSAnswer;
    if (learn === undefined) {
      reply({ type: 'dns-ack', id: m.id, ok: true });
      return;
    }
    learn(m).then(
      (allowed) =>
        reply({
          type: 'dns-ack',
          id: m.id,
          ok: true,
          ...(allowed ? { until: allowed.until, minTtl: allowed.minTtl } : {}),
        }),
      (e: Error) => {
        this.log(`${this.name}: learning ${m.name} failed: ${e.message}`);
        reply({ type: 'dns-ack', id: m.id, ok: false, error: e.message });
      },
    );
  }
}
