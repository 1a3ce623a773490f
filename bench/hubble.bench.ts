// The flow pipeline end to end, on one core: ulogd2 JSON lines (kernel events) → KernelEvent →
// flow record (the real engine explains each verdict) → flow log, ring and metrics (the agent's
// FlowPipeline) → Hubble's Observer streaming to two gRPC followers (GetFlows follow=true on a
// unix socket). Against, in the same run and the same process, the raw read rate: parsing the
// same lines alone. The pipeline's process (every thread: the agent side and its gRPC server) is
// pinned to CPU 0; the two followers are processes of their own (bench/hubble.child.ts) pinned to
// CPU 1, each decoding every message in full as a Hubble client does, so the pipeline's figures
// are its own cost and the followers' decoding is theirs; rows with counting followers (reading
// one byte per message) show where the pipeline itself stops keeping up. Paced rows offer a fixed rate (yielding
// between batches, as the tailer does between reads) and show whether both followers got every
// flow; the unpaced row pushes as fast as the loop allows, so followers may fall a ring behind and
// get LostEvents (counted, never silent). HUBBLE_BENCH_PIN=0: no pinning.
// The pipeline runs with the agent's V8 flags (agent/node-flags.ts), as `seawall agent` does:
// without them in this process, the bench runs itself again in a child that has them.
// HUBBLE_BENCH_FLAGS=0: in this process, with whatever flags it has (to compare).
// BENCH_BASELINE=DIR: another checkout's pipeline (DIR/bench/hubble.bench.ts's `pipeline` and
// `node`, so its own engine, parser, pipeline and gRPC server) beside this one in the same process,
// on the same pinning, lines and followers, each run of every row interleaved with this tree's.

import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { FlowPipeline } from '../src/agent/flows.ts';
import { AGENT_NODE_FLAGS } from '../src/agent/node-flags.ts';
import type { NodeDatapath } from '../src/datapath/node.ts';
import { parseUlogdLine } from '../src/flow/nflog.ts';
import { startHubbleServer } from '../src/observe/hubble/server.ts';
import { HUBBLE_EVENT_BUFFER_CAPACITY } from '../src/observe/sink.ts';
import { defaultEngineFactory } from '../src/policy/default-engine.ts';
import type { PolicyEngineAPI } from '../src/policy/types.ts';
import { loadPolicyBytes } from '../src/policy-api/load.ts';
import { median, table } from './lib.ts';

