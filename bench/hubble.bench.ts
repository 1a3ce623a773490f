// The flow pipeline end to end, on one core: ulogd2 JSON lines (kernel events) → KernelEvent →
// flow record (the real engine explains each verdict) → flow log, ring and metrics (the agent's
// FlowPipeline) → Hubble's Observer streaming to two gRPC followers (GetFlows follow=true on a
// unix socket). Against, in the same run, the raw read rate: parsing the same lines alone. Paced
// rows offer a fixed rate (yielding between batches, as the tailer does between reads) and show
// whether both followers got every flow; the unpaced row pushes as fast as the loop allows, so
// followers may fall a ring behind and get LostEvents (counted, never silent). The followers count
// messages without decoding them, so the figure is the agent's cost.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { FlowPipeline } from '../src/agent/flows.ts';
import type { NodeDatapath } from '../src/datapath/node.ts';
import { parseUlogdLine } from '../src/flow/nflog.ts';
import { HUBBLE_CLIENT_OPTIONS } from '../src/observe/hubble/client.ts';
import { hubbleType } from '../src/observe/hubble/schema.ts';
import { startHubbleServer } from '../src/observe/hubble/server.ts';
import { HUBBLE_EVENT_BUFFER_CAPACITY } from '../src/observe/sink.ts';
import { defaultEngineFactory } from '../src/policy/default-engine.ts';
import type { PolicyEngineAPI } from '../src/policy/types.ts';
import { loadPolicyBytes } from '../src/policy-api/load.ts';
import { median, table } from './lib.ts';

const N = 40_000;
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
        src_port: 20000 + (i % 40000),
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

interface Follower {
  flows: number;
  lost: number;
  call: grpc.ClientReadableStream<Buffer>;
}

interface Result {
  /** Kernel events in per second (offered or achieved). */
  ingested: number;
  /** Records delivered to the slower follower per second. */
  delivered: number;
  /** Records (verdicts and drops) per kernel event. */
  perEvent: number;
  /** Kernel events per CPU second of this process (pipeline, server and both followers). */
  cpuRate: number;
  /** Records both followers got, per CPU second. */
  cpuDelivered: number;
  lost: number[];
}

