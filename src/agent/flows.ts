// The flow pipeline of one running node: the kernel's NFLOG verdicts (ulogd2 in the node
// namespace, JSON lines under the node's run dir) become Hubble flow records, asked of the same
// engine that compiled the table. Records go to a JSON-lines flow log, a ring served on a unix
// socket (the local Hubble-like API `seawall observe` reads) and Prometheus counters.
//
// Files, per node (default run dir /run/seawall/<node>/):
//   ulogd.conf, flows.json, ulogd.log   ulogd2's config, raw JSON output (rotated past 16 MiB,
//                                       removed on a clean stop) and log
//   flows.jsonl                         flow records, `hubble observe -o json` lines (rotated)
//   flows.sock                          GET /flows?since=|last=&follow=1, /status, /metrics (HTTP)
//   hubble.sock                         Hubble's gRPC API over the same ring (agent/hubble.ts)
//
// Enforcement never depends on this: without ulogd2 (or its JSON plugin) the pipeline is
// "unavailable" with the reason, and the datapath keeps enforcing.

import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { NodeDatapath } from '../datapath/node.ts';
import { GATEWAY_IP, runDirFor } from '../datapath/topology.ts';
import { JsonLineTailer, stopStaleUlogd, UlogdProcess } from '../datapath/ulogd.ts';
import {
  type ConntrackEvent,
  ConntrackTracer,
  parseConntrackLine,
  traceRecordOf,
} from '../flow/conntrack.ts';
import { type KernelRecord, type KernelRecordOptions, RecordCache } from '../flow/kernel.ts';
import type { KernelEvent } from '../flow/nflog.ts';
import { RepeatedSYNs } from '../flow/syn-repeats.ts';
import type { Shape } from '../flow/template.ts';
import { toProxyTrace } from '../flow/trace.ts';
import type { Flow, FlowEvent, Workload } from '../flow/types.ts';
import { FlowMetrics, LOST_SOURCE } from '../observe/metrics.ts';
import { FlowRing, FlowSink, type RingEntry, RotatingFile, startFlowServer } from '../observe/sink.ts';
import type { MapStateEntry, PeerRef } from '../policy/types.ts';
import { withDestinationNames } from './fqdn-names.ts';

/** ulogd's raw JSON is rotated past this size (the tailer finishes the old file first). */
const RAW_MAX_BYTES = 16 * 1024 * 1024;

/**
 * hubble_lost_events_total's source for kernel events whose record could not be built: lost in
 * the observer before they were stored, Hubble's OBSERVER_EVENTS_QUEUE.
 */
export const BUILD_ERROR_SOURCE = LOST_SOURCE.observer;
const MAX_ERROR_LOGS = 10;
/** A SYN retransmitted within this is the same connection (Linux retries at 1, 3, 7, 15, 31 s). */
const SYN_WINDOW_MS = 60_000;
const MAX_SYN_TRACKED = 65536;

/** Hubble's default ring size (4095 events). */
export const DEFAULT_RING_CAPACITY = 4095;

export function defaultFlowLog(node: string): string {
  return join(runDirFor(node), 'flows.jsonl');
}

/** The HTTP flow API (NDJSON); Hubble's gRPC API is hubble.sock (agent/hubble.ts). */
export function defaultFlowSocket(node: string): string {
  return join(runDirFor(node), 'flows.sock');
}

export type FlowPipelineState = 'starting' | 'running' | 'restarting' | 'unavailable' | 'stopped';

export interface FlowPipelineStatus {
  state: FlowPipelineState;
  /** Why records are unavailable (ulogd2 missing, gave up restarting, ...). */
  reason?: string;
  flowLog?: string;
  socket?: string;
  /** Records made (every verdict). */
  processed: number;
  forwarded: number;
  dropped: number;
  /** Records with verdict AUDIT (audit mode let them pass); absent from agents before audit mode. */
  audited?: number;
  /**
   * Records the ring dropped to make room, kernel events no record could be made of (`errors`
   * included), and records missing from the flow log (`flowLogLost` included).
   */
  lost: number;
  /** Records the flow log could not take (a full disk): in the ring, not in the file. */
  flowLogLost: number;
  /** Why the last of them failed (ENOSPC, ...). */
  flowLogError?: string;
  /** Kernel events whose record failed to build: ulogd lines of ours that do not parse, or an
   * exception while making the record. Part of `lost`; each is logged (the first few). */
  errors: number;
  /** Identical drops folded into one record (only with a fold window; off by default). */
  suppressedDrops: number;
  /** Forwarded verdicts of a retransmitted SYN not recorded again (Cilium: one per connection). */
  repeatedVerdicts: number;
  /** Trace events (type 4) from conntrack: `running`, or why there are none. */
  traces: 'running' | 'disabled' | string;
  /** Records where the kernel's verdict and the engine's disagree (a datapath bug). */
  disagreements: number;
  ulogdPid?: number;
}