const N = 60_000;
const BATCH = 256;
const RUNS = 3;
const TIMEOUT_MS = 30_000;
const PODS = 40;

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-from-client, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  ingressDeny:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "22", protocol: TCP}]}]
`;

const ip = (i: number): string => `10.99.${i >> 8}.${(i & 255) + 1}`;

/** A node of PODS pods (odd: clients, even: servers) with the real engine, as FlowPipeline sees it. */
export function node(): NodeDatapath {
  const engine: PolicyEngineAPI = defaultEngineFactory({});
  engine.upsertNamespace('shop', {});
  const ids: Record<string, number> = {};
  const byIp = new Map<string, { key: string }>();
  for (let i = 0; i < PODS; i++) {
    const name = `${i % 2 ? 'client' : 'server'}-${i}`;
    engine.upsertEndpoint({
      name,
      namespace: 'shop',
      labels: { app: i % 2 ? 'client' : 'server' },
      ip: ip(i),
    });
    ids[`pod:shop/${name}`] = 100 + i;
    byIp.set(ip(i), { key: `pod:shop/${name}` });
  }
  for (const p of loadPolicyBytes('bench.yaml', Buffer.from(POLICY), { lint: false }).policies)
    engine.upsertPolicy(p);
  return {
    node: 'seawall-bench',
    engine,
    endpointIds: () => ids,
    topo: { nodeIp: '10.99.255.254', hostByIp: (a: string) => byIp.get(a) },
  } as unknown as NodeDatapath;
}

/** ulogd2 JSON lines of client → server SYNs: allowed (8080), explicitly denied (22), default-denied (9090). */
export function lines(n: number): string[] {
  const out: string[] = [];
  const t0 = 1_795_661_882;
  for (let i = 0; i < n; i++) {
    const client = 2 * (i % (PODS / 2)) + 1;
    const server = 2 * ((i >> 4) % (PODS / 2));
    const kind = i % 4;
    const [verdict, dport] = kind === 3 ? ['denied', 9090] : kind === 2 ? ['deny', 22] : ['fwd', 8080];
    const sec = t0 + Math.floor(i / 1000);
    const usec = (i % 1000) * 1000;
    out.push(
      JSON.stringify({
        timestamp: '2026-11-26T02:58:02.436128',
        dvc: 'Netfilter',
        'raw.pktlen': 60,
        'oob.prefix': `sw/${verdict}/in/${100 + server}/`,
        'oob.time.sec': sec,
        'oob.time.usec': usec,
        'oob.mark': 0,
        'oob.hook': 2,
        'oob.family': 2,
        'oob.protocol': 2048,
        'ip.protocol': 6,
        'ip.totlen': 60,
        src_port: 1024 + (i % 64000),
        dest_port: dport,
        'tcp.syn': 1,
        'tcp.ack': 0,
        'tcp.fin': 0,
        'tcp.rst': 0,
        'tcp.psh': 0,
        'tcp.urg': 0,
        'oob.in': 'sw-veth',
        'oob.out': 'sw-veth2',
        src_ip: ip(client),
        dest_ip: ip(server),
      }),
    );
  }
  return out;
}

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) this process has used since `from`. */
const cpuSince = (from: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1e6;
};

/** The raw read rate: the same lines parsed into kernel events, nothing else (per wall and CPU second). */
async function rawRead(ls: string[]): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let ok = 0;
  for (let i = 0; i < ls.length; i++) {
    if (parseUlogdLine(ls[i]!).ok) ok++;
    if ((i + 1) % BATCH === 0) await yieldLoop();
  }
  if (ok !== ls.length) throw new Error(`${ls.length - ok} lines did not parse`);
  return { wall: ls.length / ((performance.now() - t0) / 1000), cpu: ls.length / cpuSince(c0) };
}

/** A follower process (bench/hubble.child.ts), kept for every run of the bench. */
export class Follower {
  private constructor(readonly proc: ChildProcess) {}

  /** decode false: a client that counts messages without decoding them (the agent's own limit). */
  static async start(cpu: number | undefined, decode = true): Promise<Follower> {
    const proc = fork(CHILD, decode ? [] : ['count'], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const f = new Follower(proc);
    await f.next('ready');
    if (cpu !== undefined) pin(proc.pid!, String(cpu));
    return f;
  }

  /** The next IPC answer that has `key`. */
  private next<T>(key: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`follower did not answer ${key}`)), TIMEOUT_MS);
      const on = (m: unknown): void => {
        if (typeof m === 'object' && m !== null && key in m) {
          clearTimeout(t);
          this.proc.off('message', on);
          resolve(m as T);
        }
      };
      this.proc.on('message', on);
    });
  }

  async connect(socket: string): Promise<void> {
    const r = this.next('connected');
    this.proc.send({ connect: socket });
    await r;
  }

  async count(): Promise<{ flows: number; lost: number; errors: number; cpu: number }> {
    const r = this.next<{ flows: number; lost: number; errors: number; cpu: number }>('flows');
    this.proc.send('count');
    return r;
  }

  async close(): Promise<void> {
    const r = this.next('closed');
    this.proc.send('close');
    await r;
  }

  stop(): void {
    this.proc.kill('SIGTERM');
  }
}

const CHILD = fileURLToPath(new URL('./hubble.child.ts', import.meta.url));

/** Pins every thread of `pid` to `cpus` (a taskset list); returns the list it had. */
function pin(pid: number, cpus: string): string {
  const was = execFileSync('taskset', ['-cp', String(pid)], { encoding: 'utf8' })
    .split(':')
    .pop()!
    .trim();
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
  return was;
}

interface Result {
  /** Kernel events in per second (offered or achieved). */
  ingested: number;
  /** Records delivered to the slower follower per second. */
  delivered: number;
  /** Records (verdicts and drops) per kernel event. */
  perEvent: number;
  /** Kernel events per CPU second of the pipeline's process (agent side and its gRPC server). */
  cpuRate: number;
  /** Records decoded per CPU second of a follower process (the mean of the two). */
  followerCpuRate: number;
  lost: number[];
  /** Ring entries encoded from their shape's cached bytes, of all encoded. */
  templated: number;
}

/** Ingests `ls` at `rate` events/s (0: as fast as the loop allows) through the whole pipeline. */
export async function pipeline(
  ls: string[],
  rate: number,
  followers: readonly Follower[],
  nd: NodeDatapath,
  flowLog = true,
): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hubble-bench-'));
  const p = new FlowPipeline(nd, {
    runDir: dir,
    socket: false,
    flowLog: flowLog ? join(dir, 'flows.jsonl') : false,
    traces: false,
    ringCapacity: HUBBLE_EVENT_BUFFER_CAPACITY,
  });
  const server = await startHubbleServer(
    { ring: p.ring, nodeName: 'seawall-bench' },
    { unixSocket: join(dir, 'hubble.sock') },
  );
  try {
    for (const fo of followers) await fo.connect(server.unixSocket!);
    const deadline = Date.now() + TIMEOUT_MS;
    while (server.stats.activeStreams < followers.length) {
      if (Date.now() > deadline) throw new Error('followers did not connect');
      await sleep(5);
    }
    const before = await Promise.all(followers.map((f) => f.count()));
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < ls.length; i++) {
      const r = parseUlogdLine(ls[i]!);
      if (r.ok) p.ingest(r.event);
      if ((i + 1) % BATCH === 0) {
        if (rate === 0) await yieldLoop();
        else {
          const due = t0 + ((i + 1) / rate) * 1000 - performance.now();
          await (due > 0 ? sleep(due) : yieldLoop());
        }
      }
    }
    const tIn = performance.now();
    const cIn = cpuSince(c0);
    const records = p.ring.seen;
    const drainBy = Date.now() + TIMEOUT_MS;
    let counts = await Promise.all(followers.map((f) => f.count()));
    while (counts.some((c) => c.flows + c.lost < records)) {
      if (Date.now() > drainBy)
        throw new Error(`timed out: ${counts.map((c) => c.flows + c.lost).join(', ')} of ${records}`);
      await sleep(2);
      counts = await Promise.all(followers.map((f) => f.count()));
    }
    const s = (performance.now() - t0) / 1000;
    for (const c of counts) if (c.errors > 0) throw new Error(`${c.errors} responses without a flow`);
    const st = p.status();
    if (st.errors > 0 || st.disagreements > 0)
      throw new Error(`${st.errors} errors, ${st.disagreements} disagreements`);
    const followerCpu = counts.reduce((n, c, k) => n + (c.cpu - before[k]!.cpu) / 1e6, 0);
    return {
      ingested: ls.length / ((tIn - t0) / 1000),
      delivered: Math.min(...counts.map((c) => c.flows)) / s,
      perEvent: records / ls.length,
      cpuRate: ls.length / cIn,
      followerCpuRate: counts.reduce((n, c) => n + c.flows, 0) / followerCpu,
      lost: counts.map((c) => c.lost),
      templated:
        server.stats.templatedEntries / (server.stats.templatedEntries + server.stats.encodedEntries),
    };
  } finally {
    for (const fo of followers) await fo.close().catch(() => {});
    await server.close();
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Another checkout's bench module (BENCH_BASELINE): its pipeline and node on its own code. */
interface Baseline {
  dir: string;
  pipeline: typeof pipeline;
  nd: NodeDatapath;
}

async function baseline(): Promise<Baseline | undefined> {
  const dir = process.env.BENCH_BASELINE;
  if (dir === undefined || dir === '') return undefined;
  const m = (await import(join(dir, 'bench', 'hubble.bench.ts'))) as {
    pipeline: typeof pipeline;
    node: typeof node;
  };
  return { dir, pipeline: m.pipeline, nd: m.node() };
}

const RATES = [2_000, 5_000, 10_000, 20_000, 0];
/** Rows with followers that count without decoding: the pipeline's own limit. */
const COUNT_RATES = [10_000, 20_000, 0];
/** About two seconds of events at each offered rate (bounded run time), N unpaced. */
const countAt = (rate: number): number => (rate === 0 ? N : Math.min(N, rate * 2));

/** The agent's flags this process lacks (none when HUBBLE_BENCH_FLAGS=0). */
const missingFlags = (): string[] =>
  process.env.HUBBLE_BENCH_FLAGS === '0' ? [] : AGENT_NODE_FLAGS.filter((f) => !process.execArgv.includes(f));

export default async function run(): Promise<void> {
  const missing = missingFlags();
  if (missing.length > 0) {
    // the same bench in a process with the agent's flags (its table is this bench's output)
    const child = spawn(process.execPath, [...missing, ...process.execArgv, fileURLToPath(import.meta.url)], {
      stdio: 'inherit',
      env: { ...process.env, HUBBLE_BENCH_MAIN: '1' },
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    if (code !== 0) throw new Error(`the bench with the agent's flags exited ${code}`);
    return;
  }
  const pinned = process.env.HUBBLE_BENCH_PIN !== '0' && availableParallelism() >= 2;
  const was = pinned ? pin(process.pid, '0') : undefined;
  const followers = await Promise.all([0, 1].map(() => Follower.start(pinned ? 1 : undefined)));
  const counters = await Promise.all([0, 1].map(() => Follower.start(pinned ? 1 : undefined, false)));
  try {
    const ls = lines(N);
    await rawRead(ls.slice(0, 5000)); // warm-up
    // one node (engine) for every run, as an agent's; each run's pipeline is new (its records'
    // templates are built in the run)
    const nd = node();
    await pipeline(ls.slice(0, 5000), 0, followers, nd);
    const base = await baseline();
    if (base !== undefined) await base.pipeline(ls.slice(0, 5000), 0, followers, base.nd);
    const raw: { wall: number; cpu: number }[] = [];
    const byRate = new Map<number, Result[]>(RATES.map((r) => [r, []]));
    const byCountRate = new Map<number, Result[]>(COUNT_RATES.map((r) => [r, []]));
    const baseByRate = new Map<number, Result[]>(RATES.map((r) => [r, []]));
    const baseByCountRate = new Map<number, Result[]>(COUNT_RATES.map((r) => [r, []]));
    const loads: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      loads.push(loadavg()[0]!);
      raw.push(await rawRead(ls));
      // the baseline's run of a row first in odd runs, this tree's first in even ones
      const both = async (
        rate: number,
        fs: Follower[],
        mine: Map<number, Result[]>,
        theirs: Map<number, Result[]>,
      ) => {
        const slice = ls.slice(0, countAt(rate));
        const order = base === undefined ? [false] : r % 2 === 0 ? [false, true] : [true, false];
        for (const isBase of order) {
          if (isBase) theirs.get(rate)!.push(await base!.pipeline(slice, rate, fs, base!.nd));
          else mine.get(rate)!.push(await pipeline(slice, rate, fs, nd));
        }
      };
      for (const rate of RATES) await both(rate, followers, byRate, baseByRate);
      for (const rate of COUNT_RATES) await both(rate, counters, byCountRate, baseByCountRate);
    }
    const b = median(raw.map((x) => x.wall));
    const bCpu = median(raw.map((x) => x.cpu));
    const n = (x: number): string => Math.round(x).toLocaleString('en');
    const rowsOf = (rates: number[], by: Map<number, Result[]>, what: string, tag = ''): string[][] =>
      rates.map((rate) => {
        const xs = by.get(rate)!;
        const ingested = median(xs.map((x) => x.ingested));
        const cpuRate = median(xs.map((x) => x.cpuRate));
        return [
          tag +
            (rate === 0
              ? `pipeline → 2 ${what}, unpaced (${N.toLocaleString('en')})`
              : `pipeline → 2 ${what}, offered ${rate.toLocaleString('en')}/s (${countAt(rate).toLocaleString('en')})`),
          n(ingested),
          `${(ingested / b).toFixed(2)}x`,
          n(median(xs.map((x) => x.delivered))),
          n(cpuRate),
          `${(cpuRate / bCpu).toFixed(2)}x`,
          n(median(xs.map((x) => x.followerCpuRate))),
          xs.map((x) => x.lost.join('+')).join(', '),
        ];
      });
    const rows = [
      ...rowsOf(RATES, byRate, 'decoding followers'),
      ...rowsOf(COUNT_RATES, byCountRate, 'counting followers'),
      ...(base === undefined
        ? []
        : [
            ...rowsOf(RATES, baseByRate, 'decoding followers', 'baseline: '),
            ...rowsOf(COUNT_RATES, baseByCountRate, 'counting followers', 'baseline: '),
          ]),
    ];
    const perEvent = median(byRate.get(0)!.map((x) => x.perEvent));
    const templated = median(byRate.get(0)!.map((x) => x.templated));
    process.stdout.write(
      `${table([
        [
          'variant',
          'kernel events/s',
          'vs raw read',
          'records/s to each follower',
          'events per CPU-s',
          'vs raw (CPU)',
          'records per follower CPU-s',
          'lost per follower (each run)',
        ],
        ['raw read (baseline: lines parsed)', n(b), '1.00x', '-', n(bCpu), '1.00x', '-', '-'],
        ...rows,
      ])}\n`,
    );
    process.stdout.write(
      `\nevents per run in parentheses, ${RUNS} runs (medians), ${perEvent.toFixed(2)} records per event (a denial is a verdict and a drop), ring ${HUBBLE_EVENT_BUFFER_CAPACITY}, flow log on, unix socket, ${(templated * 100).toFixed(0)}% of the unpaced rows' ring entries encoded from their shape's template. ${pinned ? `Pipeline process (all threads) pinned to CPU 0, the follower processes (grpc-js clients; decoding: every message with protobufjs, as a Hubble client; counting: the first byte only, so the rows show the pipeline's own limit) to CPU 1` : `Not pinned; followers are processes of their own (grpc-js clients decoding every message)`}; the pipeline's node flags: ${process.execArgv.filter((a) => a.startsWith('--m')).join(' ') || 'none'}; events per CPU-s: the pipeline process's user+system CPU time while ingesting; follower CPU-s: theirs.${base === undefined ? '' : ` Baseline rows: ${base.dir}'s pipeline (its own engine, parser, pipeline and gRPC server) in this process, on the same pinning, lines and followers, its run of each row interleaved with this tree's (alternating which goes first).`} ${cpus().length} cores shared with other work: load average ${loads.map((l) => l.toFixed(1)).join(', ')} at the start of each run.\n`,
    );
  } finally {
    for (const f of [...followers, ...counters]) f.stop();
    if (was !== undefined) pin(process.pid, was);
  }
}

if (process.env.HUBBLE_BENCH_MAIN === '1' && process.argv[1] === fileURLToPath(import.meta.url)) {
  delete process.env.HUBBLE_BENCH_MAIN;
  await run();
}
