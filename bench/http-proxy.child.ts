// Child processes of bench/http-proxy.bench.ts (one role each, so the proxy's CPU is its own):
//   upstream PORT_FILE            a minimal HTTP/1.1 server (200, 2-byte body)
//   grpc-upstream                 a grpc-js server with one unary method
//   node-proxy UPSTREAM_PORT      a minimal node:http reverse proxy (no policy): the floor of a
//                                 proxy built on node:http server and client
//   proxy UPSTREAM_PORT RULES     the Seawall HTTP proxy with RULES rules (the match is the last),
//                                 or `grpc` for the one rule that admits the gRPC method, judging
//                                 through the agent's policy mirror
// Each prints `{"port":N}` when listening and answers IPC `cpu` with process.cpuUsage().

import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { HTTPRecordInput } from '../src/flow/l7-record.ts';
import { PolicyMirror } from '../src/proxy/http/main.ts';
import { HTTPProxy } from '../src/proxy/http/proxy.ts';
import { HTTPRecordMessages } from '../src/proxy/http/records.ts';
import { benchRules, benchService, grpcRules } from './http-proxy.shared.ts';

const [role, a1, a2] = process.argv.slice(2);

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

// BENCH_TRACE=1: what stalls this process's event loop during a window (answered on IPC `trace`,
// reset on `trace-reset`): event-loop delay and GC pauses by kind.
const trace = process.env.BENCH_TRACE === '1' ? startTrace() : undefined;

function startTrace() {
  // Sampling only during the window asked about: an idle child sampling at 1 kHz wakes up a
  // thousand times a second on the measured proxy's core and preempts it (every proxy of the
  // bench shares CPU 1 when pinned).
  const eld = monitorEventLoopDelay({ resolution: 1 });
  let gcs: Array<{ kind: number; ms: number }> = [];
  let cpu0 = process.cpuUsage();
  let ru0 = process.resourceUsage();
  // What this process did between two of its windows, while the others were measured on the same
  // core: its CPU and its GC pauses (a neighbour's stall, not its own).
  let idleFrom = process.cpuUsage();
  let idle = { cpuMs: 0, gcN: 0, gcMs: 0, gcMaxMs: 0 };
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) {
      gcs.push({ kind: (e as unknown as { detail?: { kind: number } }).detail?.kind ?? 0, ms: e.duration });
    }
  }).observe({ entryTypes: ['gc'] });
  return {
    reset() {
      const c = process.cpuUsage(idleFrom);
      idle = {
        cpuMs: (c.user + c.system) / 1e3,
        gcN: gcs.length,
        gcMs: gcs.reduce((a, g) => a + g.ms, 0),
        gcMaxMs: Math.max(0, ...gcs.map((g) => g.ms)),
      };
      eld.reset();
      eld.enable();
      gcs = [];
      cpu0 = process.cpuUsage();
      ru0 = process.resourceUsage();
    },
    report() {
      const byKind: Record<string, { n: number; totalMs: number; maxMs: number }> = {};
      for (const g of gcs) {
        const k = GC_KINDS[g.kind] ?? String(g.kind);
        const b = byKind[k] ?? { n: 0, totalMs: 0, maxMs: 0 };
        byKind[k] = b;
        b.n++;
        b.totalMs += g.ms;
        b.maxMs = Math.max(b.maxMs, g.ms);
      }
      eld.disable();
      const cpu = process.cpuUsage(cpu0);
      const ru = process.resourceUsage();
      const before = idle;
      gcs = [];
      idleFrom = process.cpuUsage();
      return {
        idle: before,
        // Times the kernel took the CPU from this process while it could run (another process's
        // turn on its core): the machine's share of the stalls, not the proxy's.
        involuntarySwitches: ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches,
        voluntarySwitches: ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches,
        userS: cpu.user / 1e6,
        systemS: cpu.system / 1e6,
        eldP50Ms: eld.percentile(50) / 1e6,
        eldP99Ms: eld.percentile(99) / 1e6,
        eldMaxMs: eld.max / 1e6,
        // Event-loop stalls of 5 ms and more: the histogram's count above 5 ms.
        eldOver5Ms: eldCountAbove(eld, 5e6),
        gc: byKind,
      };
    },
  };
}
/** How many of the histogram's samples were at or above `ns` (from its percentiles). */
function eldCountAbove(h: ReturnType<typeof monitorEventLoopDelay>, ns: number): number {
  let below = 0;
  for (const [p, v] of h.percentiles) if (v < ns) below = p;
  return Math.round(((100 - below) / 100) * h.count);
}

