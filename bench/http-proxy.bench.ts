// The HTTP proxy's cost, each figure against baselines measured in the same run, on loopback:
//  - requests/s (closed loop, 32 keep-alive connections) direct to the upstream, through the
//    Seawall proxy with 1, 10 and 100 rules (the match is always the last rule), and through
//    haproxy (Debian, one thread) with the equivalent ACLs, and through a minimal node:http
//    reverse proxy without any policy (the floor of a proxy built on node:http);
//  - added p50/p99 latency at half of the proxy's own maximum rate (paced), against direct at
//    the same rate;
//  - the proxy process's CPU per 1,000 requests/s (process.cpuUsage in the proxy's process);
//    the Seawall proxy judges through the agent's policy mirror (main.ts) and encodes its
//    records as it does for the agent;
//  - gRPC unary calls/s through the proxy against direct.
// Upstream (haproxy answering 200 itself, or node:http), proxies and haproxy run in child processes; the load generator is a lean raw-socket
// client in this process. Medians of interleaved rounds; about 90 s in all.
// Knobs: BENCH_PARTS, BENCH_ROUNDS, BENCH_PIN=1; BENCH_RATE=N (the latency part alone, at N);
// BENCH_TRACE=1 (the proxies' event-loop delay, GC pauses and CPU per paced window);
// BENCH_NO_RECORDS=1 (a 1-rule proxy without flow records beside the plain one, paced);
// BENCH_PROF=DIR (CPU profiles); BENCH_HEAP_PROF=DIR (allocation profiles); BENCH_ALT_FLAGS (an A/B of node flags); BENCH_BASELINE=DIR (a
// proxy from another checkout beside this one); BENCH_QUIESCE=0 (the other proxies keep running
// during a target's window; by default they are stopped, see QUIESCE); BENCH_UPSTREAM=node (a
// node:http upstream in place of haproxy's, see upstreamConfig).

import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { HTTP_PROXY_NODE_FLAGS } from '../src/proxy/http/node-flags.ts';
import { benchRules, benchService } from './http-proxy.shared.ts';
import { fmtRatio, median, table } from './lib.ts';

const CHILD = new URL('./http-proxy.child.ts', import.meta.url).pathname;
const CONNS = 32;
const WINDOW_MS = 1500;
/** BENCH_PARTS=http,latency,grpc (default all): the parts to run. */
const PARTS = new Set((process.env.BENCH_PARTS ?? 'http,latency,grpc').split(','));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** BENCH_UPSTREAM=node|haproxy (default haproxy where installed): the HTTP upstream server. */
const UPSTREAM = process.env.BENCH_UPSTREAM === 'node' ? 'node' : 'haproxy';
const FIXED_RATE = process.env.BENCH_RATE === undefined ? undefined : Number(process.env.BENCH_RATE);
/** BENCH_TRACE=1: the proxies report their event-loop delay and GC pauses per paced window. */
const TRACE = process.env.BENCH_TRACE === '1';
const REQUEST = Buffer.from('GET /public/item?id=1 HTTP/1.1\r\nHost: shop\r\n\r\n');
let uniq = 0;
/** A path never asked before: the proxy's decision memo cannot answer it. */
const uniqueRequest = () => Buffer.from(`GET /public/item?id=${uniq++} HTTP/1.1\r\nHost: shop\r\n\r\n`);

interface Child {
  proc: ChildProcess;
  port: number;
}

/** Seawall proxies run with the agent's node flags unless `flags` replaces them. */
async function startChild(
  args: string[],
  flags?: readonly string[],
  child?: string,
  env?: Record<string, string>,
): Promise<Child> {
  const c = await startChildUnpinned(args, flags, child, env);
  pin(c.proc.pid, args[0] === 'upstream' || args[0] === 'grpc-upstream' ? 0 : 1);
  return c;
}

async function startChildUnpinned(
  args: string[],
  f?: readonly string[],
  child = CHILD,
  env?: Record<string, string>,
): Promise<Child> {
  const flags = f ?? (args[0] === 'proxy' ? HTTP_PROXY_NODE_FLAGS : []);
  // BENCH_PROF=DIR: a CPU profile of every Seawall proxy child, written to DIR when it ends.
  const prof =
    process.env.BENCH_PROF !== undefined && args[0] === 'proxy'
      ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF]
      : [];
  const proc = fork(child, args, {
    execArgv: ['--import', 'tsx', ...prof, ...flags],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    ...(env === undefined ? {} : { env: { ...process.env, ...env } }),
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`child ${args.join(' ')} did not start`)), 20_000);
    createInterface({ input: proc.stdout! }).once('line', (l) => {
      clearTimeout(t);
      resolve((JSON.parse(l) as { port: number }).port);
    });
    proc.once('exit', (c) => reject(new Error(`child ${args.join(' ')} exited ${c}`)));
  });
  return { proc, port };
}

