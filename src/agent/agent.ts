// The per-node agent: a directory of policy YAML (the default store) and a set of endpoints go
// into the engine; the engine's MapState goes into the kernel as nftables deltas. The policy
// directory is watched; a file that does not validate is reported and its last good version
// stays enforced. `status` is served as JSON over a unix socket (HTTP), for `seawall agent status`.
//
// Flow records: a FlowPipeline (flows.ts) turns the kernel's NFLOG verdicts into Hubble records
// (flow log, flows.sock, metrics); agent/hubble.ts serves them as Hubble's gRPC API (hubble.sock).
// Without ulogd2 the agent still enforces and says why it has no records; `/metrics` on the status
// socket serves Hubble's counters.
//
// Fail closed: the table lives in the node namespace, independent of this process. SIGKILL leaves
// it enforcing; a restart adopts the namespaces and replaces the table in one transaction.

import { type FSWatcher, lstatSync, mkdirSync, rmSync, statSync, watch } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { DatapathError } from '../datapath/exec.ts';
import { countEntries } from '../datapath/nft/compile.ts';
import type { NodeDatapath } from '../datapath/node.ts';
import { DEFAULT_NODE, runDirFor } from '../datapath/topology.ts';
import { Underlay } from '../datapath/underlay.ts';
import type { Workload } from '../flow/types.ts';
import { toEndpointSpec } from '../k8s/types.ts';
import { WORKLOAD_KINDS, workloadsFrom } from '../k8s/workloads.ts';
import type { EndpointSpec, EngineFactory, PolicyEngineAPI } from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import { loadPolicyBytes } from '../policy-api/load.ts';
import type { OtherObject, PolicyObject } from '../policy-api/types.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import { endpointConfigRoute } from './endpoint-config.ts';
import type { FlowPipelineStatus } from './flows.ts';
import { dnsComponents, FQDNComponent, type FQDNStatus } from './fqdn.ts';
import { HubbleComponent } from './hubble.ts';
import { type AgentKvstoreOptions, endpointsOfNode, KvstoreNode, type KvstoreNodeStatus } from './kvstore.ts';
import { readPolicyDir } from './policy-dir.ts';
import {
  DEFAULT_STABLE_MS,
  type PendingChange,
  PolicyStore,
  policyKey,
  SCAN_SLICE_MS,
  type ScanProgress,
} from './policy-store.ts';
import { ProxyComponent } from './proxy.ts';
import { checkEndpointAddresses, checkNodeName, NodeRuntime, type RuntimeComponent } from './runtime.ts';

export { checkEndpointAddresses, checkNodeName };

/** The periodic resync: a watch event missed (or a watcher lost) is corrected within this. */
export const DEFAULT_RESYNC_MS = 3000;

/** The status API's socket: one per node, so agents of different nodes never share one. */
export function defaultSocket(node: string = DEFAULT_NODE): string {
  return join(runDirFor(node), 'agent.sock');
}

export interface AgentOptions {
  policies: string;
  endpoints: string;
  node?: string;
  socket?: string;
  /** A change is applied once the file's content is unchanged for this long (ms). */
  debounceMs?: number;
  /** Period of the resync that compares content hashes (ms; 0: none). */
  resyncMs?: number;
  /** Size cap of one policy file (bytes). */
  maxPolicyBytes?: number;
  statusLimits?: Partial<typeof STATUS_LIMITS>;
  createEngine?: EngineFactory;
  log?: (line: string) => void;
  /** Flow log file (default /run/seawall/<node>/flows.jsonl). */
  flowLog?: string;
  /** Local HTTP flow API socket (default /run/seawall/<node>/flows.sock). */
  flowSocket?: string;
  /** Hubble's gRPC API: unix socket (default /run/seawall/<node>/hubble.sock), TCP address, ring size. */
  hubble?: {
    socket?: string;
    listenAddress?: string;
    eventBufferCapacity?: number;
    /** Fold identical drops within this window (ms); default 0: every drop is a record. */
    dropFoldWindowMs?: number;
    /** Hubble's `--hubble-metrics` string (metrics/plugins.ts). */
    metrics?: string;
  };
  /** false: no flow records at all (enforcement only). */
  flows?: boolean;
  /** How long a delta may wait for `nft -i` before it is killed and the table replaced (ms). */
  nftTimeoutMs?: number;
  /** --policy-audit-mode: every endpoint in PolicyAuditMode (policy drops pass, reported AUDIT). */
  policyAuditMode?: boolean;
  /** headerMatches secrets for the HTTP proxy: DIR/NAMESPACE/NAME files. */
  secretsDir?: string;
  /** Kvstore mode (several nodes through etcd); absent: the single-node local store. */
  kvstore?: AgentKvstoreOptions;
}

