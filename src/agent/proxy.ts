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
import { type L7Parser, PROXY_UID } from '../datapath/nft/compile.ts';
import { endpointOf } from '../flow/record.ts';
import type { FlowEndpoint } from '../flow/types.ts';
import { HTTP_PROXY_NODE_FLAGS } from '../proxy/http/node-flags.ts';
import {
  type AgentMessage,
  type DNSAnswerMessage,
  encode,
  lineDecoder,
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
  /** The uid the running proxy reported after dropping privileges. */
  uid?: number;
}

/** The mirror the proxies judge from, built from the runtime's engine and datapath. */
export function buildSnapshot(rt: NodeRuntime, version: number): PolicySnapshot {
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
  const endpoints: SnapshotEndpoint[] = [];
  for (const { spec } of dp.podSpecs()) {
    const ns = spec.namespace ?? 'default';
    const pol = engine.endpointPolicy(ns, spec.name);
    if (!pol.entries.some((e) => e.verdict === 'redirect')) continue;
    endpoints.push({
      ip: spec.ip,
      endpoint: pol.endpoint,
      namespace: ns,
      ingress: pol.ingress,
      egress: pol.egress,
      entries: pol.entries,
    });
  }
  const revocations = (engine as { dns?: { revocations?: number } }).dns?.revocations;
  return { version, peers, endpoints, ...(revocations !== undefined ? { fqdnRevision: revocations } : {}) };
}

export class ProxyComponent implements RuntimeComponent {
  readonly name: string;
  private rt: NodeRuntime | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private version = 0;
  private acked = -1;
  private restarts = 0;
  private refused = 0;
  private uid: number | undefined;
  private backoff: number;
  private restartTimer: NodeJS.Timeout | undefined;
  private waiters: Array<{ version: number; resolve: () => void }> = [];
  private readyWaiters: Array<() => void> = [];
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ProxyComponentOptions) {
    this.name = `${opts.parser} proxy`;
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
    const rt = this.rt;
    if (rt === undefined || this.stopping) return Promise.resolve();
    const v = ++this.version;
    const acked = new Promise<void>((resolve) => this.waiters.push({ version: v, resolve }));
    this.push();
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

  private push(): void {
    const c = this.child;
    const rt = this.rt;
    if (c === undefined || rt === undefined || c.stdin === null || c.stdin.destroyed) return;
    // the current version, whatever was asked: waiters for older versions resolve with it
    const m: AgentMessage = { type: 'snapshot', snapshot: buildSnapshot(rt, this.version) };
    c.stdin.write(encode(m));
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
      ...(this.opts.parser === 'http' ? HTTP_PROXY_NODE_FLAGS : []),
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
    const c = spawn('ip', args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env } });
    this.child = c;
    const startedAt = Date.now();
    c.stdin.on('error', () => {});
    c.stderr.on('data', (d: Buffer) => {
      for (const l of d.toString().split('\n')) if (l.trim() !== '') this.log(`${this.name}: ${l}`);
    });
    c.stdout.on(
      'data',
      lineDecoder<ProxyMessage>(
        (m) => this.onMessage(m),
        (line) => this.log(`${this.name}: not a message: ${line.slice(0, 120)}`),
      ),
    );
    c.once('exit', (code, sig) => {
      if (this.child === c) this.child = undefined;
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

  private onMessage(m: ProxyMessage): void {
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
      case 'flow':
        this.rt?.flows?.ingestFlow(m.flow);
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