export interface FlowPipelineOptions {
  /** Directory for ulogd's files (default /run/seawall/<node>). */
  runDir?: string;
  /** Flow log path; false: no file. Default <runDir>/flows.jsonl. */
  flowLog?: string | false;
  /** Local HTTP flow API socket; false: none. Default <runDir>/flows.sock. */
  socket?: string | false;
  ringCapacity?: number;
  /**
   * Window for folding identical drops (ms). Default 0: one record per dropped packet, as Cilium
   * notifies each; folded drops are counted (suppressedDrops).
   */
  dedupWindowMs?: number;
  /** Hubble's `--hubble-metrics` string (observe/metrics.ts); default flow, drop, policy. */
  metrics?: string;
  /** Trace events from the node namespace's conntrack (`conntrack -E`); default true. */
  traces?: boolean;
  /** The owners (Deployment, ...) of a pod, for the records' `workloads`. */
  workloadsOf?: (peer: PeerRef) => readonly Workload[] | undefined;
  pollMs?: number;
  /** Revision of the policy repository, stamped on the records' policies. */
  policyRevision?: () => number | undefined;
  /** Each record as it is made (with the engine's agreement). */
  onRecord?: (r: KernelRecord, e: FlowEvent) => void;
  log?: (line: string) => void;
}

function peerFromKey(key: string, ip: string): PeerRef {
  if (key.startsWith('pod:')) {
    const rest = key.slice(4);
    const slash = rest.indexOf('/');
    return { kind: 'endpoint', namespace: rest.slice(0, slash), name: rest.slice(slash + 1) };
  }
  if (key.startsWith('entity:')) {
    const e = key.slice(7);
    if (e === 'world' || e === 'host' || e === 'remote-node' || e === 'kube-apiserver') {
      return { kind: 'entity', entity: e };
    }
  }
  return { kind: 'ip', ip };
}

/** Address → the peer the engine knows: a pod, a test host's entity or address, or the node. */
export function resolverFor(node: NodeDatapath): (ip: string) => PeerRef {
  return (ip) => {
    if (ip === node.topo.nodeIp || ip === GATEWAY_IP) return { kind: 'entity', entity: 'host' };
    const h = node.topo.hostByIp(ip);
    return h ? peerFromKey(h.key, ip) : { kind: 'ip', ip };
  };
}

export class FlowPipeline {
  readonly ring: FlowRing;
  readonly metrics: FlowMetrics;
  readonly runDir: string;
  readonly flowLog: string | undefined;
  readonly socket: string | undefined;
  private ulogd: UlogdProcess | undefined;
  private tailer: JsonLineTailer | undefined;
  private sink: FlowSink | undefined;
  private server: Server | undefined;
  private state: FlowPipelineState = 'stopped';
  private reason: string | undefined;
  private counts = { processed: 0, forwarded: 0, dropped: 0, audited: 0, disagreements: 0, errors: 0 };
  /** Flow log write failures already put in the metric. */
  private flowLogLostSeen = 0;
  /** Unparsable ulogd lines already counted (the tailer keeps its own totals). */
  private parseErrorsSeen = 0;
  private rotateTimer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private readonly tracer = new ConntrackTracer();
  private readonly records = new RecordCache();
  private conntrack: ChildProcess | undefined;
  private tracesState: string = 'disabled';
  /** Forwarded TCP SYN verdicts by connection, to record a retransmitted SYN once. */
  private readonly synSeen = new RepeatedSYNs(SYN_WINDOW_MS, MAX_SYN_TRACKED);
  private repeatedVerdicts = 0;
  /** Made once (closures per event cost more than the record): ids are read when asked. */
  private readonly recordOptions: KernelRecordOptions = {
    nodeName: '',
    resolve: (ip) => this.resolve(ip),
    endpointIdOf: (p) =>
      p.kind === 'endpoint' ? this.node.endpointIds()[`pod:${p.namespace}/${p.name}`] : undefined,
    endpointById: (id) => {
      for (const [key, v] of Object.entries(this.node.endpointIds()))
        if (v === id) return peerFromKey(key, '');
      return undefined;
    },
    entriesOf: (p) => this.entriesOf(p),
    workloadsOf: (p) => this.opts.workloadsOf?.(p),
  };
  private readonly resolve: (ip: string) => PeerRef;
  /** The MapState of each local pod, read again when the policy revision changes. */
  private readonly entriesCache = new Map<
    string,
    { rev: number; at: number; entries: readonly MapStateEntry[] }
  >();