/** Ingests `ls` at `rate` events/s (0: as fast as the loop allows) through the whole pipeline. */
export async function pipeline(ls: string[], rate: number, flowLog = true): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hubble-bench-'));
  const p = new FlowPipeline(node(), {
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
  const Res = hubbleType('observer.GetFlowsResponse');
  const Req = hubbleType('observer.GetFlowsRequest');
  const client = new grpc.Client(
    `unix://${server.unixSocket}`,
    grpc.credentials.createInsecure(),
    HUBBLE_CLIENT_OPTIONS,
  );
  try {
    const followers: Follower[] = [];
    for (let k = 0; k < 2; k++) {
      const fo: Follower = {
        flows: 0,
        lost: 0,
        call: undefined as unknown as grpc.ClientReadableStream<Buffer>,
      };
      fo.call = client.makeServerStreamRequest(
        '/observer.Observer/GetFlows',
        (o: Record<string, unknown>) => Buffer.from(Req.encode(Req.fromObject(o)).finish()),
        (b: Buffer) => b,
        { follow: true },
      );
      fo.call.on('data', (b: Buffer) => {
        // field 1 (flow) is tag 0x0a; field 3 (lost_events) 0x1a
        if (b[0] === 0x0a) fo.flows++;
        else {
          const m = Res.toObject(Res.decode(b), { longs: Number }) as {
            lost_events?: { num_events_lost?: number };
          };
          fo.lost += m.lost_events?.num_events_lost ?? 0;
        }
      });
      fo.call.on('error', () => {});
      followers.push(fo);
    }
    const deadline = Date.now() + TIMEOUT_MS;
    while (server.stats.activeStreams < 2) {
      if (Date.now() > deadline) throw new Error('followers did not connect');
      await sleep(5);
    }
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
    const records = p.ring.seen;
    const drainBy = Date.now() + TIMEOUT_MS;
    while (followers.some((fo) => fo.flows + fo.lost < records)) {
      if (Date.now() > drainBy)
        throw new Error(`timed out: ${followers.map((f) => f.flows + f.lost).join(', ')} of ${records}`);
      await sleep(1);
    }
    const s = (performance.now() - t0) / 1000;
    const cpu = cpuSince(c0);
    for (const fo of followers) fo.call.cancel();
    const st = p.status();
    if (st.errors > 0 || st.disagreements > 0)
      throw new Error(`${st.errors} errors, ${st.disagreements} disagreements`);
    return {
      ingested: ls.length / ((tIn - t0) / 1000),
      delivered: Math.min(...followers.map((f) => f.flows)) / s,
      perEvent: records / ls.length,
      cpuRate: ls.length / cpu,
      cpuDelivered: followers.reduce((n, f) => n + f.flows, 0) / cpu,
      lost: followers.map((f) => f.lost),
    };
  } finally {
    client.close();
    await server.close();
    await p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const RATES = [2_000, 5_000, 10_000, 20_000, 0];
/** About two seconds of events at each offered rate (bounded run time), N unpaced. */
const countAt = (rate: number): number => (rate === 0 ? N : Math.min(N, rate * 2));

export default async function run(): Promise<void> {
  const ls = lines(N);
  await rawRead(ls.slice(0, 5000)); // warm-up
  await pipeline(ls.slice(0, 5000), 0);
  const raw: { wall: number; cpu: number }[] = [];
  const byRate = new Map<number, Result[]>(RATES.map((r) => [r, []]));
  const loads: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    loads.push(loadavg()[0]!);
    raw.push(await rawRead(ls));
    for (const rate of RATES) byRate.get(rate)!.push(await pipeline(ls.slice(0, countAt(rate)), rate));
  }
  const b = median(raw.map((x) => x.wall));
  const bCpu = median(raw.map((x) => x.cpu));
  const n = (x: number): string => Math.round(x).toLocaleString('en');
  const rows = RATES.map((rate) => {
    const xs = byRate.get(rate)!;
    const ingested = median(xs.map((x) => x.ingested));
    const cpuRate = median(xs.map((x) => x.cpuRate));
    return [
      rate === 0
        ? `pipeline → 2 followers, unpaced (${N.toLocaleString('en')})`
        : `pipeline → 2 followers, offered ${rate.toLocaleString('en')}/s (${countAt(rate).toLocaleString('en')})`,
      n(ingested),
      `${(ingested / b).toFixed(2)}x`,
      n(median(xs.map((x) => x.delivered))),
      n(cpuRate),
      `${(cpuRate / bCpu).toFixed(2)}x`,
      n(median(xs.map((x) => x.cpuDelivered))),
      xs.map((x) => x.lost.join('+')).join(', '),
    ];
  });
  const perEvent = median(byRate.get(0)!.map((x) => x.perEvent));
  process.stdout.write(
    `${table([
      [
        'variant',
        'kernel events/s',
        'vs raw read',
        'records/s to each follower',
        'events per CPU-s',
        'vs raw (CPU)',
        'records to followers per CPU-s',
        'lost per follower (each run)',
      ],
      ['raw read (baseline: lines parsed)', n(b), '1.00x', '-', n(bCpu), '1.00x', '-', '-'],
      ...rows,
    ])}\n`,
  );
  process.stdout.write(
    `\nevents per run in parentheses, ${RUNS} runs (medians), ${perEvent.toFixed(2)} records per event (a denial is a verdict and a drop), ring ${HUBBLE_EVENT_BUFFER_CAPACITY}, flow log on, unix socket, followers in-process on the same thread; per CPU-s: this process's user+system CPU time (agent side and both followers' decoding), so a figure that the other engineers' load on the machine does not scale. Not pinned (${cpus().length} cores shared), load average ${loads.map((l) => l.toFixed(1)).join(', ')} at the start of each run.\n`,
  );
}
