// Hubble Observer API throughput: flows/s pushed into the ring and streamed by the Observer to two
// gRPC followers (GetFlows follow=true on a unix socket), against pushing into the ring alone, in
// the same run. The followers are raw grpc-js clients in this process that count messages without
// decoding them, so the figure is the server's cost (protojson → protobuf encode once per flow,
// shared by both followers, plus HTTP/2 framing and the socket), all on one core. Paced rows push
// at a fixed offered rate (yielding between batches, as the agent's NFLOG reader does between
// reads) and show whether both followers got every flow; the unpaced row pushes as fast as the
// loop allows, so followers fall a ring behind and get LostEvents (counted, never silent).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { FLOWS } from '../src/flow/testing/flows.ts';
import type { Flow } from '../src/flow/types.ts';
import { hubbleType } from '../src/observe/hubble/schema.ts';
import { startHubbleServer } from '../src/observe/hubble/server.ts';
import { FlowRing, HUBBLE_EVENT_BUFFER_CAPACITY } from '../src/observe/sink.ts';
import { median, table } from './lib.ts';

const N = 40_000;
const BATCH = 256;
const RUNS = 3;
const TIMEOUT_MS = 15_000;

const templates = Object.values(FLOWS);
function flows(n: number): Flow[] {
  return Array.from({ length: n }, (_, i) => ({
    ...templates[i % templates.length]!,
    uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  }));
}

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

async function ringOnly(fs: Flow[]): Promise<number> {
  const ring = new FlowRing(HUBBLE_EVENT_BUFFER_CAPACITY);
  const t0 = performance.now();
  for (let i = 0; i < fs.length; i++) {
    const f = fs[i]!;
    ring.push({ flow: f, node_name: 'node-1', time: f.time });
    if ((i + 1) % BATCH === 0) await yieldLoop();
  }
  return fs.length / ((performance.now() - t0) / 1000);
}

interface Follower {
  flows: number;
  lost: number;
  call: grpc.ClientReadableStream<Buffer>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Pushes `fs` at `rate` flows/s (0 = as fast as the loop allows, yielding every BATCH). */
async function throughServer(
  fs: Flow[],
  rate: number,
): Promise<{ rate: number; lost: number[]; delivered: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-hubble-bench-'));
  const ring = new FlowRing(HUBBLE_EVENT_BUFFER_CAPACITY);
  const server = await startHubbleServer(
    { ring, nodeName: 'node-1' },
    { unixSocket: join(dir, 'hubble.sock') },
  );
  const Res = hubbleType('observer.GetFlowsResponse');
  const Req = hubbleType('observer.GetFlowsRequest');
  const client = new grpc.Client(`unix://${server.unixSocket}`, grpc.credentials.createInsecure());
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
      await new Promise((r) => setTimeout(r, 5));
    }
    const t0 = performance.now();
    for (let i = 0; i < fs.length; i++) {
      const f = fs[i]!;
      ring.push({ flow: f, node_name: 'node-1', time: f.time });
      if ((i + 1) % BATCH === 0) {
        if (rate === 0) await yieldLoop();
        else {
          const due = t0 + ((i + 1) / rate) * 1000 - performance.now();
          await (due > 0 ? sleep(due) : yieldLoop());
        }
      }
    }
    while (followers.some((fo) => fo.flows + fo.lost < fs.length)) {
      if (Date.now() > deadline)
        throw new Error(`timed out: ${followers.map((f) => f.flows + f.lost).join(', ')}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    const s = (performance.now() - t0) / 1000;
    for (const fo of followers) fo.call.cancel();
    // delivered flows per second, per follower (the slower one)
    return {
      rate: Math.min(...followers.map((f) => f.flows)) / s,
      lost: followers.map((f) => f.lost),
      delivered: followers.map((f) => f.flows),
    };
  } finally {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const RATES = [5_000, 10_000, 20_000, 50_000, 0];
/** About two seconds of flows at each offered rate (bounded run time), N unpaced. */
const countAt = (rate: number): number => (rate === 0 ? N : Math.min(N, rate * 2));

export default async function run(): Promise<void> {
  const fs = flows(N);
  await ringOnly(fs.slice(0, 5000)); // warm-up
  await throughServer(fs.slice(0, 5000), 0);
  const base: number[] = [];
  const byRate = new Map<number, { rate: number; lost: number[]; delivered: number[] }[]>(
    RATES.map((r) => [r, []]),
  );
  for (let r = 0; r < RUNS; r++) {
    base.push(await ringOnly(fs));
    for (const rate of RATES) byRate.get(rate)!.push(await throughServer(fs.slice(0, countAt(rate)), rate));
  }
  const b = median(base);
  const rows = RATES.map((rate) => {
    const xs = byRate.get(rate)!;
    const got = median(xs.map((x) => x.rate));
    return [
      rate === 0
        ? `ring → 2 followers, unpaced (${N.toLocaleString('en')})`
        : `ring → 2 followers, offered ${rate.toLocaleString('en')}/s (${countAt(rate).toLocaleString('en')})`,
      Math.round(got).toLocaleString('en'),
      `1/${Math.round(b / got).toLocaleString('en')}`,
      xs.map((x) => x.lost.join('+')).join(', '),
    ];
  });
  process.stdout.write(
    `${table([
      ['variant', 'delivered flows/s', 'vs ring alone', 'lost per follower (each run)'],
      ['ring alone (baseline, pushes/s)', Math.round(b).toLocaleString('en'), '1', '-'],
      ...rows,
    ])}\n`,
  );
  process.stdout.write(
    `\nflows per run in parentheses, ${RUNS} runs, ring capacity ${HUBBLE_EVENT_BUFFER_CAPACITY}, unix socket, followers in-process (one core).\n`,
  );
}