interface Trace {
  userS: number;
  systemS: number;
  eldP50Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  eldOver5Ms: number;
  involuntarySwitches: number;
  voluntarySwitches: number;
  gc: Record<string, { n: number; totalMs: number; maxMs: number }>;
  /** Between its previous window and this one (the others' windows): its CPU and GC pauses. */
  idle?: { cpuMs: number; gcN: number; gcMs: number; gcMaxMs: number };
}

/** An IPC question to a node child and its answer (the children answer in order). */
function ask(c: Child, m: string): Promise<unknown> {
  if (m === 'trace-reset') {
    c.proc.send(m);
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    c.proc.once('message', resolve);
    c.proc.send(m);
  });
}

/** CPU seconds a child has used: its own process.cpuUsage (node), or /proc (haproxy). */
function cpuOf(c: Child): Promise<number> {
  if (c.proc.send === undefined || !c.proc.connected) {
    // utime and stime, fields 14 and 15 of /proc/PID/stat, in clock ticks (100 per second).
    const stat = readFileSync(`/proc/${c.proc.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Promise.resolve((Number(f[11]) + Number(f[12])) / 100);
  }
  return new Promise((resolve) => {
    c.proc.once('message', (m) => {
      const u = (m as { cpu: NodeJS.CpuUsage }).cpu;
      resolve((u.user + u.system) / 1e6);
    });
    c.proc.send('cpu');
  });
}

/**
 * BENCH_PIN=1: every proxy (Seawall, node:http, haproxy) on CPU 1, the upstream and the load
 * generator on CPU 0, so the proxies compete with the same neighbours.
 */
const PIN = process.env.BENCH_PIN === '1' && availableParallelism() >= 2;
function pin(pid: number | undefined, cpu: number): void {
  if (!PIN || pid === undefined) return;
  execFileSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

/** The kernel's count of times it took the CPU from a process's main thread while it could run. */
function preemptions(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /nonvoluntary_ctxt_switches:\s*([0-9]+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

// What the machine alone does to a process on the proxies' core: a child that only reads the
// clock for `ms`, pinned there; every gap between two reads is time the kernel gave to another
// process (the other engineers' work on this shared machine, not anything of the bench).
const PROBE = `const ms=+process.argv[1];const g=[];let t=performance.now();const e=t+ms;
while(t<e){const n=performance.now();if(n-t>0.2)g.push(n-t);t=n}
process.stdout.write(JSON.stringify({stolen:g.reduce((a,b)=>a+b,0),over5:g.filter(x=>x>=5).length,max:Math.max(0,...g)}))`;
interface Probe {
  stolen: number;
  over5: number;
  max: number;
}
function machineProbe(cpu: number, ms: number): Probe | undefined {
  if (!PIN) return undefined;
  const out = execFileSync('taskset', ['-c', String(cpu), process.execPath, '-e', PROBE, String(ms)]);
  return JSON.parse(out.toString()) as Probe;
}

/**
 * BENCH_QUIESCE (default on; 0: off): while one target is measured every other proxy process is
 * stopped (SIGSTOP), and all run again between windows (SIGCONT, then QUIESCE_SETTLE_MS before
 * the next window). Every proxy shares CPU 1, so an idle neighbour's own work (a node proxy's
 * idle-time GC: 40 ms of CPU with 8-12 ms pauses, seen in both Seawall proxies in the same gap
 * between windows) ran in another target's window, its tail the neighbour's. Work a stopped
 * process deferred runs in the gap, in no window; a target's own work during its window is
 * still its own. The same for every target (haproxy and the node:http floor included); the
 * upstream (CPU 0) always runs.
 */
const QUIESCE = process.env.BENCH_QUIESCE !== '0';
const QUIESCE_SETTLE_MS = 250;
/** Every proxy runs again; then a pause in which what they deferred while stopped can run. */
async function resumeAll(proxies: readonly Child[]): Promise<void> {
  if (!QUIESCE) return;
  for (const p of proxies) p.proc.kill('SIGCONT');
  await new Promise((r) => setTimeout(r, QUIESCE_SETTLE_MS));
}
/** Every proxy but `target` (none: direct) stopped for a window. */
function alone(proxies: readonly Child[], target: Child | undefined): void {
  if (!QUIESCE) return;
  for (const p of proxies) if (p !== target) p.proc.kill('SIGSTOP');
}

/** One thread, HTTP keep-alive: what every haproxy of the bench (proxy or upstream) starts with. */
const HAPROXY_HEAD = [
  'global',
  '  nbthread 1',
  '  maxconn 4096',
  'defaults',
  '  mode http',
  '  timeout client 60s',
  '  option http-keep-alive',
];

function haproxyConfig(port: number, upstream: number, n: number): string {
  const acls: string[] = [];
  benchRules(n).forEach((r, i) => {
    acls.push(`  acl m${i} method ${r.method}`);
    acls.push(`  acl p${i} path_reg ^${r.path}$`);
  });
  const allows = benchRules(n).map((_, i) => `  http-request allow if m${i} p${i}`);
  return [
    ...HAPROXY_HEAD,
    '  timeout connect 1s',
    '  timeout server 30s',
    'frontend fe',
    `  bind 127.0.0.1:${port}`,
    ...acls,
    ...allows,
    '  http-request deny deny_status 403',
    '  default_backend be',
    'backend be',
    '  http-reuse always',
    `  server s1 127.0.0.1:${upstream}`,
    '',
  ].join('\n');
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/**
 * The upstream server as haproxy (one thread, `http-request return`: 200 "ok" on every keep-alive
 * request), not node:http: on CPU 0 beside the load generator, a server that needs a fifth of
 * node:http's CPU per request keeps the generator's core mostly free, so less of the paced tail is
 * the two CPU 0 processes waiting for each other (haproxy as a proxy, p99 per round: 5.5-11 ms,
 * median 10.1, with the node:http upstream; 1.8-19 ms, median 6.3, over two runs with this one:
 * the rest is the 2-vCPU VM's own tail). BENCH_UPSTREAM=node: node:http as before.
 */
function upstreamConfig(port: number): string {
  return [
    ...HAPROXY_HEAD,
    'frontend up',
    `  bind 127.0.0.1:${port}`,
    '  http-request return status 200 content-type text/plain string ok',
    '',
  ].join('\n');
}

async function startHaproxy(dir: string, upstream: number, n: number): Promise<Child> {
  const port = await freePort();
  return spawnHaproxy(join(dir, `haproxy-${n}.cfg`), haproxyConfig(port, upstream, n), port, 1);
}

async function startHaproxyUpstream(dir: string): Promise<Child> {
  const port = await freePort();
  return spawnHaproxy(join(dir, 'upstream.cfg'), upstreamConfig(port), port, 0);
}

async function spawnHaproxy(cfg: string, text: string, port: number, cpu: number): Promise<Child> {
  writeFileSync(cfg, text);
  const proc = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) {
      pin(proc.pid, cpu);
      return { proc, port };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error('haproxy did not start');
}

interface LoadResult {
  rps: number;
  /** From the request's write to its answer's last byte. */
  latenciesMs: number[];
  /**
   * Paced only: from the time the schedule said the request was due, so a request the generator
   * sent late (no idle connection, its own event loop busy) counts its wait (no coordinated
   * omission).
   */
  fromDueMs: number[];
  errors: number;
}

/**
 * CONNS keep-alive connections; closed loop (each sends its next request when the answer is
 * complete), or paced at `rate` requests/s over all of them.
 */
function load(port: number, ms: number, rate?: number, unique = false): Promise<LoadResult> {
  return new Promise((resolve) => {
    const lat: number[] = [];
    const fromDue: number[] = [];
    let errors = 0;
    let done = 0;
    let stopped = false;
    const idle: Conn[] = [];
    interface Conn {
      s: net.Socket;
      buf: Buffer;
      t0: number;
      due: number;
      busy: boolean;
    }
    const send = (c: Conn, due?: number) => {
      c.busy = true;
      c.t0 = performance.now();
      c.due = due ?? c.t0;
      c.s.write(unique ? uniqueRequest() : REQUEST);
    };
    const conns: Conn[] = [];
    for (let i = 0; i < CONNS; i++) {
      const c: Conn = {
        s: net.connect(port, '127.0.0.1'),
        buf: Buffer.alloc(0),
        t0: 0,
        due: 0,
        busy: false,
      };
      c.s.setNoDelay(true);
      c.s.on('error', () => {
        errors++;
      });
      c.s.on('data', (d: Buffer) => {
        c.buf = c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
        for (;;) {
          const end = c.buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const head = c.buf.subarray(0, end).toString('latin1');
          const m = /content-length: *([0-9]+)/i.exec(head);
          const len = m === null ? 0 : Number(m[1]);
          if (c.buf.length < end + 4 + len) return;
          if (!head.startsWith('HTTP/1.1 200')) errors++;
          c.buf = c.buf.subarray(end + 4 + len);
          const now = performance.now();
          lat.push(now - c.t0);
          fromDue.push(now - c.due);
          done++;
          c.busy = false;
          if (stopped) continue;
          if (rate === undefined) send(c);
          else {
            idle.push(c);
            pump(); // a request already due goes now, not at the next tick
          }
        }
      });
      conns.push(c);
    }
    let ready = 0;
    let start = 0;
    let sent = 0;
    let pacing = false;
    // Paced: every request due by now, while a connection is idle. Requests that found none are
    // late (their wait counts in fromDue) and go out as soon as one frees (pump on each answer):
    // sent only from the 1 ms tick, the 32 connections' cycle was latency plus the wait for the
    // next tick, and at half the Seawall proxy's maximum that left too few idle connections, so
    // late requests piled up in this generator (fromDue p99 105-175 ms; 1 ms at 12,000 req/s).
    const pump = () => {
      if (!pacing || rate === undefined) return;
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      while (sent < due && idle.length > 0) {
        send(idle.pop()!, start + (sent * 1000) / rate);
        sent++;
      }
    };
    const begin = () => {
      start = performance.now();
      if (rate === undefined) {
        for (const c of conns) send(c);
      } else {
        idle.push(...conns);
        pacing = true;
        const tick = setInterval(pump, 1);
        setTimeout(() => {
          pacing = false;
          clearInterval(tick);
        }, ms);
      }
      setTimeout(() => {
        stopped = true;
        const elapsed = performance.now() - start;
        for (const c of conns) c.s.destroy();
        resolve({ rps: done / (elapsed / 1000), latenciesMs: lat, fromDueMs: fromDue, errors });
      }, ms);
    };
    for (const c of conns) {
      c.s.once('connect', () => {
        ready++;
        if (ready === CONNS) begin();
      });
    }
  });
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function grpcRate(port: number, ms: number): Promise<number> {
  const Client = grpc.makeGenericClientConstructor(benchService, 'Svc');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Echo: (b: Buffer, cb: (e: grpc.ServiceError | null) => void) => void;
  };
  let done = 0;
  let errors = 0;
  let stop = false;
  const payload = Buffer.from('ping');
  // Warm the channel up first.
  await new Promise<void>((r) => c.Echo(payload, () => r()));
  const t0 = performance.now();
  setTimeout(() => {
    stop = true;
  }, ms);
  await Promise.all(
    Array.from(
      { length: CONNS },
      () =>
        new Promise<void>((resolve) => {
          const next = () => {
            if (stop) return resolve();
            c.Echo(payload, (e) => {
              if (e === null) done++;
              else errors++;
              next();
            });
          };
          next();
        }),
    ),
  );
  const rate = done / ((performance.now() - t0) / 1000);
  c.close();
  if (errors > 0) throw new Error(`gRPC through port ${port}: ${errors} failed calls`);
  return rate;
}

export default async function run(): Promise<void> {
  const loadAtStart = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'seawall-bench-proxy-'));
  const children: Child[] = [];
  let haveHaproxy = true;
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
  } catch {
    haveHaproxy = false;
  }
  pin(process.pid, 0);
  // Interrupted (Ctrl-C, kill): children stopped by BENCH_QUIESCE would stay stopped, never
  // seeing their parent go; they are continued and ended on the way out.
  const endChildren = (): void => {
    for (const c of children) {
      c.proc.kill('SIGCONT');
      c.proc.kill();
    }
  };
  const interrupted = (): never => process.exit(130);
  process.once('exit', endChildren);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    if (PARTS.has('http')) await httpPart(children, dir, haveHaproxy);
    if (PARTS.has('grpc')) await grpcPart(children);
    process.stdout.write(
      `(${CONNS} connections / concurrent calls, ${WINDOW_MS} ms windows, median of ${ROUNDS} interleaved rounds; ` +
        `HTTP upstream: ${haveHaproxy && UPSTREAM === 'haproxy' ? 'haproxy answering 200 itself' : 'node:http'}; ` +
        `loopback; ${PIN ? 'pinned: proxies on CPU 1, upstream and load generator on CPU 0' : `not pinned: load generator, upstream and proxies share ${availableParallelism()} cores`}; ` +
        `${QUIESCE ? `the other proxies stopped during each window, all running ${QUIESCE_SETTLE_MS} ms between windows` : 'every proxy running during every window (BENCH_QUIESCE=0)'}; ` +
        `load average ${loadAtStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end)\n`,
    );
  } finally {
    endChildren();
    process.off('exit', endChildren);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function httpPart(children: Child[], dir: string, haveHaproxy: boolean): Promise<void> {
  {
    const up =
      haveHaproxy && UPSTREAM === 'haproxy'
        ? await startHaproxyUpstream(dir)
        : await startChild(['upstream']);
    children.push(up);
    const proxies = new Map<number, Child>();
    for (const n of [1, 10, 100]) {
      const p = await startChild(['proxy', String(up.port), String(n)]);
      children.push(p);
      proxies.set(n, p);
    }
    // BENCH_ALT_FLAGS="--flag ..." (or "none"): one more 1-rule proxy with these node flags in
    // place of the agent's, in the latency part beside the plain one (an A/B in the same run).
    const altEnv = process.env.BENCH_ALT_FLAGS;
    const altFlags =
      altEnv === undefined || altEnv === 'none' ? [] : altEnv.split(' ').filter((f) => f !== '');
    const alt =
      altEnv !== undefined ? await startChild(['proxy', String(up.port), '1'], altFlags) : undefined;
    if (alt !== undefined) children.push(alt);
    // BENCH_NO_RECORDS=1: one more 1-rule proxy that makes no flow records, in the latency part
    // beside the plain one: what building and encoding the records adds to the tail and the CPU.
    const noRec =
      process.env.BENCH_NO_RECORDS === '1'
        ? await startChild(['proxy', String(up.port), '1'], undefined, undefined, { BENCH_RECORDS: '0' })
        : undefined;
    if (noRec !== undefined) children.push(noRec);
    // BENCH_BASELINE=DIR: a 1-rule proxy from another checkout (DIR/bench/http-proxy.child.ts,
    // its own code and flags: none), beside this one in every part: a before/after in one run.
    const baseDir = process.env.BENCH_BASELINE;
    const base =
      baseDir === undefined
        ? undefined
        : await startChild(
            ['proxy', String(up.port), '1'],
            [],
            join(baseDir, 'bench', 'http-proxy.child.ts'),
          );
    if (base !== undefined) children.push(base);
    const floor = await startChild(['node-proxy', String(up.port)]);
    children.push(floor);
    const haproxies = new Map<number, Child>();
    if (haveHaproxy) {
      for (const n of [1, 100]) {
        const h = await startHaproxy(dir, up.port, n);
        children.push(h);
        haproxies.set(n, h);
      }
    }
    // [name, port, unique paths]: "unique" gives every request a new query string, so the
    // proxy's decision memo never hits and every request runs the rules.
    const targets: Array<[string, number, boolean]> = [
      ['direct', up.port, false],
      ...[...proxies].map(([n, c]): [string, number, boolean] => [`seawall ${n} rules`, c.port, false]),
      ...[...proxies].map(([n, c]): [string, number, boolean] => [
        `seawall ${n} rules, unique paths`,
        c.port,
        true,
      ]),
      ...[...haproxies].map(([n, c]): [string, number, boolean] => [`haproxy ${n} rules`, c.port, false]),
      ['node:http proxy, no policy (floor)', floor.port, false],
      ...(base === undefined
        ? []
        : [['baseline seawall 1 rules', base.port, false] as [string, number, boolean]]),
    ];
    // Every proxy's process, for its CPU.
    const proxyOf = new Map<number, Child>([
      ...[...proxies.values()].map((c): [number, Child] => [c.port, c]),
      ...[...haproxies.values()].map((c): [number, Child] => [c.port, c]),
      [floor.port, floor],
      ...(alt === undefined ? [] : [[alt.port, alt] as [number, Child]]),
      ...(noRec === undefined ? [] : [[noRec.port, noRec] as [number, Child]]),
      ...(base === undefined ? [] : [[base.port, base] as [number, Child]]),
      // direct: the upstream's own CPU per request.
      [up.port, up],
    ]);
    // The proxies (not the upstream), stopped while another target is measured (BENCH_QUIESCE).
    const quiesced = [...new Set(proxyOf.values())].filter((c) => c !== up);
    /** Before a window on `port`: the others stopped, after a gap in which all ran. */
    const measure = async (port: number): Promise<void> => {
      await resumeAll(quiesced);
      const p = proxyOf.get(port);
      alone(quiesced, p === up ? undefined : p);
    };
    // Warm-up (JIT, connection pools), then interleaved rounds.
    for (const [, port] of targets) await load(port, 500);
    if (alt !== undefined) await load(alt.port, 500);
    if (noRec !== undefined) await load(noRec.port, 500);
    const rps = new Map<string, number[]>();
    const cpuPerK = new Map<string, number[]>();
    // BENCH_RATE=N: the latency part alone, paced at N (no maximum-rate rounds).
    for (let r = 0; r < (FIXED_RATE === undefined ? ROUNDS : 0); r++) {
      for (const [name, port, unique] of targets) {
        const proxy = proxyOf.get(port);
        await measure(port);
        const c0 = proxy !== undefined ? await cpuOf(proxy) : undefined;
        const t0 = performance.now();
        const res = await load(port, WINDOW_MS, undefined, unique);
        const wall = (performance.now() - t0) / 1000;
        if (res.errors > 0) throw new Error(`${name}: ${res.errors} errors`);
        rps.set(name, [...(rps.get(name) ?? []), res.rps]);
        if (proxy !== undefined && c0 !== undefined) {
          const vcpu = ((await cpuOf(proxy)) - c0) / wall;
          cpuPerK.set(name, [...(cpuPerK.get(name) ?? []), vcpu / (res.rps / 1000)]);
        }
      }
    }
    await resumeAll(quiesced);
    const med = (name: string) => median(rps.get(name) ?? []);
    const direct = med('direct');
    if (FIXED_RATE === undefined) {
      const rows = [
        [
          'target',
          'req/s',
          'vs direct',
          'vs haproxy (same rules)',
          'proxy vCPU per 1k req/s (direct: the upstream server)',
        ],
      ];
      for (const [name] of targets) {
        const n = /([0-9]+) rules/.exec(name)?.[1];
        const ha =
          n !== undefined && haproxies.has(Number(n)) ? med(`haproxy ${n} rules`) : med('haproxy 1 rules');
        const cpu = cpuPerK.get(name);
        rows.push([
          name,
          med(name).toFixed(0),
          fmtRatio(med(name) / direct),
          name.startsWith('seawall') && haveHaproxy ? fmtRatio(med(name) / ha) : '',
          cpu === undefined ? '' : median(cpu).toFixed(3),
        ]);
      }
      process.stdout.write(`${table(rows)}\n`);
      process.stdout.write(
        `100 rules vs 1 rule: ${fmtRatio(med('seawall 100 rules') / med('seawall 1 rules'))} of the requests/s ` +
          `(unique paths: ${fmtRatio(med('seawall 100 rules, unique paths') / med('seawall 1 rules, unique paths'))})\n\n`,
      );
    }

    // Latency at half of the proxy's own maximum rate (1 rule), against direct at that rate.
    if (!PARTS.has('latency')) return;
    const rate = FIXED_RATE ?? Math.floor(med('seawall 1 rules') / 2);
    const latRows = [
      [
        'target',
        'p50 ms',
        'p99 ms',
        'added p50 ms',
        'added p99 ms',
        'added p99 from due ms',
        'added p99, per-round ms',
        'proxy vCPU per 1k req/s',
      ],
    ];
    const lat = new Map<string, { p50: number[]; p99: number[]; p99due: number[]; n: number[] }>();
    const latTargets: Array<[string, number]> = [
      ['direct', up.port],
      ['seawall 1 rules', proxies.get(1)!.port],
      ['seawall 100 rules', proxies.get(100)!.port],
    ];
    if (alt !== undefined)
      latTargets.push([`seawall 1 rules, flags: ${altFlags.join(' ') || 'none'}`, alt.port]);
    if (noRec !== undefined) latTargets.push(['seawall 1 rules, no records', noRec.port]);
    if (base !== undefined) latTargets.push(['baseline seawall 1 rules', base.port]);
    if (haveHaproxy) latTargets.push(['haproxy 1 rules', haproxies.get(1)!.port]);
    latTargets.push(['node:http proxy, no policy (floor)', floor.port]);
    // CPU per request falls with the rate (more requests per event-loop wake-up), so the fair
    // comparison of the proxies' CPU is at one rate, this one.
    const cpuAtRate = new Map<string, number[]>();
    const traces = new Map<string, Trace[]>();
    // Per round, how often the kernel preempted each target's process (direct: the upstream).
    const preempted = new Map<string, number[]>();
    const probes: Probe[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // with every proxy stopped (BENCH_QUIESCE): the machine alone
      await measure(up.port);
      const probe = machineProbe(1, 400);
      if (probe !== undefined) probes.push(probe);
      for (const [name, port] of latTargets) {
        const proxy = proxyOf.get(port);
        await measure(port);
        // The baseline's child may not answer `trace`.
        const node = proxy?.proc.connected === true && proxy !== base;
        if (TRACE && node) await ask(proxy!, 'trace-reset');
        const c0 = proxy !== undefined && port !== up.port ? await cpuOf(proxy) : undefined;
        const pre0 = preemptions(proxy?.proc.pid);
        const t0 = performance.now();
        const res = await load(port, WINDOW_MS, rate);
        preempted.set(name, [...(preempted.get(name) ?? []), preemptions(proxy?.proc.pid) - pre0]);
        if (proxy !== undefined && c0 !== undefined) {
          const vcpu = ((await cpuOf(proxy)) - c0) / ((performance.now() - t0) / 1000);
          cpuAtRate.set(name, [...(cpuAtRate.get(name) ?? []), vcpu / (res.rps / 1000)]);
        }
        if (TRACE && node) {
          const t = (await ask(proxy!, 'trace')) as { trace?: Trace };
          if (t.trace !== undefined) traces.set(name, [...(traces.get(name) ?? []), t.trace]);
        }
        const l = lat.get(name) ?? { p50: [], p99: [], p99due: [], n: [] };
        l.n.push(res.latenciesMs.length);
        l.p50.push(pct(res.latenciesMs, 50));
        l.p99.push(pct(res.latenciesMs, 99));
        l.p99due.push(pct(res.fromDueMs, 99));
        lat.set(name, l);
      }
    }
    await resumeAll(quiesced);
    const d = lat.get('direct')!;
    for (const [name] of latTargets) {
      const l = lat.get(name)!;
      latRows.push([
        name,
        median(l.p50).toFixed(3),
        median(l.p99).toFixed(3),
        name === 'direct' ? '' : (median(l.p50) - median(d.p50)).toFixed(3),
        name === 'direct' ? '' : (median(l.p99) - median(d.p99)).toFixed(3),
        name === 'direct' ? '' : (median(l.p99due) - median(d.p99due)).toFixed(3),
        // Each round's p99 less direct's in the same round, then the median: steadier when the
        // machine's load drifts between rounds.
        name === 'direct' ? '' : median(l.p99.map((x, i) => x - d.p99[i]!)).toFixed(3),
        cpuAtRate.has(name) ? median(cpuAtRate.get(name)!).toFixed(3) : '',
      ]);
    }
    process.stdout.write(
      `paced at ${rate} req/s (${FIXED_RATE === undefined ? "half of the proxy's maximum, 1 rule" : 'BENCH_RATE'}), ${CONNS} connections; ` +
        `samples per round (a p99 is the 1% slowest of these): ${Math.min(...[...lat.values()].flatMap((l) => l.n))}-${Math.max(...[...lat.values()].flatMap((l) => l.n))}; ` +
        `p99 per round: ${[...lat].map(([n, l]) => `${n}: ${l.p99.map((x) => x.toFixed(1)).join('/')}`).join('; ')}\n`,
    );
    if (probes.length > 0) {
      process.stdout.write(
        `the machine on CPU 1 between rounds (a 400 ms clock-reading probe): time taken by other processes ${probes.map((p) => `${((p.stolen / 400) * 100).toFixed(0)}%`).join('/')}; ` +
          `gaps of 5 ms and more ${probes.map((p) => p.over5).join('/')}; longest ${probes.map((p) => p.max.toFixed(1)).join('/')} ms\n`,
      );
    }
    process.stdout.write(
      `preemptions of the process per window (the kernel ran another process on its core): ${[...preempted].map(([n, x]) => `${n}: ${x.join('/')}`).join('; ')}\n`,
    );
    if (TRACE) {
      for (const [name, ts] of traces) {
        const gc = (k: string, f: 'n' | 'totalMs' | 'maxMs') => median(ts.map((t) => t.gc[k]?.[f] ?? 0));
        process.stdout.write(
          `  ${name}: CPU user ${median(ts.map((t) => t.userS)).toFixed(2)} s, system ${median(ts.map((t) => t.systemS)).toFixed(2)} s; event-loop delay p50 ${median(ts.map((t) => t.eldP50Ms)).toFixed(2)} ` +
            `p99 ${median(ts.map((t) => t.eldP99Ms)).toFixed(2)} max ${median(ts.map((t) => t.eldMaxMs)).toFixed(2)} ms; ` +
            `per window: scavenges ${gc('scavenge', 'n')} (${gc('scavenge', 'totalMs').toFixed(1)} ms, max ${gc('scavenge', 'maxMs').toFixed(2)}), ` +
            `mark-compact ${gc('mark-compact', 'n')} (max ${gc('mark-compact', 'maxMs').toFixed(2)} ms), ` +
            `incremental ${gc('incremental', 'n')} (max ${gc('incremental', 'maxMs').toFixed(2)} ms); ` +
            `stalls of 5 ms and more ${median(ts.map((t) => t.eldOver5Ms))}; involuntary context switches ${median(ts.map((t) => t.involuntarySwitches))}, voluntary ${median(ts.map((t) => t.voluntarySwitches))}\n` +
            // Per round, the longest pauses: a slow round's cause (a GC kind, or a stall no GC explains).
            `    per round: event-loop delay max ${ts.map((t) => t.eldMaxMs.toFixed(1)).join('/')} ms; longest GC pause ${ts.map((t) => Math.max(0, ...Object.values(t.gc).map((g) => g.maxMs)).toFixed(1)).join('/')} ms; ` +
            `mark-compacts ${ts.map((t) => t.gc['mark-compact']?.n ?? 0).join('/')}; scavenge ms ${ts.map((t) => (t.gc.scavenge?.totalMs ?? 0).toFixed(1)).join('/')}\n` +
            `    idle before each window (while the others ran on its core): CPU ms ${ts.map((t) => t.idle?.cpuMs.toFixed(0) ?? '-').join('/')}; GC pauses ${ts.map((t) => (t.idle === undefined ? '-' : `${t.idle.gcN}:${t.idle.gcMs.toFixed(1)}`)).join('/')} (n:ms), longest ${ts.map((t) => t.idle?.gcMaxMs.toFixed(1) ?? '-').join('/')} ms\n`,
        );
      }
    }
    process.stdout.write(`${table(latRows)}\n\n`);
  }
}

async function grpcPart(children: Child[]): Promise<void> {
  {
    // gRPC unary calls/s.
    const gup = await startChild(['grpc-upstream']);
    children.push(gup);
    const gproxy = await startChild(['proxy', String(gup.port), 'grpc']);
    children.push(gproxy);
    const g = { direct: [] as number[], proxy: [] as number[] };
    await grpcRate(gup.port, 300);
    await grpcRate(gproxy.port, 300);
    const cpu: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      g.direct.push(await grpcRate(gup.port, WINDOW_MS));
      const c0 = await cpuOf(gproxy);
      const t0 = performance.now();
      const rate = await grpcRate(gproxy.port, WINDOW_MS);
      const vcpu = ((await cpuOf(gproxy)) - c0) / ((performance.now() - t0) / 1000);
      g.proxy.push(rate);
      cpu.push(vcpu / (rate / 1000));
    }
    process.stdout.write(
      `${table([
        ['gRPC unary', 'calls/s', 'vs direct', 'proxy vCPU per 1k calls/s'],
        ['direct', median(g.direct).toFixed(0), '1.00x', ''],
        [
          'seawall (h2c)',
          median(g.proxy).toFixed(0),
          fmtRatio(median(g.proxy) / median(g.direct)),
          median(cpu).toFixed(3),
        ],
      ])}\n`,
    );
  }
}
