// The per-node agent: a directory of policy YAML (the default store) and a set of endpoints go
// into the engine; the engine's MapState goes into the kernel as nftables deltas. The policy
// directory is watched; a file that does not validate is reported and its last good version
// stays enforced. `status` is served as JSON over a unix socket (HTTP), for `seawall agent status`.
//
// Flow records: a FlowPipeline (flows.ts) turns the kernel's NFLOG verdicts into Hubble records
// (flow log, hubble.sock, metrics). Without ulogd2 the agent still enforces and says why it has
// no records; `/metrics` on the status socket serves Hubble's counters.
//
// Fail closed: the table lives in the node namespace, independent of this process. SIGKILL leaves
// it enforcing; a restart adopts the namespaces and replaces the table in one transaction.

import { type FSWatcher, readdirSync, readFileSync, rmSync, statSync, watch } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { DatapathError } from '../datapath/exec.ts';
import { countEntries } from '../datapath/nft/compile.ts';
import type { NodeDatapath } from '../datapath/node.ts';
import { DEFAULT_NODE, runDirFor } from '../datapath/topology.ts';
import { toEndpointSpec } from '../k8s/types.ts';
import { workloadsFrom } from '../k8s/workloads.ts';
import type { EndpointSpec, EngineFactory, PolicyEngineAPI } from '../policy/types.ts';
import type { Issue } from '../policy-api/issue.ts';
import { loadPolicyBytes } from '../policy-api/load.ts';
import type { OtherObject, PolicyObject } from '../policy-api/types.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import type { FlowPipelineStatus } from './flows.ts';
import { NodeRuntime, type RuntimeComponent } from './runtime.ts';

/** The status API's socket: one per node, so agents of different nodes never share one. */
export function defaultSocket(node: string = DEFAULT_NODE): string {
  return join(runDirFor(node), 'agent.sock');
}

export interface AgentOptions {
  policies: string;
  endpoints: string;
  node?: string;
  socket?: string;
  debounceMs?: number;
  createEngine?: EngineFactory;
  log?: (line: string) => void;
  /** Flow log file (default /run/seawall/<node>/flows.jsonl). */
  flowLog?: string;
  /** Local flow API socket (default /run/seawall/<node>/hubble.sock). */
  flowSocket?: string;
  /** false: no flow records at all (enforcement only). */
  flows?: boolean;
  /** How long a delta may wait for `nft -i` before it is killed and the table replaced (ms). */
  nftTimeoutMs?: number;
}

export interface EndpointSource {
  namespaces: Map<string, Record<string, string>>;
  endpoints: EndpointSpec[];
  issues: Issue[];
}

const YAML = /\.(ya?ml|json)$/i;

