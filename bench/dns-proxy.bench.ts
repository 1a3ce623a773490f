// DNS proxy throughput and added latency, against a baseline measured in the same run: the same
// Node load generator straight to the DNS server. The server is dnsmasq on a loopback port when
// installed (answering from --host-record), else the tests' tiny dns-packet server. Loopback only,
// well under 2 minutes. The proxy runs in a child process of its own (as in the agent: not on the
// load generator's event loop), with an onAnswer that resolves at once. Two proxies: one sending
// its flow records as the node's does (JSON lines on stdout, read and parsed by a process of its
// own as the agent would), one without a flow consumer (the figure earlier runs reported); and a
// node:dgram relay that forwards bytes by DNS id, nothing parsed, judged or recorded (the floor).
//   - queries/s: closed loop, 64 queries outstanding, rounds interleaved (direct, records on, no
//     records, …), medians and each round's ratio.
//   - latency at 1,000 queries/s: open loop, one query per millisecond, p50/p99, proxy (records on)
//     minus direct.
//   - answer-to-allowed (root only): a live node with the agent's three proxies (http, kafka, dns),
//     new names one at a time, each answer held by the proxy until the kernel allows its address;
//     against the same names again (nothing to learn).
// SEAWALL_BENCH_DNS=throughput or =live runs one half only. BENCH_BASELINE=DIR adds DIR's two proxies
// (its bench child and its record reader) to the same interleaved rounds, and its latency run.
// BENCH_PIN=1 runs the throughput part a second time pinned (see PIN), after the unpinned one.
// BENCH_DNS_CASES=N: N spellings of the name, cycled (see CASES; 8192: no query is a repeat).

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { DNS_PROXY_NODE_FLAGS } from '../src/proxy/dns/node-flags.ts';
import { DNSProxy } from '../src/proxy/dns/proxy.ts';
import { query, startUpstream } from '../src/proxy/dns/testing/upstream.ts';
import { fmtRatio, median, table } from './lib.ts';

/**
 * BENCH_PIN=1: the throughput part runs twice, not pinned and then pinned: the node's side (every
 * proxy child and its record reader) on CPU 1, the load generator (this process) and dnsmasq on
 * CPU 0, for direct and proxied rounds alike (the baseline's proxies too).
 */
const PIN = process.env.BENCH_PIN === '1' && availableParallelism() >= 2;
/**
 * The CPUs this process had before any pinning, read once: availableParallelism() follows this
 * process's own affinity, so once pinned to CPU 0 it says 1, and "back to every CPU" computed
 * from it left the bench on CPU 0, with every process it started after (the live node of the
 * answer-to-allowed part: its p99 measured 8.6-11.9 ms so, 4.7-5.6 ms on both CPUs).
 */
const START_CPUS = PIN
  ? execFileSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .at(-1)!
  : '';
/** Pins a process and its threads to one CPU, or back to the CPUs it started with (cpu undefined). */
function pin(pid: number | undefined, cpu: number | undefined): void {
  if (pid === undefined) return;
  const cpus = cpu === undefined ? START_CPUS : String(cpu);
  execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
}

/**
 * BENCH_DNS_CASES=N: the generator cycles through N spellings of the one name (0x20 case mixing:
 * api.example.com, Api.example.com, …, up to 8,192), the same name to every rule and server, but
 * other bytes on the wire: with more spellings than the DNS wire memo keeps (4,096), no query or
 * answer is ever a repeat (the proxy's worst case). 1 (the default): one spelling, every query a
 * repeat. Direct, proxy and baseline get the same queries.
 */
const CASES = Math.min(8192, Math.max(1, Number(process.env.BENCH_DNS_CASES ?? 1) || 1));
const SPELLINGS = Array.from({ length: CASES }, (_, i) => {
  let k = 0;
  return 'api.example.com'.replace(/[a-z]/g, (c) => ((i >> k++) & 1 ? c.toUpperCase() : c));
});

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

