// DNS proxy throughput and added latency, against a baseline measured in the same run: the same
// Node load generator straight to the DNS server. The server is dnsmasq on a loopback port when
// installed (answering from --host-record), else the tests' tiny dns-packet server. Loopback only,
// well under 2 minutes. The proxy runs in a child process of its own (as in the agent: not on the
// load generator's event loop), with an onAnswer that resolves at once.
//   - queries/s: closed loop, 64 queries outstanding, rounds interleaved (direct, proxy, …), medians.
//   - latency at 1,000 queries/s: open loop, one query per millisecond, p50/p99, proxy minus direct.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DNSProxy } from '../src/proxy/dns/proxy.ts';
import { query, startUpstream } from '../src/proxy/dns/testing/upstream.ts';
import { fmtRatio, median, table } from './lib.ts';

const ROUNDS = 3;
const ROUND_MS = 2000;
const OUTSTANDING = 64;
const RATE_MS = 3000;

async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function startServer(): Promise<{ port: number; label: string; stop: () => Promise<void> }> {
  if (spawnSync('sh', ['-c', 'command -v dnsmasq']).status === 0) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      'dnsmasq',
      [
        '--no-daemon',
        `--port=${port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        '--conf-file=/dev/null',
        '--pid-file=',
        '--dns-forward-max=1000',
        '--host-record=api.example.com,203.0.113.10',
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 300));
    return {
      port,
      label: 'dnsmasq',
      stop: async () => {
        child.kill('SIGTERM');
      },
    };
  }
  const up = await startUpstream({
    'api.example.com': { answers: [{ type: 'A', name: 'api.example.com', ttl: 30, data: '203.0.113.10' }] },
  });
  return { port: up.port, label: 'dns-packet test server', stop: () => up.close() };
}

/** A client socket that matches answers to queries by id. */
class Client {
  private readonly sock = dgram.createSocket('udp4');
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private nextId = 1;
  constructor(private readonly port: number) {
    this.sock.on('message', (m) => {
      const id = m.readUInt16BE(0);
      const w = this.waiting.get(id);
      if (w) {
        this.waiting.delete(id);
        w(true);
      }
    });
  }
  async ready(): Promise<void> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', () => r()));
  }
  ask(timeoutMs = 1000): Promise<boolean> {
    const id = this.nextId;
    this.nextId = (this.nextId % 65535) + 1;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        resolve(false);
      }, timeoutMs);
      this.waiting.set(id, (ok) => {
        clearTimeout(t);
        resolve(ok);
      });
      this.sock.send(query('api.example.com', 'A', id), this.port, '127.0.0.1');
    });
  }
  close(): void {
    this.sock.close();
  }
}

async function closedLoop(port: number): Promise<number> {
  const c = new Client(port);
  await c.ready();
  let answered = 0;
  const end = performance.now() + ROUND_MS;
  const worker = async () => {
    while (performance.now() < end) if (await c.ask()) answered++;
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: OUTSTANDING }, worker));
  const s = (performance.now() - t0) / 1000;
  c.close();
  return answered / s;
}

async function openLoop(port: number): Promise<{ p50: number; p99: number; lost: number }> {
  const c = new Client(port);
  await c.ready();
  const lat: number[] = [];
  const pending: Promise<void>[] = [];
  let lost = 0;
  const t0 = performance.now();
  for (let i = 0; i < RATE_MS; i++) {
    const due = t0 + i;
    while (performance.now() < due) await new Promise((r) => setImmediate(r));
    const sent = performance.now();
    pending.push(
      c.ask().then((ok) => {
        if (ok) lat.push(performance.now() - sent);
        else lost++;
      }),
    );
  }
  await Promise.all(pending);
  c.close();
  lat.sort((a, b) => a - b);
  return {
    p50: lat[Math.floor(lat.length * 0.5)] ?? Number.NaN,
    p99: lat[Math.floor(lat.length * 0.99)] ?? Number.NaN,
    lost,
  };
}

const CHILD_ENV = 'SEAWALL_BENCH_DNS_PROXY_UPSTREAM';

/** In the child: a proxy to the server on the given port; prints its port, then stats on stdin's end. */
async function child(upstreamPort: number): Promise<void> {
  const pos = { file: 'bench', line: 1, column: 1 };
  const proxy = new DNSProxy({
    resolveRedirect: () => ({
      endpoint: { key: 'bench/client', identity: 1000 },
      server: { ip: '127.0.0.1', port: upstreamPort },
      rules: [{ pos, matchName: 'api.example.com' }],
    }),
    onAnswer: () => {},
  });
  await proxy.start();
  process.stdout.write(`${proxy.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    const dropped = Object.values(proxy.stats.dropped).reduce((a, b) => a + (b ?? 0), 0);
    process.stdout.write(
      `proxy: ${proxy.stats.answered} answered, ${proxy.stats.learned} handed to onAnswer, ${dropped} dropped, ${proxy.stats.upstreamTimeouts} upstream timeouts\n`,
    );
    await proxy.close();
    process.exit(0);
  });
}

if (process.env[CHILD_ENV] !== undefined) await child(Number(process.env[CHILD_ENV]));

async function startProxyChild(upstreamPort: number): Promise<{ port: number; stop: () => Promise<string> }> {
  const c = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, [CHILD_ENV]: String(upstreamPort) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  c.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  for (let i = 0; i < 200 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
  const port = Number(out.split('\n')[0]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`proxy child did not start: ${out}`);
  return {
    port,
    stop: async () => {
      const done = new Promise<void>((r) => c.once('exit', () => r()));
      c.stdin!.end();
      await done;
      return out.split('\n').slice(1).join('\n');
    },
  };
}

export default async function run(): Promise<void> {
  const server = await startServer();
  const proxy = await startProxyChild(server.port);
  let stats = '';
  try {
    await closedLoop(server.port); // warm-up
    await closedLoop(proxy.port);
    const direct: number[] = [];
    const proxied: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      direct.push(await closedLoop(server.port));
      proxied.push(await closedLoop(proxy.port));
    }
    const d = median(direct);
    const p = median(proxied);
    const ld = await openLoop(server.port);
    const lp = await openLoop(proxy.port);
    process.stdout.write(
      `server: ${server.label}; ${OUTSTANDING} outstanding, ${ROUNDS} rounds of ${ROUND_MS} ms\n\n`,
    );
    process.stdout.write(
      `${table([
        ['path', 'queries/s (median)', 'ratio'],
        ['direct', d.toFixed(0), fmtRatio(1)],
        ['through the proxy', p.toFixed(0), fmtRatio(p / d)],
      ])}\n\n`,
    );
    process.stdout.write(
      `${table([
        ['at 1,000 queries/s', 'p50 ms', 'p99 ms', 'lost'],
        ['direct', ld.p50.toFixed(3), ld.p99.toFixed(3), String(ld.lost)],
        ['through the proxy', lp.p50.toFixed(3), lp.p99.toFixed(3), String(lp.lost)],
        ['added by the proxy', (lp.p50 - ld.p50).toFixed(3), (lp.p99 - ld.p99).toFixed(3), ''],
      ])}\n`,
    );
  } finally {
    stats = await proxy.stop();
    await server.stop();
  }
  process.stdout.write(`\n${stats}`);
}