  constructor(
    private readonly node: NodeDatapath,
    private readonly opts: FlowPipelineOptions = {},
  ) {
    this.runDir = opts.runDir ?? runDirFor(node.node);
    this.flowLog = opts.flowLog === false ? undefined : (opts.flowLog ?? join(this.runDir, 'flows.jsonl'));
    this.socket = opts.socket === false ? undefined : (opts.socket ?? join(this.runDir, 'flows.sock'));
    this.ring = new FlowRing(opts.ringCapacity ?? DEFAULT_RING_CAPACITY);
    this.metrics = new FlowMetrics(undefined, opts.metrics);
    this.recordOptions.nodeName = node.node;
    this.resolve = resolverFor(node);
    this.log = opts.log ?? (() => {});
    // the flow log opens on the first write
    const file = this.flowLog !== undefined ? new RotatingFile(this.flowLog) : undefined;
    this.sink = new FlowSink({
      nodeName: this.node.node,
      ring: this.ring,
      ...(file ? { file } : {}),
      observers: [(f, shape) => this.metrics.observe(f, shape)],
    });
  }

  /**
   * Starts ulogd2, the tailer, the flow log and the socket. Never throws for a missing or
   * failing ulogd2: the pipeline goes "unavailable" with the reason (enforcement is unaffected).
   */
  async start(): Promise<FlowPipelineStatus> {
    this.state = 'starting';
    if (this.socket !== undefined) {
      this.server = await startFlowServer(this.socket, this.ring);
      // after listen an error (EMFILE on accept) is logged: it must never take the agent down
      this.server.on('error', (e) => this.log(`flow API: ${e.message}`));
      this.addMetricsRoute(this.server);
    }
    const ulogd = new UlogdProcess({ netns: this.node.node, runDir: this.runDir });
    ulogd.on('died', (d: { code: number | null; signal: string | null }) => {
      this.state = 'restarting';
      this.log(`ulogd2 exited (${d.code ?? d.signal}); restarting, enforcement is unaffected`);
    });
    ulogd.on('restarted', () => {
      this.state = 'running';
    });
    ulogd.on('gave-up', () => this.unavailable(`ulogd2 keeps dying, see ${ulogd.logPath}`));
    const stale = stopStaleUlogd(this.runDir);
    if (stale !== undefined) {
      this.log(`stopped ulogd2 pid ${stale} left by an earlier run`);
      await new Promise((r) => setTimeout(r, 200));
    }
    try {
      await ulogd.start();
    } catch (e) {
      this.unavailable((e as Error).message);
      return this.status();
    }
    this.ulogd = ulogd;
    // ulogd creates its files with its umask (often 0644): flow data is not for every user
    // (the agent's CLI also runs with umask 027, which covers files ulogd makes later)
    for (const f of [ulogd.jsonPath, ulogd.logPath]) {
      try {
        chmodSync(f, 0o640);
      } catch {
        // not created yet
      }
    }
    const writePid = (): void => {
      if (ulogd.pid !== undefined) writeFileSync(join(this.runDir, 'ulogd.pid'), `${ulogd.pid}\n`);
    };
    writePid();
    ulogd.on('restarted', writePid);
    // From the end: lines of an earlier run were recorded (or lost) by that run.
    this.tailer = new JsonLineTailer(ulogd.jsonPath, {
      from: 'end',
      pollMs: this.opts.pollMs ?? 50,
      dedupWindowMs: this.opts.dedupWindowMs ?? 0,
      onEvent: (ev) => this.ingest(ev),
    });
    this.tailer.start();
    if (this.opts.traces !== false) this.startConntrack();
    this.rotateTimer = setInterval(() => {
      try {
        if (statSync(ulogd.jsonPath).size > RAW_MAX_BYTES) ulogd.rotate();
      } catch {
        // not there yet
      }
    }, 10_000);
    this.rotateTimer.unref();
    this.state = 'running';
    return this.status();
  }