async function startServer(): Promise<{
  port: number;
  label: string;
  pid?: number | undefined;
  stop: () => Promise<void>;
}> {
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
      pid: child.pid,
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
  private spelling = 0;
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
      const name = SPELLINGS[this.spelling]!;
      this.spelling = (this.spelling + 1) % SPELLINGS.length;
      this.sock.send(query(name, 'A', id), this.port, '127.0.0.1');
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
const RECORDS_ENV = 'SEAWALL_BENCH_DNS_PROXY_RECORDS';

/**
 * In the child: a proxy to the server on the given port; prints its port, then stats on stdin's
 * end. With records, each query's two flow records go to stdout as the node's proxy sends them
 * (process.ts and records.ts: compact messages written in 5 ms batches), read as the agent would.
 */
async function child(upstreamPort: number, records: boolean): Promise<void> {
  const pos = { file: 'bench', line: 1, column: 1 };
  const { DNS_FLOW_WINDOW_MS, FlowBatcher } = await import('../src/proxy/process.ts');
  // as the node's proxy: a bounded, non-blocking channel (process.ts), records as lines (records.ts)
  const flows = new FlowBatcher(
    { write: (text) => void process.stdout.write(text), pending: () => process.stdout.writableLength },
    256,
    undefined,
    DNS_FLOW_WINDOW_MS,
  );
  const labels = { client: ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=b'] };
  // the mirror's peer objects: the same ones query after query until a policy change (main.ts)
  const clientFlow = {
    ID: 12,
    identity: 1000,
    labels: labels.client,
    cluster_name: 'default',
    namespace: 'b',
    pod_name: 'client',
  };
  const serverFlow = {
    ID: 13,
    identity: 1001,
    labels: ['k8s:io.kubernetes.pod.namespace=b', 'k8s:k8s-app=kube-dns'],
    cluster_name: 'default',
    namespace: 'b',
    pod_name: 'coredns',
  };
  const rules = [{ pos, matchName: 'api.example.com' }];
  const proxy = new DNSProxy({
    resolveRedirect: () => ({
      endpoint: { key: 'b/client', identity: 1000, flow: clientFlow },
      server: { ip: '127.0.0.1', port: upstreamPort, identity: 1001, flow: serverFlow },
      rules,
    }),
    onAnswer: () => {},
    ...(records ? { onFlowLine: (line: string) => flows.pushLine(line) } : {}),
  });
  flows.onLost(() => proxy.recordsLost());
  await proxy.start();
  const cpu0 = process.cpuUsage();
  process.stdout.write(`${proxy.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', async () => {
    flows.flush();
    const dropped = Object.values(proxy.stats.dropped).reduce((a, b) => a + (b ?? 0), 0);
    // CPU per query: less at the mercy of the machine's load than queries/s
    const cpu = process.cpuUsage(cpu0);
    const perQuery = (cpu.user + cpu.system) / Math.max(1, proxy.stats.answered);
    process.stdout.write(
      `\nproxy (records ${records ? 'on' : 'off'}): ${proxy.stats.answered} answered, ${perQuery.toFixed(1)} µs CPU per query, ${proxy.stats.learned} handed to onAnswer, ${dropped} dropped, ${proxy.stats.upstreamTimeouts} upstream timeouts, ${flows.lost} records lost to a full channel, ${(flows.written / Math.max(1, flows.writes)).toFixed(1)} records per write\n`,
    );
    await proxy.close();
    process.exit(0);
  });
}

if (process.env[CHILD_ENV] !== undefined)
  await child(Number(process.env[CHILD_ENV]), process.env[RECORDS_ENV] === '1');

const RELAY_ENV = 'SEAWALL_BENCH_DNS_RELAY_UPSTREAM';

/**
 * In the child: the floor of any DNS proxy on node:dgram: each query's bytes to the server and the
 * answer's back to whoever sent that id, nothing parsed, judged or recorded. Its two receives and
 * two sends per query are what every proxy in between adds to the direct path's four.
 */
async function relay(upstreamPort: number): Promise<void> {
  const clients = new Map<number, { port: number; address: string }>();
  const front = dgram.createSocket('udp4');
  const back = dgram.createSocket('udp4');
  front.on('message', (m, r) => {
    if (m.length < 12) return;
    clients.set(m.readUInt16BE(0), { port: r.port, address: r.address });
    back.send(m, upstreamPort, '127.0.0.1');
  });
  back.on('message', (m) => {
    const c = m.length < 12 ? undefined : clients.get(m.readUInt16BE(0));
    if (c !== undefined) front.send(m, c.port, c.address);
  });
  await new Promise<void>((r) => back.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()));
  process.stdout.write(`${front.address().port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

if (process.env[RELAY_ENV] !== undefined) await relay(Number(process.env[RELAY_ENV]));

/** The relay child (relay()): the floor beside the proxies, on the node's side when pinned. */
async function startRelayChild(
  upstreamPort: number,
): Promise<{ port: number; pids: Array<number | undefined>; stop: () => Promise<string> }> {
  const c = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/dns-proxy.bench.ts')], {
    env: { ...process.env, [RELAY_ENV]: String(upstreamPort) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const { port } = await portLine(c.stdout!, 'relay child');
  return {
    port,
    pids: [c.pid],
    stop: async () => {
      const done = new Promise<void>((r) => c.once('exit', () => r()));
      c.stdin!.end();
      await done;
      return '';
    },
  };
}

/** SEAWALL_BENCH_DNS_CHILD_ARGS: node flags for the proxy child besides the agent's (e.g. --cpu-prof). */
const childArgs = (process.env.SEAWALL_BENCH_DNS_CHILD_ARGS ?? '').split(' ').filter((a) => a !== '');

/**
 * Reads the proxy child's stdout as the agent reads a proxy's records (agent/proxy.ts: lineDecoder,
 * the DNS proxy's compact records expanded into Flows by DNSFlowExpander), in a process of its own
 * as the agent is: not on the load generator's event loop. Lines that are not messages (the port,
 * the stats) are passed on; at the end, how many records it made and its CPU per record.
 */
const readerSource = (root: string) => `
import { lineDecoder } from ${JSON.stringify(join(root, 'src/proxy/ipc.ts'))};
import { DNSFlowExpander } from ${JSON.stringify(join(root, 'src/proxy/dns/compact.ts'))};
const dns = new DNSFlowExpander();
let flows = 0, cpu0;
process.stdin.on('data', lineDecoder((m) => {
  if (typeof m !== 'object' || m === null) return void process.stdout.write(m + '\\n'); // the port
  cpu0 ??= process.cpuUsage();
  if (m.type === 'flow') flows++;
  else if (m.type === 'dns-shape') dns.shape(m);
  else if (m.type === 'dns-flow' && dns.flow(m) !== undefined) flows++;
}, (line) => process.stdout.write(line + '\\n')));
process.stdin.on('end', () => {
  const c = process.cpuUsage(cpu0);
  process.stdout.write(flows + ' flow records made by the reader (' + (flows ? ((c.user + c.system) / flows).toFixed(1) : '-') + ' µs CPU each), ' + dns.unknown + ' of unknown shape\\n');
});`;

/** A child's first line, its port (10 s at most), and all it has printed so far (out()). */
async function portLine(
  stdout: NodeJS.ReadableStream,
  what: string,
): Promise<{ port: number; out: () => string }> {
  let text = '';
  stdout.on('data', (d: Buffer) => {
    text += d.toString();
  });
  for (let i = 0; i < 200 && !text.includes('\n'); i++) await new Promise((r) => setTimeout(r, 50));
  const port = Number(text.split('\n')[0]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`${what} did not start: ${text}`);
  return { port, out: () => text };
}

/** This checkout's root. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * A proxy child and its record reader, from the checkout at `root` (this one, or BENCH_BASELINE's:
 * its bench/dns-proxy.bench.ts child and its reader's ipc.ts and compact.ts, so that each proxy's
 * records are read by its own agent code).
 */
async function startProxyChild(
  upstreamPort: number,
  records: boolean,
  root = ROOT,
): Promise<{ port: number; pids: Array<number | undefined>; stop: () => Promise<string> }> {
  const reader = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', readerSource(root)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      cwd: root,
    },
  );
  const c = spawn(
    process.execPath,
    [...DNS_PROXY_NODE_FLAGS, ...childArgs, '--import', 'tsx', join(root, 'bench/dns-proxy.bench.ts')],
    {
      env: { ...process.env, [CHILD_ENV]: String(upstreamPort), [RECORDS_ENV]: records ? '1' : '0' },
      stdio: ['pipe', reader.stdin!, 'inherit'],
      cwd: root,
    },
  );
  reader.stdin!.destroy(); // the child holds the pipe now
  const { port, out } = await portLine(reader.stdout!, 'proxy child');
  return {
    port,
    pids: [c.pid, reader.pid],
    stop: async () => {
      const done = new Promise<void>((r) => reader.once('exit', () => r()));
      c.stdin!.end();
      await done;
      return out().split('\n').slice(1).join(' ').trim();
    },
  };
}

export default async function run(): Promise<void> {
  const only = process.env.SEAWALL_BENCH_DNS;
  if (only !== 'live') {
    await throughput(false);
    if (PIN) await throughput(true);
  }
  if (only !== 'throughput') await liveAnswerToAllowed();
}

async function throughput(pinned: boolean): Promise<void> {
  const server = await startServer();
  const nodeSide: Array<number | undefined> = [];
  // BENCH_BASELINE=DIR: the same two proxies from another checkout, in the same rounds
  const baseDir = process.env.BENCH_BASELINE;
  const paths: Array<{ label: string; port: number; stop?: () => Promise<string> }> = [
    { label: 'direct', port: server.port },
  ];
  const add = async (label: string, records: boolean, root?: string) => {
    const c = await startProxyChild(server.port, records, root);
    nodeSide.push(...c.pids);
    paths.push({ label, port: c.port, stop: c.stop });
  };
  const stats: string[] = [];
  try {
    await add('through the proxy, flow records on (as in the node)', true);
    await add('through the proxy, no flow consumer', false);
    if (baseDir !== undefined) {
      await add(`baseline (${baseDir}), flow records on`, true, baseDir);
      await add(`baseline (${baseDir}), no flow consumer`, false, baseDir);
    }
    const floor = await startRelayChild(server.port);
    nodeSide.push(...floor.pids);
    paths.push({ label: 'node:dgram relay, no policy (floor)', port: floor.port, stop: floor.stop });
    if (pinned) {
      pin(process.pid, 0);
      pin(server.pid, 0);
      for (const pid of nodeSide) pin(pid, 1);
    }
    for (const p of paths) await closedLoop(p.port); // warm-up
    const rounds: number[][] = paths.map(() => []);
    const load = loadavg()[0]!;
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < paths.length; i++) rounds[i]!.push(await closedLoop(paths[i]!.port));
    }
    const direct = rounds[0]!;
    const d = median(direct);
    const ld = await openLoop(server.port);
    const lp = await openLoop(paths[1]!.port);
    const lb = baseDir !== undefined ? await openLoop(paths[3]!.port) : undefined;
    const ratios = (xs: number[]) => xs.map((x, i) => fmtRatio(x / direct[i]!)).join(' ');
    process.stdout.write(
      `server: ${server.label}; ${OUTSTANDING} outstanding, ${ROUNDS} rounds of ${ROUND_MS} ms, interleaved; ${CASES === 1 ? 'one spelling of the name' : `${CASES} spellings of the name cycled (no repeats the wire memo keeps)`}; load ${load.toFixed(1)}, ${pinned ? 'pinned: proxies and their record readers on CPU 1, load generator and server on CPU 0' : `not pinned (${availableParallelism()} cores shared)`}${baseDir !== undefined ? `; baseline ${baseDir} in the same rounds` : ''}\n\n`,
    );
    process.stdout.write(
      `${table([
        ['path', 'queries/s (median)', 'ratio', 'per round'],
        ...paths.map((p, i) => {
          const m = median(rounds[i]!);
          return [p.label, m.toFixed(0), fmtRatio(m / d), i === 0 ? '' : ratios(rounds[i]!)];
        }),
      ])}\n\n`,
    );
    const latency = (label: string, l: typeof ld) => [
      label,
      l.p50.toFixed(3),
      l.p99.toFixed(3),
      String(l.lost),
    ];
    process.stdout.write(
      `${table([
        ['at 1,000 queries/s (records on)', 'p50 ms', 'p99 ms', 'lost'],
        latency('direct', ld),
        latency('through the proxy', lp),
        ['added by the proxy', (lp.p50 - ld.p50).toFixed(3), (lp.p99 - ld.p99).toFixed(3), ''],
        ...(lb !== undefined
          ? [
              latency('through the baseline proxy', lb),
              ['added by the baseline proxy', (lb.p50 - ld.p50).toFixed(3), (lb.p99 - ld.p99).toFixed(3), ''],
            ]
          : []),
      ])}\n`,
    );
  } finally {
    if (pinned) pin(process.pid, undefined);
    for (const p of paths) {
      const st = p.stop === undefined ? '' : await p.stop();
      if (st !== '') stats.push(`${p.label}: ${st}`);
    }
    await server.stop();
  }
  process.stdout.write(`\n${stats.join('\n')}\n`);
}

// ---------------------------------------------------------------- live: answer → allowed

/**
 * SEAWALL_BENCH_DNS_NAMES: new names per live run (500 by default: with 100, "p99" was the slowest
 * answer of the run, the cold first one included).
 */
const LIVE_NAMES = Number(process.env.SEAWALL_BENCH_DNS_NAMES ?? 500);

/** In the client pod: one query at a time to the DNS server; prints each latency (ms). */
const QUERY_LOOP = `
const dgram = require('node:dgram');
const [server, names] = [process.argv[1], process.argv[2].split(',')];
const s = dgram.createSocket('udp4');
let id = 1;
function q(name) {
  const labels = name.split('.');
  const parts = [Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0])];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  id++;
  return Buffer.concat(parts);
}
(async () => {
  const out = [];
  for (const n of names) {
    const t0 = performance.now();
    await new Promise((res) => {
      const t = setTimeout(res, 2000);
      s.once('message', () => { clearTimeout(t); res(); });
      s.send(q(n), 53, server);
    });
    out.push((performance.now() - t0).toFixed(3));
  }
  process.stdout.write(out.join(',') + '\\n');
  process.exit(0);
})();`;

/**
 * A live node (root only): a client pod, dnsmasq in a kube-dns pod, toFQDNs on *.bench.example.
 * LIVE_NAMES new names, each answer held by the proxy until the kernel allows its address; then
 * the same names again (nothing to learn): the difference is what the kernel wait adds.
 */
async function liveAnswerToAllowed(): Promise<void> {
  const { liveUnavailable } = await import('../src/datapath/preflight.ts');
  const why = liveUnavailable(['ip', 'nft', 'dnsmasq']);
  if (why !== undefined) {
    process.stdout.write(`\nanswer-to-allowed (live) skipped: ${why}\n`);
    return;
  }
  const { FQDNComponent, dnsComponents } = await import('../src/agent/fqdn.ts');
  const { NodeRuntime } = await import('../src/agent/runtime.ts');
  const { delNetns, netnsExists } = await import('../src/datapath/netns.ts');
  const { defaultEngineFactory } = await import('../src/policy/default-engine.ts');
  const { loadPolicyText } = await import('../src/policy-api/load.ts');
  const { startDNSServer } = await import('../src/testbed/dns-server.ts');
  const engine = defaultEngineFactory({});
  engine.upsertNamespace('b', {});
  const policy = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: bench, namespace: b }
spec:
  endpointSelector: { matchLabels: { app: client } }
  egress:
  - toEndpoints: [{ matchLabels: { k8s-app: kube-dns } }]
    toPorts: [{ ports: [{ port: "53", protocol: UDP }], rules: { dns: [{ matchPattern: "*" }] } }]
  - toFQDNs: [{ matchPattern: "*.bench.example" }]
    toPorts: [{ ports: [{ port: "443", protocol: TCP }] }]
`;
  for (const p of loadPolicyText('bench.yaml', policy, { lint: false }).policies) engine.upsertPolicy(p);
  const fqdn = new FQDNComponent({ cacheFile: false });
  const node = `seawall-bdns${process.pid % 100000}`;
  const { ProxyComponent } = await import('../src/agent/proxy.ts');
  // the agent's three proxies (agent.ts): each FQDN sync reaches all of them
  const rt = new NodeRuntime({
    engine,
    node,
    flows: false,
    components: [
      new ProxyComponent({ parser: 'http' }),
      new ProxyComponent({ parser: 'kafka' }),
      ...dnsComponents(fqdn, () => {}),
    ],
  });
  const names = Array.from({ length: LIVE_NAMES }, (_, i) => `n${i}.bench.example`);
  let server: { stop(): Promise<void> } | undefined;
  try {
    await rt.start({
      pods: [
        { name: 'client', namespace: 'b', labels: { app: 'client' }, ip: '10.77.0.1' },
        { name: 'coredns', namespace: 'b', labels: { 'k8s-app': 'kube-dns' }, ip: '10.77.0.2' },
      ],
    });
    const clientNs = rt.datapath.live({ kind: 'endpoint', namespace: 'b', name: 'client' })!.ns;
    const dnsNs = rt.datapath.live({ kind: 'endpoint', namespace: 'b', name: 'coredns' })!.ns;
    server = await startDNSServer(
      dnsNs,
      '10.77.0.2',
      names.map((n, i) => ({ name: n, ips: [`10.78.${i >> 7}.${(i & 127) + 1}`], ttl: 300 })),
    );
    const inOrder: number[][] = [];
    const loop = async (): Promise<number[]> => {
      const c = spawn(
        'ip',
        ['netns', 'exec', clientNs, process.execPath, '-e', QUERY_LOOP, '10.77.0.2', names.join(',')],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise((r) => c.once('exit', r));
      const times = out.trim().split(',').map(Number);
      inOrder.push(times);
      return [...times].sort((a, b) => a - b);
    };
    const learning = await loop();
    const cached = await loop();
    const firsts = inOrder.map((t) => t[0] ?? Number.NaN);
    // Per name, its first query less its second: what learning added to that query as its client
    // saw it, the proxy's hops to the agent and back included (a p99 of differences, not a
    // difference of p99s).
    const [first = [], second = []] = inOrder;
    const added = first.map((t, i) => t - (second[i] ?? Number.NaN)).sort((a, b) => a - b);
    const pct = (xs: number[], p: number) =>
      xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))] ?? Number.NaN;
    const st = fqdn.status();
    process.stdout.write(
      `\nanswer-to-allowed (live node, ${LIVE_NAMES} new names, one at a time, load ${loadavg()[0]!.toFixed(1)}):\n\n${table(
        [
          ['', 'p50 ms', 'p99 ms'],
          [
            'query, new name (answer held until the kernel allows)',
            pct(learning, 50).toFixed(2),
            pct(learning, 99).toFixed(2),
          ],
          [
            'query, same name again (nothing to learn)',
            pct(cached, 50).toFixed(2),
            pct(cached, 99).toFixed(2),
          ],
          [
            'added to the query by learning (per name: new less again)',
            pct(added, 50).toFixed(2),
            pct(added, 99).toFixed(2),
          ],
          [
            'proxy has the answer → kernel allows (hop to the agent included)',
            st.answerToKernelMs.p50.toFixed(2),
            st.answerToKernelMs.p99.toFixed(2),
          ],
          [
            'agent: answer received → kernel and proxies allow',
            st.answerToAllowedMs.p50.toFixed(2),
            st.answerToAllowedMs.p99.toFixed(2),
          ],
          [
            'of which the nft delta (compile + transaction)',
            st.kernelDeltaMs.p50.toFixed(2),
            st.kernelDeltaMs.p99.toFixed(2),
          ],
        ],
      )}\n`,
    );
    process.stdout.write(
      `\nfirst query of the run (new name): ${firsts[0]?.toFixed(2)} ms; slowest new name: ${learning.at(-1)?.toFixed(2)} ms; ` +
        `answers released past the 100 ms cap (proxy_datapath_update_timeout_total): ${st.datapathUpdateTimeouts ?? 'n/a'}; ` +
        `${st.applied} answers with new addresses in ${st.syncs ?? st.applied} kernel deltas\n`,
    );
  } finally {
    await server?.stop().catch(() => {});
    await rt.stop().catch(() => {});
    for (const h of rt.datapath.topo.records) await delNetns(h.ns).catch(() => {});
    if (netnsExists(node)) await delNetns(node).catch(() => {});
  }
}
