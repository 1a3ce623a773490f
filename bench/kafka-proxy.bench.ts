// The Kafka proxy's cost, against direct to the same test broker in the same run, on loopback:
//  - Produce requests/s (closed loop: 16 connections, one request in flight each, Produce v7
//    acks=1 to processed-events with a 1 KiB record batch) direct and through the proxy;
//  - added p50/p99 latency at half of the proxy's own maximum rate (paced), against direct at
//    the same rate.
// Broker (src/testbed/kafka-broker.ts, --quiet) and proxy (kafka-proxy.child.ts) run in child
// processes; the load generator is a raw-socket client in this process. Medians of interleaved
// rounds; about 50 s in all. The broker is the stand-in, so absolute rates say little: the
// ratio and the added latency are the figures.

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { FrameReader } from '../src/proxy/kafka/frames.ts';
import { encodeRequest } from '../src/proxy/kafka/protocol.ts';
import { fmtRatio, median, table } from './lib.ts';

const BROKER = new URL('../src/testbed/kafka-broker.ts', import.meta.url).pathname;
const CHILD = new URL('./kafka-proxy.child.ts', import.meta.url).pathname;
const CONNS = 16;
const WINDOW_MS = 2000;
const ROUNDS = 5;

function produce(corr: number): Buffer {
  return encodeRequest(
    { apiKey: 0, apiVersion: 7, correlationId: corr, clientID: 'bench' },
    {
      TransactionalId: null,
      Acks: 1,
      TimeoutMs: 1000,
      TopicData: [{ Name: 'processed-events', PartitionData: [{ Index: 0, Records: Buffer.alloc(1024) }] }],
    },
  );
}

async function start(
  cmd: string[],
  parse: (line: string) => number | undefined,
): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...cmd], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${cmd.join(' ')} did not start`)), 30_000);
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const p = parse(l);
      if (p !== undefined) {
        clearTimeout(t);
        resolve(p);
      }
    });
    proc.once('exit', (c) => reject(new Error(`${cmd.join(' ')} exited ${c}`)));
  });
  return { proc, port };
}

interface Conn {
  sock: net.Socket;
  reader: FrameReader;
  onAnswer?: () => void;
}

async function connect(port: number): Promise<Conn> {
  const sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((r, j) => {
    sock.once('connect', () => r());
    sock.once('error', j);
  });
  const c: Conn = { sock, reader: new FrameReader(1 << 26, 4) };
  sock.on('data', (d: Buffer) => {
    for (const _ of c.reader.push(d)) c.onAnswer?.();
  });
  return c;
}

/** Closed loop: every connection sends its next request when the previous is answered. */
async function closedLoop(port: number, ms: number): Promise<number> {
  const conns = await Promise.all(Array.from({ length: CONNS }, () => connect(port)));
  let n = 0;
  let corr = 0;
  const end = performance.now() + ms;
  await Promise.all(
    conns.map(
      (c) =>
        new Promise<void>((resolve) => {
          const next = () => {
            if (performance.now() >= end) return resolve();
            c.sock.write(produce(corr++));
          };
          c.onAnswer = () => {
            n++;
            next();
          };
          next();
        }),
    ),
  );
  for (const c of conns) c.sock.destroy();
  return (n * 1000) / ms;
}

/** Paced at `rate` requests/s over CONNS connections: each request's latency. */
async function paced(port: number, rate: number, ms: number): Promise<number[]> {
  const conns = await Promise.all(Array.from({ length: CONNS }, () => connect(port)));
  const lat: number[] = [];
  const pending = conns.map(() => [] as number[]);
  conns.forEach((c, i) => {
    c.onAnswer = () => {
      const t0 = pending[i]!.shift();
      if (t0 !== undefined) lat.push(performance.now() - t0);
    };
  });
  const interval = 1000 / rate;
  const t0 = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      if (now - t0 >= ms) return resolve();
      while (sent * interval <= now - t0) {
        const i = sent % CONNS;
        pending[i]!.push(performance.now());
        conns[i]!.sock.write(produce(sent));
        sent++;
      }
      setImmediate(tick);
    };
    tick();
  });
  await new Promise((r) => setTimeout(r, 200));
  for (const c of conns) c.sock.destroy();
  return lat;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

export default async function run(): Promise<void> {
  const load0 = loadavg()[0]!;
  const broker = await start([BROKER, '--address', '127.0.0.1', '--port', '0', '--quiet'], (l) =>
    l.startsWith('ready ') ? Number(l.slice(l.lastIndexOf(':') + 1)) : undefined,
  );
  const proxy = await start([CHILD, String(broker.port)], (l) => (JSON.parse(l) as { port: number }).port);
  try {
    // warm-up (JIT, connections, the topic)
    await closedLoop(broker.port, 500);
    await closedLoop(proxy.port, 500);
    const direct: number[] = [];
    const through: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      direct.push(await closedLoop(broker.port, WINDOW_MS));
      through.push(await closedLoop(proxy.port, WINDOW_MS));
    }
    const dRate = median(direct);
    const pRate = median(through);
    const rate = Math.max(50, Math.round(pRate / 2));
    const p50: Array<[number, number]> = [];
    const p99: Array<[number, number]> = [];
    for (let r = 0; r < ROUNDS; r++) {
      const d = await paced(broker.port, rate, WINDOW_MS);
      const p = await paced(proxy.port, rate, WINDOW_MS);
      p50.push([pct(d, 50), pct(p, 50)]);
      p99.push([pct(d, 99), pct(p, 99)]);
    }
    const m = (xs: Array<[number, number]>, i: 0 | 1) => median(xs.map((x) => x[i]));
    const ms = (x: number) => `${x.toFixed(2)} ms`;
    const added = (x: number) => `${x < 0 ? '-' : '+'}${ms(Math.abs(x))}`;
    process.stdout.write(
      `${table([
        ['measure', 'direct', 'through the proxy', 'ratio / added'],
        [
          'Produce v7 requests/s (16 conns, closed loop)',
          dRate.toFixed(0),
          pRate.toFixed(0),
          fmtRatio(pRate / dRate),
        ],
        [`p50 at ${rate}/s`, ms(m(p50, 0)), ms(m(p50, 1)), added(m(p50, 1) - m(p50, 0))],
        [`p99 at ${rate}/s`, ms(m(p99, 0)), ms(m(p99, 1)), added(m(p99, 1) - m(p99, 0))],
      ])}\n`,
    );
    process.stdout.write(
      `\nrounds: direct ${direct.map((x) => x.toFixed(0)).join(', ')}; proxy ${through.map((x) => x.toFixed(0)).join(', ')}` +
        `\nload average ${load0.toFixed(2)} → ${loadavg()[0]!.toFixed(2)} on ${availableParallelism()} cores (shared machine)\n`,
    );
  } finally {
    broker.proc.kill('SIGTERM');
    proxy.proc.kill('SIGTERM');
  }
}