  /**
   * `conntrack -E` in the node namespace: connection events become trace records. Without
   * conntrack-tools there are no traces (said in the status); verdicts and drops are unaffected.
   */
  private startConntrack(): void {
    const child = spawn(
      'ip',
      ['netns', 'exec', this.node.node, 'conntrack', '-E', '-o', 'timestamp,id', '-e', 'NEW,UPDATE,DESTROY'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.conntrack = child;
    this.tracesState = 'running';
    let buf = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      buf += d;
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const ev = parseConntrackLine(line);
        if (ev !== undefined) this.ingestConntrack(ev);
        nl = buf.indexOf('\n');
      }
      if (buf.length > 65536) buf = ''; // not conntrack's output: never held without bound
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000);
    });
    child.on('error', (e) => {
      this.tracesState = `unavailable: cannot run conntrack (${e.message}); apt-get install conntrack`;
      this.log(`trace events ${this.tracesState}`);
    });
    child.on('exit', (code, sig) => {
      if (this.conntrack !== child) return;
      this.conntrack = undefined;
      if (this.tracesState === 'running') {
        const why = stderr.trim().split('\n').pop() || `exit ${code ?? sig}`;
        this.tracesState = `unavailable: conntrack -E ended (${why})`;
        this.log(`trace events ${this.tracesState}`);
      }
    });
  }

  /** Flows a Hubble reader missed because the ring overwrote them (hubble_lost_events_total). */
  addReaderLost(n: number): void {
    this.metrics.addLost(LOST_SOURCE.ring, n);
  }

  /** L7 records a proxy lost to its full record channel (agent/proxy.ts): lost events too. */
  addProxyLost(n: number): void {
    this.metrics.addLost(LOST_SOURCE.observer, n);
  }

  /** One conntrack event → the trace records Cilium would emit for it. Never throws. */
  ingestConntrack(ev: ConntrackEvent): void {
    const sink = this.sink;
    if (sink === undefined) return;
    try {
      const ids = this.node.endpointIds();
      for (const point of this.tracer.points(ev)) {
        const flow = traceRecordOf(this.node.engine, ev, point, {
          nodeName: this.node.node,
          resolve: resolverFor(this.node),
          endpointIdOf: (p) => (p.kind === 'endpoint' ? ids[`pod:${p.namespace}/${p.name}`] : undefined),
          ...(this.opts.workloadsOf !== undefined ? { workloadsOf: this.opts.workloadsOf } : {}),
        });
        if (flow === undefined) continue;
        this.emit(flow);
      }
    } catch (e) {
      this.buildError(
        `conntrack ${ev.type} ${ev.orig.src} -> ${ev.orig.dst}: ${(e as Error)?.message ?? String(e)}`,
      );
    }
  }

  /** A record into the log, ring and metrics, with the counters that follow every emit. */
  /** Every record goes out here: a connection to a learnt address gets its destination_names. */
  private emit(flow: Flow, shape?: Shape): FlowEvent {
    const sink = this.sink!;
    const named = withDestinationNames(flow, this.node.engine);
    // a record with names added is not its template's copy: encoded whole
    const event = sink.emit(named, named === flow ? shape : undefined);
    if (sink.writeErrors > this.flowLogLostSeen) {
      this.metrics.addFlowLogErrors(sink.writeErrors - this.flowLogLostSeen);
      if (this.flowLogLostSeen === 0) {
        this.log(`flow log ${this.flowLog}: ${sink.lastWriteError}; records missing from it are counted`);
      }
      this.flowLogLostSeen = sink.writeErrors;
    }
    this.counts.processed++;
    if (flow.verdict === 'DROPPED') this.counts.dropped++;
    else if (flow.verdict === 'FORWARDED' || flow.verdict === 'REDIRECTED') this.counts.forwarded++;
    else if (flow.verdict === 'AUDIT') this.counts.audited++;
    return event;
  }

  /**
   * A retransmitted SYN passes `ct state new` again and is logged again; Cilium's verdict comes
   * once, when the connection's entry is made. True when this forwarded SYN's connection was
   * recorded within SYN_WINDOW_MS.
   */
  private repeatedSyn(ev: KernelEvent): boolean {
    if (ev.proto !== 6 || ev.tcpFlags?.SYN !== true || ev.tcpFlags.ACK === true) return false;
    if (ev.verdict !== 'fwd' && ev.verdict !== 'redir') return false;
    const now = ev.time.seconds * 1000 + ev.time.nanos / 1e6;
    return this.synSeen.repeated(ev.dir, ev.srcIP, ev.sport, ev.dstIP, ev.dport, now);
  }

  /** A local pod's MapState for the match type; re-read on a new policy revision or after 1 s. */
  private entriesOf(p: PeerRef): readonly MapStateEntry[] | undefined {
    if (p.kind !== 'endpoint') return undefined;
    const key = `${p.namespace}/${p.name}`;
    const rev = this.opts.policyRevision?.() ?? -1;
    const now = Date.now();
    const c = this.entriesCache.get(key);
    if (c !== undefined && c.rev === rev && now - c.at < 1000) return c.entries;
    const entries = this.node.engine.endpointPolicy(p.namespace, p.name).entries;
    this.entriesCache.set(key, { rev, at: now, entries });
    return entries;
  }

  private unavailable(reason: string): void {
    this.state = 'unavailable';
    this.reason = reason;
    this.log(`flow records unavailable (${reason}); enforcement continues without them`);
  }

  /** `/metrics` on the flow socket, in front of the sink's own routes. */
  private addMetricsRoute(server: Server): void {
    const inner = server.listeners('request') as Array<(...a: unknown[]) => void>;
    server.removeAllListeners('request');
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') {
        this.metrics.text().then(
          (t) => {
            res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
            res.end(t);
          },
          (e: Error) => {
            res.writeHead(500);
            res.end(e.message);
          },
        );
        return;
      }
      for (const l of inner) l(req, res);
    });
  }

  /**
   * One kernel verdict → one record. Never throws: an event whose record cannot be built is
   * counted as an error and as lost (hubble_lost_events_total{source="observer_events_queue"}).
   */
  ingest(ev: KernelEvent): void {
    try {
      this.record(ev);
    } catch (e) {
      this.buildError(`${ev.srcIP} -> ${ev.dstIP} proto ${ev.proto}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /**
   * A record built elsewhere (an L7 proxy's, over its IPC) into the same log, ring and API as the
   * kernel's. Never throws.
   */
  ingestFlow(flow: Flow): void {
    if (this.sink === undefined) return;
    try {
      this.emit(flow);
    } catch (e) {
      this.buildError(`L7 record: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  private buildError(what: string, n = 1): void {
    this.counts.errors += n;
    this.metrics.addLost(BUILD_ERROR_SOURCE, n);
    // a broken engine or format would fail every event: say so, but not once per packet
    if (this.counts.errors - n < MAX_ERROR_LOGS) this.log(`flow record not built: ${what}`);
    if (this.counts.errors >= MAX_ERROR_LOGS && this.counts.errors - n < MAX_ERROR_LOGS)
      this.log('further flow record errors are counted only (agent status, /metrics)');
  }

  /** Our ulogd lines the tailer could not parse (foreign prefixes are not ours: not lost). */
  private syncParseErrors(): void {
    const skipped = this.tailer?.stats.skipped ?? {};
    let n = 0;
    for (const [code, c] of Object.entries(skipped)) if (code !== 'foreign-prefix') n += c ?? 0;
    if (n > this.parseErrorsSeen) {
      this.buildError(
        `${n - this.parseErrorsSeen} ulogd line(s) that do not parse`,
        n - this.parseErrorsSeen,
      );
      this.parseErrorsSeen = n;
    }
  }

  private record(ev: KernelEvent): void {
    const sink = this.sink;
    if (sink === undefined) return;
    if (this.repeatedSyn(ev)) {
      this.repeatedVerdicts++;
      return;
    }
    const o = this.recordOptions;
    const rev = this.opts.policyRevision?.();
    if (rev !== undefined) o.policyRevision = rev;
    const rec = this.records.record(this.node.engine, ev, o);
    const event = this.emit(rec.flow, rec.shape);
    // Cilium: the policy verdict, then the drop notification of the same packet
    if (rec.drop !== undefined) this.emit(rec.drop, rec.dropShape);
    // a connection handed to the proxy: Cilium's to-proxy trace follows its policy verdict
    if (rec.flow.verdict === 'REDIRECTED') this.emit(toProxyTrace(rec.flow, randomUUID()));
    if (!rec.agrees) {
      this.counts.disagreements++;
      this.log(
        `kernel ${rec.flow.verdict} but engine ${rec.engineVerdict}: ${ev.srcIP} -> ${ev.dstIP} proto ${ev.proto} port ${ev.dport ?? '-'} (${ev.dir}, endpoint ${ev.endpointId})`,
      );
    }
    this.opts.onRecord?.(rec, event);
  }

  /** Reads what ulogd has written so far (tests and the live runner wait on records). */
  drain(): void {
    this.tailer?.poll();
    this.syncParseErrors();
    this.flushFlowLog();
  }

  /** Writes the batched flow log lines now and counts what the file could not take. */
  private flushFlowLog(): void {
    const sink = this.sink;
    if (sink === undefined) return;
    sink.flush();
    if (sink.writeErrors > this.flowLogLostSeen) {
      this.metrics.addFlowLogErrors(sink.writeErrors - this.flowLogLostSeen);
      if (this.flowLogLostSeen === 0) {
        this.log(`flow log ${this.flowLog}: ${sink.lastWriteError}; records missing from it are counted`);
      }
      this.flowLogLostSeen = sink.writeErrors;
    }
  }

  get available(): boolean {
    return this.state === 'running' || this.state === 'restarting';
  }

  /** Sequence number the next record will get. */
  get nextSeq(): number {
    return this.ring.seen;
  }

  /** Records from `fromSeq` on, oldest first. */
  since(fromSeq: number): RingEntry[] {
    return this.ring.fromSeq(fromSeq);
  }

  /**
   * Polls until `done(records since fromSeq)` holds or the time is up; returns the records seen.
   * The kernel logs before ulogd writes and the tailer polls, so records trail packets slightly.
   */
  async waitFor(
    fromSeq: number,
    done: (entries: RingEntry[]) => boolean,
    timeoutMs = 1500,
  ): Promise<RingEntry[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      this.drain();
      const entries = this.since(fromSeq);
      if (done(entries) || Date.now() >= end || !this.available) return entries;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  status(): FlowPipelineStatus {
    this.syncParseErrors();
    this.flushFlowLog();
    const s: FlowPipelineStatus = {
      state: this.state,
      processed: this.counts.processed,
      forwarded: this.counts.forwarded,
      dropped: this.counts.dropped,
      audited: this.counts.audited,
      lost: this.ring.lost + this.counts.errors + (this.sink?.writeErrors ?? 0),
      flowLogLost: this.sink?.writeErrors ?? 0,
      errors: this.counts.errors,
      suppressedDrops: this.tailer?.stats.suppressedDrops ?? 0,
      repeatedVerdicts: this.repeatedVerdicts,
      traces: this.tracesState,
      disagreements: this.counts.disagreements,
    };
    if (this.reason !== undefined) s.reason = this.reason;
    if (this.sink?.lastWriteError !== undefined) s.flowLogError = this.sink.lastWriteError;
    if (this.flowLog !== undefined) s.flowLog = this.flowLog;
    if (this.socket !== undefined) s.socket = this.socket;
    if (this.ulogd?.pid !== undefined) s.ulogdPid = this.ulogd.pid;
    return s;
  }

  metricsText(): Promise<string> {
    this.syncParseErrors();
    this.flushFlowLog();
    return this.metrics.text();
  }

  /** Stops ulogd (after reading what it wrote), closes the socket and the flow log. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') {
      this.sink?.close(); // a pipeline never started may still have written its flow log
      return;
    }
    const reason = this.reason;
    if (this.rotateTimer !== undefined) clearInterval(this.rotateTimer);
    this.rotateTimer = undefined;
    this.drain();
    const ct = this.conntrack;
    this.conntrack = undefined;
    if (ct !== undefined && ct.exitCode === null) {
      const gone = new Promise<void>((r) => ct.once('exit', () => r()));
      ct.kill('SIGTERM');
      await Promise.race([gone, new Promise<void>((r) => setTimeout(r, 1000).unref())]);
      if (ct.exitCode === null) ct.kill('SIGKILL');
    }
    await this.ulogd?.stop();
    rmSync(join(this.runDir, 'ulogd.pid'), { force: true });
    this.tailer?.stop(); // final read, then close
    if (this.ulogd !== undefined) {
      // ulogd's raw output is consumed; the records (flows.jsonl) and ulogd.log stay
      for (const f of ['flows.json', 'flows.json.1', 'ulogd.conf'])
        rmSync(join(this.runDir, f), { force: true });
    }
    this.tailer = undefined;
    this.ulogd = undefined;
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections?.();
      await new Promise<void>((r) => server.close(() => r()));
    }
    this.sink?.close();
    this.state = 'stopped';
    if (reason !== undefined) this.reason = reason;
  }
}