function walk(path: string, out: string[] = []): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    return out;
  }
  if (!st.isDirectory()) {
    out.push(path);
    return out;
  }
  let names: string[];
  try {
    names = readdirSync(path).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    const p = join(path, name);
    let dir: boolean;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      continue; // removed since readdir (the watcher fires while files change)
    }
    if (dir) walk(p, out);
    else if (YAML.test(name)) out.push(p);
  }
  return out;
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
  for (const file of walk(path)) {
    const text = readFileSync(file, 'utf8');
    if (/^kind:\s*["']?PolicyTest/m.test(text)) {
      const parsed = await loadPolicyTestFile(file);
      issues.push(...parsed.issues.filter((i) => i.severity === 'error'));
      for (const t of parsed.tests) {
        for (const ns of t.namespaces) namespaces.set(ns.name, ns.labels);
        for (const ep of t.endpoints) if (!ep.external) endpoints.push(toEndpointSpec(ep));
      }
      continue;
    }
    others.push(...loadPolicyBytes(file, readFileSync(file), { lint: false }).others);
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
  return { namespaces, endpoints, issues };
}

function policyKey(p: PolicyObject): string {
  return `${p.kind}/${p.metadata.namespace ?? ''}/${p.metadata.name}`;
}

export interface AgentStatus {
  node: string;
  pid: number;
  policies: string[];
  invalidFiles: Array<{ file: string; issues: string[] }>;
  endpoints: Array<{
    endpoint: string;
    id: number;
    ip: string;
    identity: number;
    ingress: string;
    egress: string;
    entries: number;
  }>;
  identities: Array<{ ip: string; identity: number }>;
  counts: { endpoints: number; ipcache: number; elements: number };
  lastApply?: { kind: string; lines: number; ms: number };
  applies: number;
  /** The flow pipeline; state "unavailable" with a reason when ulogd2 is missing. */
  flows: FlowPipelineStatus | { state: 'disabled' };
}

export class Agent {
  private engine!: PolicyEngineAPI;
  private runtime: NodeRuntime | undefined;
  private server: Server | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Last good policies of each file. */
  private readonly good = new Map<string, PolicyObject[]>();
  private readonly invalid = new Map<string, string[]>();
  private readonly lastGoodText = new Map<string, string>();
  private enforcedKeys = new Set<string>();
  private applies = 0;
  private reloading: Promise<void> = Promise.resolve();
  /** start() in progress; stop() lets its current step finish, then tears down. */
  private starting: Promise<void> | undefined;
  private stopping = false;
  readonly socket: string;
  private readonly log: (line: string) => void;

  constructor(readonly opts: AgentOptions) {
    this.socket = opts.socket ?? defaultSocket(opts.node ?? DEFAULT_NODE);
    this.log = opts.log ?? ((l) => process.stderr.write(`seawall agent: ${l}\n`));
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
    const factory =
      this.opts.createEngine ??
      ((await import('../policy/default-engine.ts')) as { defaultEngineFactory: EngineFactory })
        .defaultEngineFactory;
    this.engine = factory({});
    const src = await loadEndpoints(this.opts.endpoints);
    this.checkStopping();
    for (const i of src.issues) this.log(`endpoints: ${i.pos.file}:${i.pos.line}: ${i.message}`);
    for (const [ns, labels] of src.namespaces) this.engine.upsertNamespace(ns, labels);
    const rt = new NodeRuntime({
      engine: this.engine,
      node: this.nodeName,
      // one transaction replaces whatever a previous run left: no allow-all window
      adopt: true,
      ...(this.opts.nftTimeoutMs !== undefined ? { nftTimeoutMs: this.opts.nftTimeoutMs } : {}),
      flows:
        this.opts.flows === false
          ? false
          : {
              ...(this.opts.flowLog !== undefined ? { flowLog: this.opts.flowLog } : {}),
              ...(this.opts.flowSocket !== undefined ? { socket: this.opts.flowSocket } : {}),
              policyRevision: () => this.applies,
            },
      components: [this.statusApi(), this.policyWatcher()],
      keep: 'flow-log',
      log: (l) => this.log(l),
    });
    this.runtime = rt;
    const prev = rt.previous;
    const ids = prev?.extra?.endpointIds;
    if (ids && typeof ids === 'object') rt.datapath.rememberIds(ids as Record<string, number>);
    const lastGood = prev?.extra?.lastGood;
    if (lastGood && typeof lastGood === 'object') {
      for (const [f, t] of Object.entries(lastGood as Record<string, string>)) this.lastGoodText.set(f, t);
    }
    await rt.start({
      pods: src.endpoints,
      beforeUp: () => {
        this.loadPolicies();
        this.applies++; // the first transaction
      },
    });
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
        await this.serve();
      },
      stop: () => this.closeServer(),
    };
  }

  private policyWatcher(): RuntimeComponent {
    return {
      name: 'policy watcher',
      start: () => this.watch(),
      stop: async () => {
        this.watcher?.close();
        this.watcher = undefined;
        if (this.timer) clearTimeout(this.timer);
        await this.reloading;
      },
    };
  }

  /** Reads the policy directory; files with errors keep their last good version. */
  private loadPolicies(): void {
    try {
      const st = statSync(this.opts.policies);
      if (st.isDirectory()) readdirSync(this.opts.policies);
    } catch (e) {
      // A store that cannot be read (moved away while being replaced, permissions) is not an
      // empty store: removing every policy would open every endpoint.
      this.log(`cannot read ${this.opts.policies} (${(e as Error).message}); the last good state stays`);
      return;
    }
    const seen = new Set<string>();
    for (const file of walk(this.opts.policies)) {
      seen.add(file);
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (e) {
        this.invalid.set(file, [(e as Error).message]);
        continue;
      }
      const r = loadPolicyBytes(file, bytes, { lint: false });
      const errors = r.issues.filter((i) => i.severity === 'error');
      if (errors.length > 0) {
        const msgs = errors.map((i) => `${i.pos.line}:${i.pos.column} ${i.code}: ${i.message}`);
        this.invalid.set(file, msgs);
        this.log(`${file}: invalid, skipped (last good state stays): ${msgs.join('; ')}`);
        // after a restart the last good version comes from the state file
        const saved = this.lastGoodText.get(file);
        if (!this.good.has(file) && saved !== undefined) {
          this.good.set(file, loadPolicyBytes(file, Buffer.from(saved), { lint: false }).policies);
        }
        continue;
      }
      this.invalid.delete(file);
      this.good.set(file, r.policies);
      this.lastGoodText.set(file, bytes.toString('utf8'));
    }
    for (const f of [...this.good.keys()]) {
      if (seen.has(f)) continue;
      this.good.delete(f);
      this.lastGoodText.delete(f);
    }
    if (this.runtime) {
      this.node.topo.extra = { ...this.node.topo.extra, lastGood: Object.fromEntries(this.lastGoodText) };
      this.node.topo.persist();
    }
    for (const f of [...this.invalid.keys()]) if (!seen.has(f)) this.invalid.delete(f);
    const next = new Map<string, PolicyObject>();
    for (const ps of this.good.values()) for (const p of ps) next.set(policyKey(p), p);
    for (const k of this.enforcedKeys) {
      if (next.has(k)) continue;
      const [kind, ns, name] = k.split('/') as [string, string, string];
      this.engine.removePolicy(kind, ns === '' ? undefined : ns, name);
    }
    for (const p of next.values()) {
      for (const i of this.engine.upsertPolicy(p)) {
        if (i.severity === 'error') this.log(`${policyKey(p)}: ${i.code}: ${i.message}`);
      }
    }
    this.enforcedKeys = new Set(next.keys());
  }

  /** Reload + delta apply, serialized. */
  reload(): Promise<void> {
    this.reloading = this.reloading.then(async () => {
      // Nothing may escape: a rejected chain would stop every later reload (and crash the
      // watcher's caller with an unhandled rejection).
      try {
        this.loadPolicies();
        const st = await this.node.sync();
        this.applies++;
        if (st.recovered !== undefined)
          this.log(`nft session lost (${st.recovered}); replaced the table in one transaction`);
        if (st.kind !== 'none') this.log(`applied ${st.kind} (${st.lines} lines, ${st.ms.toFixed(1)} ms)`);
      } catch (e) {
        this.log(`apply failed, previous state stays enforced: ${(e as Error).message}`);
      }
    });
    return this.reloading;
  }

  private watch(): void {
    try {
      this.watcher = watch(this.opts.policies, { recursive: true }, () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.reload(), this.opts.debounceMs ?? 150);
      });
    } catch (e) {
      this.log(`cannot watch ${this.opts.policies}: ${(e as Error).message}`);
    }
  }

  status(): AgentStatus {
    const st = this.node.nft.state;
    const endpoints: AgentStatus['endpoints'] = [];
    for (const ep of st.endpoints.values()) {
      const pol = this.engine.endpointPolicy(...(ep.endpoint.split('/') as [string, string]));
      const mode = (d: { enforced: boolean; defaultDeny: boolean }): string =>
        !d.enforced ? 'not enforced' : d.defaultDeny ? 'default deny' : 'enforced (no default deny)';
      endpoints.push({
        endpoint: ep.endpoint,
        id: ep.id,
        ip: ep.ip,
        identity: pol.identity,
        ingress: mode(pol.ingress),
        egress: mode(pol.egress),
        entries: pol.entries.length,
      });
    }
    const s: AgentStatus = {
      node: this.nodeName,
      pid: process.pid,
      policies: [...this.enforcedKeys].sort(),
      invalidFiles: [...this.invalid].map(([file, issues]) => ({ file, issues })),
      endpoints,
      identities: [...st.ipcache].map(([ip, identity]) => ({ ip, identity })),
      counts: countEntries(st),
      applies: this.applies,
      flows: this.runtime?.flows?.status() ?? { state: 'disabled' },
    };
    if (this.node.lastApply) s.lastApply = { ...this.node.lastApply };
    return s;
  }

  private serve(): Promise<void> {
    rmSync(this.socket, { force: true });
    this.server = createServer((req, res) => {
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
        if (req.url === '/status' || req.url === '/') {
          const body = JSON.stringify(this.status());
          res.setHeader('content-type', 'application/json');
          res.end(body);
          return;
        }
        if (req.url === '/metrics') {
          const text = this.runtime?.flows?.metricsText() ?? Promise.resolve('');
          text.then((t) => {
            res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
            res.end(t);
          }, fail);
          return;
        }
        if (req.url === '/reload' && req.method === 'POST') {
          this.reload().then(() => res.end(JSON.stringify({ ok: true })), fail);
          return;
        }
        res.statusCode = 404;
        res.end('{"error":"not found"}');
      } catch (e) {
        fail(e);
      }
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', (e) => reject(new DatapathError('socket-failed', e.message)));
      this.server!.listen(this.socket, () => resolve());
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
    await this.closeServer(); // served without a runtime (tests)
  }
}

/** Client side of `seawall agent status`. */
export function fetchStatus(socket = defaultSocket()): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/status', method: 'GET' }, (res) => {
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