const GC_KINDS: Record<number, string> = {
  1: 'scavenge',
  2: 'minor-mc',
  4: 'mark-compact',
  8: 'incremental',
  16: 'weak-cb',
};

process.on('message', (m) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  else if (m === 'trace-reset') trace?.reset();
  else if (m === 'trace') process.send?.({ trace: trace?.report() });
  else if (m === 'stats') process.send?.({ stats: stats?.() });
});
/** The proxy's counters (proxy children), for IPC `stats`. */
let stats: (() => unknown) | undefined;
process.on('disconnect', () => process.exit(0));
// A normal exit on SIGTERM, so `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => {
  if (heapProfile === undefined) process.exit(0);
  else heapProfile().then(() => process.exit(0));
});

// BENCH_HEAP_PROF=DIR (proxy children): a sampling profile of what the proxy allocates, the objects
// the young generation collected included (where the scavenges come from), written at SIGTERM.
const heapProfile =
  role === 'proxy' && process.env.BENCH_HEAP_PROF !== undefined
    ? startHeapProfile(process.env.BENCH_HEAP_PROF)
    : undefined;

function startHeapProfile(dir: string): () => Promise<void> {
  const s = new Session();
  s.connect();
  s.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return () =>
    new Promise((resolve) => {
      s.post('HeapProfiler.stopSampling', (err, r) => {
        if (err === null)
          writeFileSync(`${dir}/proxy-${a2}-${process.pid}.heapprofile`, JSON.stringify(r.profile));
        resolve();
      });
    });
}

if (role === 'upstream') {
  const s = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
  s.listen(0, '127.0.0.1', () => ready((s.address() as { port: number }).port));
} else if (role === 'grpc-upstream') {
  const s = new grpc.Server();
  s.addService(benchService, {
    Echo: (c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, c.request),
  });
  s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => {
    if (e) throw e;
    ready(port);
  });
} else if (role === 'node-proxy') {
  // The floor of the design: node:http server + keep-alive http.request, no policy, no records.
  const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256 });
  const s = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: Number(a1), method: req.method, path: req.url, headers: req.headers, agent },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  s.listen(0, '127.0.0.1', () => ready((s.address() as { port: number }).port));
} else if (role === 'proxy') {
  // The agent's path: the policy mirror of main.ts judging from a snapshot (an ingress redirect
  // entry with the rules, as buildSnapshot sends it), each record encoded as main.ts sends it to the agent.
  const upstream = { address: '127.0.0.1', port: Number(a1) };
  const rules = a2 === 'grpc' ? grpcRules : benchRules(Number(a2));
  const mirror = new PolicyMirror();
  mirror.load({
    version: 1,
    peers: [['127.0.0.1', { identity: 1001, labels: ['k8s:app=bench'] }]],
    endpoints: [
      {
        ip: '127.0.0.1',
        endpoint: 'bench/server',
        namespace: 'bench',
        ingress: { enforced: true, defaultDeny: true },
        egress: { enforced: false, defaultDeny: false },
        entries: [
          {
            key: {
              direction: 'INGRESS',
              identity: 0,
              proto: 6,
              portLo: upstream.port,
              portHi: upstream.port,
            },
            verdict: 'redirect',
            derivedFrom: [],
            l7: { parser: 'http', rules },
          },
        ],
      },
    ],
  });
  let sink = 0;
  // the lines main.ts writes for the agent (compact: a shape once, then what varies)
  const records = new HTTPRecordMessages();
  const proxy = new HTTPProxy({
    lookup: (c) => mirror.lookup(c),
    originalDst: () => upstream,
    // Records are encoded as main.ts sends them (their cost is part of the proxy's), then dropped;
    // BENCH_RECORDS=0: no records at all (what they cost, by difference).
    ...(process.env.BENCH_RECORDS === '0'
      ? {}
      : {
          onRecord: (r: HTTPRecordInput) => {
            sink += records.line(r).length;
          },
        }),
  });
  stats = () => ({ ...proxy.stats });
  proxy.listen(0, '127.0.0.1').then((a) => ready(a.port));
  process.on('exit', () => sink);
}