export interface EndpointSource {
  namespaces: Map<string, Record<string, string>>;
  endpoints: EndpointSpec[];
  issues: Issue[];
  /** `namespace/name` → the workload an endpoint stands for (Deployment, ...; not bare Pods). */
  workloads: Map<string, Workload>;
}

/**
 * Endpoints from PolicyTest files (their endpoints and namespaces) or Kubernetes manifests (Pods,
 * Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs: one endpoint per workload;
 * Namespaces for their labels), read the same way as the offline commands read them.
 */
export async function loadEndpoints(path: string): Promise<EndpointSource> {
  const namespaces = new Map<string, Record<string, string>>();
  const endpoints: EndpointSpec[] = [];
  const issues: Issue[] = [];
  const others: OtherObject[] = [];
  const read = readPolicyDir(path);
  for (const s of read.skipped) issues.push(skippedIssue(s.path, s.reason));
  for (const { path: file, bytes } of read.files) {
    const text = bytes.toString('utf8');
    if (/^kind:\s*["']?PolicyTest/m.test(text)) {
      const parsed = await loadPolicyTestFile(file);
      issues.push(...parsed.issues.filter((i) => i.severity === 'error'));
      for (const t of parsed.tests) {
        for (const ns of t.namespaces) namespaces.set(ns.name, ns.labels);
        for (const ep of t.endpoints) if (!ep.external) endpoints.push(toEndpointSpec(ep));
      }
      continue;
    }
    others.push(...loadPolicyBytes(file, bytes, { lint: false }).others);
  }
  const w = workloadsFrom(
    others,
    endpoints.map((e) => e.ip),
  );
  issues.push(...w.issues.filter((i) => i.severity === 'error'));
  for (const ns of w.namespaces) namespaces.set(ns.name, ns.labels);
  for (const ep of w.endpoints) endpoints.push(toEndpointSpec(ep));
  for (const ep of endpoints)
    if (ep.namespace && !namespaces.has(ep.namespace)) namespaces.set(ep.namespace, {});
  // the records' `workloads`: an endpoint made of a Deployment (...) is owned by it
  const workloads = new Map<string, Workload>();
  for (const o of others) {
    const meta = (o.value as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    if (o.kind === 'Pod' || !WORKLOAD_KINDS.includes(o.kind) || typeof meta?.name !== 'string') continue;
    const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default';
    workloads.set(`${ns}/${meta.name}`, { name: meta.name, kind: o.kind });
  }
  return { namespaces, endpoints, issues, workloads };
}

function skippedIssue(file: string, reason: string): Issue {
  return {
    severity: 'error',
    code: 'file-skipped',
    message: `skipped: ${reason}`,
    path: '',
    pos: { file, line: 0, column: 0 },
  };
}

export interface AgentStatus {
  node: string;
  pid: number;
  policies: string[];
  invalidFiles: Array<{ file: string; issues: string[] }>;
  /** Files not read (FIFO, device, too large, symlink loop), each with why; their last good version stays. */
  skippedFiles: Array<{ file: string; reason: string }>;
  /** Changes seen but not applied yet: a file is applied once its content is stable. */
  pendingChanges: PendingChange[];
  /** The store could not be read at the last scan (the last good state stays). */
  storeError?: string;
  /** A scan of the store in progress: files looked at so far of how many. */
  loading?: ScanProgress;
  /**
   * `starting` while the agent loads and builds its node (status answers from the first file on),
   * `enforcing` once the node is up: endpoints, identities and counts are the kernel's, so they
   * stay empty until then.
   */
  phase: 'starting' | 'enforcing';
  watch: {
    /** Directories watched now (the store's, and its parent for a swap of the whole directory). */
    watchers: number;
    /** Watchers re-armed (after a rename or swap of the directory, or a watcher error). */
    rearms: number;
    errors: number;
  };
  resync: {
    intervalMs: number;
    runs: number;
    /** Changes the periodic resync found that no watch event had announced. */
    corrections: number;
  };
  endpoints: Array<{
    endpoint: string;
    id: number;
    ip: string;
    identity: number;
    ingress: string;
    egress: string;
    entries: number;
    /** PolicyAuditMode (agent-wide or `seawall endpoint config`): policy drops pass as AUDIT. */
    policyAuditMode?: true;
  }>;
  identities: Array<{ ip: string; identity: number }>;
  counts: { endpoints: number; ipcache: number; elements: number };
  lastApply?: { kind: string; lines: number; ms: number };
  applies: number;
  /** The flow pipeline; state "unavailable" with a reason when ulogd2 is missing. */
  flows: FlowPipelineStatus | { state: 'disabled' };
  /** Kvstore mode: the store's reachability and what this node mirrors. */
  kvstore?: KvstoreNodeStatus;
  /** toFQDNs: DNS answers learnt, kernel deltas, answers released past the max delay. */
  fqdn?: FQDNStatus;
}

/** Limits of the status API: it is local, but nothing may exhaust the agent's descriptors. */
export const STATUS_LIMITS = {
  maxConnections: 64,
  maxHeaderSize: 8 * 1024,
  maxBodyBytes: 4 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 15_000,
};

/**
 * Whether a live agent answers on `path`. A socket nobody answers on is stale (a crashed run's)
 * and is removed; anything else at the path (a live agent, a file that is not a socket) is
 * refused: taking it over would leave its owner unreachable, and deleting it on exit worse.
 */
export async function claimSocket(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) {
    throw new DatapathError('socket-in-use', `${path} exists and is not a socket; refusing to replace it`);
  }
  const answered = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    const done = (v: boolean): void => {
      c.removeAllListeners();
      c.on('error', () => {});
      c.destroy();
      resolve(v);
    };
    c.setTimeout(1000, () => done(true)); // accepted but slow: someone holds it
    c.once('connect', () => done(true));
    c.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
  if (answered) {
    throw new DatapathError(
      'socket-in-use',
      `another agent is running on ${path}; stop it first, or give this one another --socket or --node`,
    );
  }
  rmSync(path, { force: true }); // stale: nobody answers
}

export class Agent {
  private engine!: PolicyEngineAPI;
  private kv: KvstoreNode | undefined;
  /** The node is up (rt.start resolved): status reports the kernel's view from then on. */
  private enforcing = false;
  private runtime: NodeRuntime | undefined;
  private server: Server | undefined;
  private readonly store: PolicyStore;
  /** The policies in the engine, by key: a reload upserts only those that changed. */
  private enforced = new Map<string, PolicyObject>();
  private applies = 0;
  private reloading: Promise<void> = Promise.resolve();
  /** start() in progress; stop() lets its current step finish, then tears down. */
  private starting: Promise<void> | undefined;
  private stopping = false;
  /** Watchers: the store's directories, and its parent (a swap of the whole directory). */
  private readonly watchers = new Map<string, FSWatcher>();
  private watchedRootIno: number | undefined;
  private watching = false;
  private watchCounts = { rearms: 0, errors: 0 };
  /** A watch event came since the last scan (the resync then is not the one correcting). */
  private eventSeen = false;
  private eventTimer: NodeJS.Timeout | undefined;
  /** What the events since the last scan named; `eventFull`: one needs a walk of the store. */
  private eventNames: Array<{ dir: string; name: string | null }> = [];
  private eventFull = false;
  private settleTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncCounts = { runs: 0, corrections: 0 };
  /** toFQDNs: the DNS proxy's answers, expiry, the persisted cache (agent/fqdn.ts). */
  readonly fqdn = new FQDNComponent({ log: (l) => this.log(l) });
  readonly socket: string;
  private readonly log: (line: string) => void;

  constructor(readonly opts: AgentOptions) {
    this.socket = opts.socket ?? defaultSocket(opts.node ?? DEFAULT_NODE);
    this.log = opts.log ?? ((l) => process.stderr.write(`seawall agent: ${l}\n`));
    this.store = new PolicyStore(opts.policies, {
      stableMs: opts.debounceMs ?? DEFAULT_STABLE_MS,
      ...(opts.maxPolicyBytes !== undefined ? { maxBytes: opts.maxPolicyBytes } : {}),
      log: (l) => this.log(l),
    });
  }

  get nodeName(): string {
    return this.opts.node ?? DEFAULT_NODE;
  }

  private get node(): NodeDatapath {
    if (this.runtime === undefined) throw new DatapathError('agent-stopped', 'the node is not up');
    return this.runtime.datapath;
  }

  /**
   * Loads endpoints and policies, brings the node up and starts serving. A stop() during startup
   * makes it reject with code `agent-stopped` at the next step (after stop() tore down).
   */
  start(): Promise<void> {
    if (this.starting === undefined) this.starting = this.startSteps();
    return this.starting;
  }

  private checkStopping(): void {
    if (this.stopping) throw new DatapathError('agent-stopped', 'stopped during startup');
  }

  private async startSteps(): Promise<void> {
    // before anything is made or written: a bad name, a live agent's socket, an IPv6 endpoint
    checkNodeName(this.nodeName);
    await claimSocket(this.socket);
    this.checkStopping();
    const factory =
      this.opts.createEngine ??
      ((await import('../policy/default-engine.ts')) as { defaultEngineFactory: EngineFactory })
        .defaultEngineFactory;
    const ko = this.opts.kvstore;
    if (ko !== undefined) {
      // the store's state before the engine: the first transaction holds every remote endpoint
      this.kv = new KvstoreNode({
        endpoint: ko.endpoint,
        node: this.nodeName,
        nodeIp: ko.nodeIp,
        ...(ko.podCIDRs !== undefined ? { podCIDRs: ko.podCIDRs } : {}),
        ...(ko.nodeLabels !== undefined ? { nodeLabels: ko.nodeLabels } : {}),
        ...(ko.underlay !== undefined ? { underlay: new Underlay(ko.underlay) } : {}),
        ...(ko.leaseTtlSeconds !== undefined ? { leaseTtlSeconds: ko.leaseTtlSeconds } : {}),
        log: (l) => this.log(l),
      });
      await this.kv.connect();
      this.checkStopping();
    }
    const config = this.opts.policyAuditMode === true ? { policyAuditMode: true } : {};
    this.engine =
      this.kv === undefined
        ? factory(config)
        : factory({ ...config, localNode: this.nodeName }, { identity: this.kv.backend });
    const src = await loadEndpoints(this.opts.endpoints);
    this.checkStopping();
    if (ko !== undefined) src.endpoints = endpointsOfNode(src.endpoints, ko.k8sNode ?? this.nodeName);
    checkEndpointAddresses(src.endpoints);
    for (const i of src.issues) this.log(`endpoints: ${i.pos.file}:${i.pos.line}: ${i.message}`);
    for (const [ns, labels] of src.namespaces) this.engine.upsertNamespace(ns, labels);
    await this.kv?.prepare(this.engine, src.endpoints);
    const rt = new NodeRuntime({
      engine: this.engine,
      node: this.nodeName,
      ...(ko !== undefined ? { nodeIp: ko.nodeIp } : {}),
      // one transaction replaces whatever a previous run left: no allow-all window
      adopt: true,
      ...(this.opts.nftTimeoutMs !== undefined ? { nftTimeoutMs: this.opts.nftTimeoutMs } : {}),
      flows:
        this.opts.flows === false
          ? false
          : {
              ...(this.opts.flowLog !== undefined ? { flowLog: this.opts.flowLog } : {}),
              ...(this.opts.flowSocket !== undefined ? { socket: this.opts.flowSocket } : {}),
              ...(this.opts.hubble?.eventBufferCapacity !== undefined
                ? { ringCapacity: this.opts.hubble.eventBufferCapacity }
                : {}),
              policyRevision: () => this.applies,
              workloadsOf: (p) => {
                const w = p.kind === 'endpoint' ? src.workloads.get(`${p.namespace}/${p.name}`) : undefined;
                return w !== undefined ? [w] : undefined;
              },
              ...(this.opts.hubble?.metrics !== undefined ? { metrics: this.opts.hubble.metrics } : {}),
              ...(this.opts.hubble?.dropFoldWindowMs !== undefined
                ? { dedupWindowMs: this.opts.hubble.dropFoldWindowMs }
                : {}),
            },
      // the HTTP proxy before the watcher: every later policy change waits for its ack
      components: [
        new HubbleComponent({
          ...(this.opts.hubble?.socket !== undefined ? { unixSocket: this.opts.hubble.socket } : {}),
          ...(this.opts.hubble?.listenAddress !== undefined
            ? { listenAddress: this.opts.hubble.listenAddress }
            : {}),
          log: (l) => this.log(l),
        }),
        ...(this.kv !== undefined ? [this.kv.component()] : []),
        this.statusApi(),
        new ProxyComponent({
          parser: 'http',
          log: (l) => this.log(l),
          ...(this.opts.secretsDir !== undefined ? { secretsDir: this.opts.secretsDir } : {}),
        }),
        new ProxyComponent({ parser: 'kafka', log: (l) => this.log(l) }),
        ...dnsComponents(this.fqdn, (l) => this.log(l)),
        this.policyWatcher(),
      ],
      keep: 'flow-log',
      log: (l) => this.log(l),
    });
    this.runtime = rt;
    this.kv?.attach(rt);
    const prev = rt.previous;
    const ids = prev?.extra?.endpointIds;
    if (ids && typeof ids === 'object') rt.datapath.rememberIds(ids as Record<string, number>);
    const lastGood = prev?.extra?.lastGood;
    if (lastGood && typeof lastGood === 'object') this.store.restore(lastGood as Record<string, string>);
    await this.serve(); // status answers (with the load's progress) while thousands of files load
    await rt.start({
      pods: src.endpoints,
      beforeUp: async () => {
        // Two reads a settle time apart: a file being written as the agent starts is enforced
        // in its saved last good version (or not at all) until it is stable.
        await this.store.scanAsync();
        await new Promise((r) => setTimeout(r, this.store.stableMs));
        this.checkStopping();
        await this.store.scanAsync();
        await this.applyToEngine();
        this.fqdn.restore(this.engine, rt.runDir, rt.datapath); // the first table allows what the cache allows
        this.applies++; // the first transaction
      },
    });
    this.enforcing = true;
    const c = countEntries(rt.datapath.nft.state);
    this.log(
      `enforcing on ${this.nodeName}: ${c.endpoints} endpoints, ${c.ipcache} ipcache entries, ${c.elements} set elements`,
    );
  }

  /** The status API as a node component: after the flow pipeline, before the watcher. */
  private statusApi(): RuntimeComponent {
    return {
      name: 'status API',
      start: async (rt) => {
        const fs = rt.flows?.status();
        if (fs?.state === 'running')
          this.log(`flow records: ${fs.flowLog ?? '(no file)'}, API on ${fs.socket}`);
        else if (fs !== undefined)
          this.log(`WARNING: flow records unavailable (${fs.reason ?? fs.state}); enforcing without them`);
        if (this.server === undefined) await this.serve();
      },
      stop: () => this.closeServer(),
    };
  }

  private policyWatcher(): RuntimeComponent {
    return {
      name: 'policy watcher',
      start: () => this.watch(),
      stop: async () => {
        this.unwatch();
        await this.reloading;
      },
    };
  }

  /**
   * The store's good versions into the engine: removed policies out, changed ones upserted, in
   * slices. A half-applied engine never reaches the kernel: the only sync follows this in the
   * serialized reload chain, and startup applies before the node is up.
   */
  private async applyToEngine(): Promise<void> {
    const next = this.store.policies();
    for (const k of this.enforced.keys()) {
      if (next.has(k)) continue;
      const [kind, ns, name] = k.split('/') as [string, string, string];
      this.engine.removePolicy(kind, ns === '' ? undefined : ns, name);
    }
    let slice = performance.now();
    for (const [k, p] of next) {
      if (this.enforced.get(k) === p) continue; // the store keeps an unchanged file's objects
      if (performance.now() - slice >= SCAN_SLICE_MS) {
        await new Promise((r) => setImmediate(r)); // status keeps answering through thousands
        slice = performance.now();
      }
      for (const i of this.engine.upsertPolicy(p)) {
        if (i.severity === 'error') this.log(`${policyKey(p)}: ${i.code}: ${i.message}`);
      }
    }
    this.enforced = next;
    if (this.runtime) {
      this.node.topo.extra = { ...this.node.topo.extra, lastGood: this.store.lastGoodTexts() };
      this.node.topo.persist();
    }
  }

  /** An endpoint option changed (`seawall endpoint config`): into the kernel, after reloads in flight. */
  private syncAfterReloads(): Promise<void> {
    const done = this.reloading.then(async () => {
      await (this.runtime?.sync() ?? this.node.sync());
    });
    this.reloading = done.catch((e: unknown) => this.log(`endpoint config: ${(e as Error).message}`));
    return done;
  }

  /**
   * Reads the store and applies what is stable, as one delta; serialized. `now`: an explicit
   * reload (POST /reload) applies what is there without waiting for it to settle.
   */
  reload(how: 'now' | 'event' | 'resync' = 'now', paths?: readonly string[]): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      // Nothing may escape: a rejected chain would stop every later reload (and crash the
      // watcher's caller with an unhandled rejection).
      try {
        const announced = this.eventSeen;
        this.eventSeen = false;
        await this.starting?.catch(() => {}); // after startup's own load, never inside it
        // an event's files alone (`paths`); the resync and an explicit reload walk the whole store
        const r = await this.store.scanAsync(
          paths === undefined ? { immediate: how === 'now' } : { immediate: false, paths },
        );
        if (how === 'resync') {
          this.resyncCounts.runs++;
          if (r.found > 0 && !announced) {
            this.resyncCounts.corrections += r.found;
            this.log(`resync: ${r.found} change(s) no watch event announced`);
          }
        }
        this.scheduleSettle();
        if (this.watching) this.rearmIfMoved();
        if (how === 'now' || r.changed) {
          await this.applyToEngine();
          // the kernel, then the proxies' acknowledged mirrors
          const st = await (this.runtime?.sync() ?? this.node.sync());
          this.applies++;
          if (st.recovered !== undefined)
            this.log(`nft session lost (${st.recovered}); replaced the table in one transaction`);
          if (st.kind !== 'none') this.log(`applied ${st.kind} (${st.lines} lines, ${st.ms.toFixed(1)} ms)`);
        }
      } catch (e) {
        this.log(`apply failed, previous state stays enforced: ${(e as Error).message}`);
      }
    });
    return this.reloading;
  }

  /** A rescan when the earliest pending change can settle. */
  private scheduleSettle(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    const due = this.store.nextDue();
    if (due === undefined || !this.watching) return;
    this.settleTimer = setTimeout(
      () => void this.reload('event', this.store.pendingFiles()),
      Math.max(0, due - Date.now()) + 10,
    );
  }

  /** `dir` undefined: an event that only a walk of the whole store answers (the parent's). */
  private onEvent(dir: string | undefined, name: string | null): void {
    this.eventSeen = true;
    if (dir === undefined) this.eventFull = true;
    else this.eventNames.push({ dir, name });
    // events come in bursts (write, close, rename): one scan shortly after, of the files they name
    if (this.eventTimer) clearTimeout(this.eventTimer);
    this.eventTimer = setTimeout(() => {
      const events = this.eventNames.splice(0);
      const full = this.eventFull;
      this.eventFull = false;
      const paths = full ? undefined : this.store.pathsFor(events);
      void this.reload('event', paths === undefined ? undefined : [...paths, ...this.store.pendingFiles()]);
    }, 50);
  }

  private watch(): void {
    this.watching = true;
    this.armWatchers();
    const every = this.opts.resyncMs ?? DEFAULT_RESYNC_MS;
    if (every > 0) {
      this.resyncTimer = setInterval(() => void this.reload('resync'), every);
      this.resyncTimer.unref();
    }
    this.scheduleSettle(); // files still settling when the node came up
  }

  private unwatch(): void {
    this.watching = false;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of [this.eventTimer, this.settleTimer]) if (t) clearTimeout(t);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    this.eventTimer = this.settleTimer = this.resyncTimer = undefined;
  }

  private inode(path: string): number | undefined {
    try {
      return statSync(path).ino;
    } catch {
      return undefined;
    }
  }

  /**
   * One watcher per directory of the store (non-recursive: an inotify watch follows an inode, so
   * each is re-armed when its directory is replaced) and one on the parent, which sees the
   * store's own directory renamed or swapped. Every watcher has its error handler: an error
   * (EMFILE, the directory gone) closes it and the next scan re-arms it.
   */
  private armWatchers(): void {
    const root = resolve(this.opts.policies);
    const want = new Set<string>([dirname(root), ...this.store.dirs]);
    if (this.store.dirs.length === 0) want.add(root);
    for (const [dir, w] of this.watchers) {
      if (want.has(dir)) continue;
      w.close();
      this.watchers.delete(dir);
    }
    for (const dir of want) {
      if (this.watchers.has(dir)) continue;
      const parent = dir === dirname(root);
      try {
        const w = watch(dir, { persistent: false }, (_ev, name) => {
          if (parent && name !== null && name !== basename(root)) return;
          this.onEvent(parent ? undefined : dir, name);
        });
        w.on('error', (e) => {
          this.watchCounts.errors++;
          this.log(`watching ${dir}: ${e.message}; re-armed at the next scan`);
          w.close();
          if (this.watchers.get(dir) === w) this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch (e) {
        // gone or unreadable: the resync still reads the store, and re-arms when it is back
        this.watchCounts.errors++;
        this.log(`cannot watch ${dir}: ${(e as Error).message}`);
      }
    }
    this.watchedRootIno = this.inode(root);
  }

  /** After a scan: the store's directory replaced (rename, swap) or its subdirectories changed. */
  private rearmIfMoved(): void {
    const root = resolve(this.opts.policies);
    const want = new Set<string>([dirname(root), ...this.store.dirs]);
    const same =
      this.inode(root) === this.watchedRootIno &&
      want.size === this.watchers.size &&
      [...want].every((d) => this.watchers.has(d));
    if (same) return;
    if (this.watchers.size > 0) {
      for (const w of this.watchers.values()) w.close();
      this.watchers.clear();
    }
    this.watchCounts.rearms++;
    this.armWatchers();
  }

  status(): AgentStatus {
    const st = this.node.nft.state;
    const endpoints: AgentStatus['endpoints'] = [];
    for (const ep of this.enforcing ? st.endpoints.values() : []) {
      const pol = this.engine.endpointPolicy(...(ep.endpoint.split('/') as [string, string]));
      const mode = (d: { enforced: boolean; defaultDeny: boolean; auditDefaultDeny?: true }): string =>
        !d.enforced
          ? 'not enforced'
          : d.defaultDeny
            ? d.auditDefaultDeny === true
              ? 'default deny (audited)'
              : 'default deny'
            : 'enforced (no default deny)';
      endpoints.push({
        endpoint: ep.endpoint,
        id: ep.id,
        ip: ep.ip,
        identity: pol.identity,
        ingress: mode(pol.ingress),
        egress: mode(pol.egress),
        entries: pol.entries.length,
      });
      const [ns, name] = ep.endpoint.split('/') as [string, string];
      if (this.engine.endpointOptions?.(ns, name)?.policyAuditMode === true)
        endpoints.at(-1)!.policyAuditMode = true;
    }
    const s: AgentStatus = {
      node: this.nodeName,
      pid: process.pid,
      policies: [...this.enforced.keys()].sort(),
      invalidFiles: this.store.invalidFiles(),
      skippedFiles: this.store.skippedFiles(),
      pendingChanges: this.store.pendingChanges(),
      watch: { watchers: this.watchers.size, ...this.watchCounts },
      resync: { intervalMs: this.opts.resyncMs ?? DEFAULT_RESYNC_MS, ...this.resyncCounts },
      phase: this.enforcing ? 'enforcing' : 'starting',
      endpoints,
      identities: this.enforcing ? [...st.ipcache].map(([ip, identity]) => ({ ip, identity })) : [],
      counts: this.enforcing ? countEntries(st) : { endpoints: 0, ipcache: 0, elements: 0 },
      applies: this.applies,
      flows: this.runtime?.flows?.status() ?? { state: 'disabled' },
      fqdn: this.fqdn.status(),
    };
    if (this.store.storeError !== undefined) s.storeError = this.store.storeError;
    const loading = this.store.progress();
    if (loading !== undefined) s.loading = loading;
    if (this.kv !== undefined) s.kvstore = this.kv.status();
    if (this.node.lastApply) s.lastApply = { ...this.node.lastApply };
    return s;
  }

  private async serve(): Promise<void> {
    await claimSocket(this.socket);
    // the default socket lives in the node's run dir, which --no-flows leaves unmade
    mkdirSync(dirname(this.socket), { recursive: true, mode: 0o750 });
    const L = { ...STATUS_LIMITS, ...this.opts.statusLimits };
    const server = createServer(
      {
        maxHeaderSize: L.maxHeaderSize,
        headersTimeout: L.headersTimeoutMs,
        requestTimeout: L.requestTimeoutMs,
        keepAliveTimeout: L.keepAliveTimeoutMs,
      },
      (req, res) => {
        // a throw in a request handler would take the agent down (enforcement stays, updates stop)
        const fail = (e: unknown): void => {
          if (res.headersSent) {
            res.destroy();
            return;
          }
          res.statusCode = 500;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ error: (e as Error).message ?? String(e) }));
        };
        try {
          // no route takes a body: a large one is refused, and never buffered
          let body = 0;
          const declared = Number(req.headers['content-length'] ?? 0);
          if (declared > L.maxBodyBytes) {
            res.statusCode = 413;
            res.setHeader('connection', 'close');
            res.end('{"error":"request too large"}');
            return;
          }
          req.on('data', (d: Buffer) => {
            body += d.length;
            if (body > L.maxBodyBytes) req.destroy();
          });
          req.on('error', () => {});
          if (req.url === '/status' || req.url === '/') {
            const out = JSON.stringify(this.status());
            res.setHeader('content-type', 'application/json');
            res.end(out);
            return;
          }
          if (req.url === '/metrics') {
            const text = this.runtime?.flows?.metricsText() ?? Promise.resolve('');
            text.then((t) => {
              res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
              res.end(t + this.fqdn.metricsText());
            }, fail);
            return;
          }
          if (req.url?.startsWith('/endpoint/config?') === true) {
            const apply = (): Promise<void> => this.syncAfterReloads();
            endpointConfigRoute(req.method, req.url, this.engine, apply).then((a) => {
              res.statusCode = a.status;
              res.setHeader('content-type', 'application/json');
              res.end(a.body);
            }, fail);
            return;
          }
          if (req.url === '/reload' && req.method === 'POST') {
            this.reload('now').then(() => res.end(JSON.stringify({ ok: true })), fail);
            return;
          }
          res.statusCode = 404;
          res.end('{"error":"not found"}');
        } catch (e) {
          fail(e);
        }
      },
    );
    server.maxConnections = L.maxConnections;
    // idle connections (no request, or between requests) are closed: nothing holds a descriptor
    server.setTimeout(L.idleTimeoutMs);
    server.on('connection', (sock) => sock.on('error', () => {}));
    server.on('clientError', (_e, sock) => sock.destroy());
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new DatapathError('socket-failed', e.message)));
      server.listen(this.socket, () => {
        server.removeAllListeners('error');
        // after listen an error (EMFILE on accept) is logged, never thrown: the agent keeps enforcing
        server.on('error', (e) => this.log(`status API: ${e.message}`));
        resolve();
      });
    });
  }

  private async closeServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections?.();
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(this.socket, { force: true });
  }

  /**
   * Clean exit: the node runtime's one tear-down (watcher, status API, flow pipeline, run dir,
   * namespaces with the table). During startup the step in flight finishes first; before the
   * first transaction an earlier run's leftovers stay for `--cleanup` (their enforcement with them).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    // no runtime yet: startSteps is before its next checkStopping and makes none
    if (this.runtime === undefined) await this.starting?.catch(() => {});
    await this.runtime?.stop();
    // connected but the runtime may never have started its kvstore component (idempotent)
    await this.kv?.client.close({ revoke: true });
    this.unwatch();
    await this.closeServer(); // served without a runtime (tests)
  }
}

/** Client side of `seawall agent status`. */
export function fetchStatus(socket = defaultSocket()): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    // one connection per call (no keep-alive pool): a pooled socket the server closed after its
    // keepAliveTimeout would fail the next call with EPIPE
    const req = request({ socketPath: socket, path: '/status', method: 'GET', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as AgentStatus);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', (e) =>
      reject(new DatapathError('agent-unreachable', `no agent at ${socket}: ${e.message}`)),
    );
    req.end();
  });
}
