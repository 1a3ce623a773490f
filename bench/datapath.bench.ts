// Datapath benchmarks, each against a baseline measured in the same run (never a CI gate):
//  1. TCP throughput (iperf3), request/response over one connection (RR) and short connections
//     at a fixed count (CRR) between two pods with 0, 1k, 10k, 50k policy set elements on the
//     receiving pod, against the same pods and processes with no Seawall table, interleaved
//     round by round (baseline, table, baseline, table, ...);
//  2. a pod joining with 0, 10k, 50k elements installed: (a) event → delta applied, (b) event →
//     first allowed connection of a client already running in the joining pod; the namespace
//     and the client exist before the timed window, the join is the policy/ipcache update.
//     Incremental delta against a full reload (the whole table replaced atomically);
//  3. a policy change reaching enforcement on 200 endpoints: change → delta applied → first
//     connection whose verdict the change flipped (deny → allow);
//  4. element changes with 50k elements installed: one policy change adding (then removing) 10,
//     100 or 1,000 set elements, all in one endpoint's sets (the one holding the 50k) or spread
//     over 200 endpoints' sets; event → delta applied, against a full reload of the same final
//     state measured in the same rounds.
// DP_BENCH_SECTIONS=4 (a comma list) runs only some sections.
// All traffic stays between namespaces made here. Root + Linux + nft + ip + iperf3 needed.

import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NodeRuntime } from '../src/agent/runtime.ts';
import { run } from '../src/datapath/exec.ts';
import { removeTable } from '../src/datapath/nft/apply.ts';
import type { CompiledTable } from '../src/datapath/nft/compile.ts';
import type { LivePeer, NodeDatapath } from '../src/datapath/node.ts';
import { liveUnavailable } from '../src/datapath/preflight.ts';
import { FakeEngine } from '../src/policy/testing/fake-engine.ts';
import type { EndpointPolicy, PeerRef } from '../src/policy/types.ts';
import { entry } from '../test/live/helpers.ts';
import { median } from './lib.ts';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? Number.NaN;
};
const f1 = (x: number): string => x.toFixed(1);

// One small program for every traffic role, run with `node -e` inside a pod namespace:
//  server PORT...            echo server (prints `ready`)
//  rr HOST PORT N            N one-byte request/responses over one connection → {per_s}
//  crr HOST PORT N           N sequential connect + one request/response + close → {per_s}
//  join HOST PORT            waits for `go` on stdin, then starts a connection attempt every
//                            millisecond (each with its own timeout) and prints `ok` at the first
//                            that connects: a client already running when the join happens
const TRAFFIC = String.raw`
const net = require('node:net');
const [mode, host, port, count] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const elapsed = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
if (mode === 'server') {
  let left = process.argv.length - 2;
  for (const p of process.argv.slice(2)) {
    net.createServer((c) => { c.setNoDelay(true); c.on('error', () => {}); c.on('data', (d) => c.write(d)); })
      .listen(Number(p), '0.0.0.0', () => { if (--left === 0) out({ ready: true }); });
  }
} else if (mode === 'rr') {
  const n = Number(count);
  const s = net.connect(Number(port), host, () => {
    s.setNoDelay(true);
    let left = n; const t0 = process.hrtime.bigint();
    s.on('data', () => { if (--left === 0) { out({ per_s: (n * 1000) / elapsed(t0) }); s.destroy(); } else s.write('x'); });
    s.write('x');
  });
  s.on('error', (e) => { out({ error: e.message }); process.exit(1); });
} else if (mode === 'crr') {
  const n = Number(count);
  let left = n; const t0 = process.hrtime.bigint();
  const one = () => {
    const s = net.connect(Number(port), host, () => { s.setNoDelay(true); s.write('x'); });
    s.on('data', () => { s.destroy(); if (--left === 0) out({ per_s: (n * 1000) / elapsed(t0) }); else one(); });
    s.on('error', (e) => { out({ error: e.message }); process.exit(1); });
  };
  one();
} else if (mode === 'join') {
  let done = false;
  out({ ready: true });
  process.stdin.once('data', () => {
    const timer = setInterval(() => {
      const s = net.connect(Number(port), host);
      const t = setTimeout(() => s.destroy(), 200);
      s.on('connect', () => { clearTimeout(t); s.destroy(); if (!done) { done = true; clearInterval(timer); out({ ok: true }); } });
      s.on('error', () => clearTimeout(t));
    }, 1);
  });
}
`;

/** A traffic program in a namespace; resolves once it printed its first line. */
class Traffic {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | undefined;

  constructor(ns: string, args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', TRAFFIC, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      const w = this.waiting;
      this.waiting = undefined;
      if (w) w(l);
      else this.lines.push(l);
    });
    this.proc.on('exit', () => this.waiting?.('{"error":"exited"}'));
  }

  next(): Promise<Record<string, unknown>> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(JSON.parse(l) as Record<string, unknown>);
    return new Promise((r) => {
      this.waiting = (x) => r(JSON.parse(x) as Record<string, unknown>);
    });
  }

  send(s: string): void {
    this.proc.stdin!.write(s);
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }
}

async function once(ns: string, args: string[]): Promise<number> {
  const t = new Traffic(ns, args);
  const r = await t.next();
  if (typeof r.per_s !== 'number') throw new Error(`traffic ${args.join(' ')}: ${JSON.stringify(r)}`);
  return r.per_s;
}

async function iperf(clientNs: string, serverIp: string, secs: number): Promise<number> {
  const r = await run('ip', ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-t', String(secs), '-J']);
  const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  return (j.end?.sum_received?.bits_per_second ?? 0) / 1e9;
}

/** `n` ingress allow elements for pod b: distinct (identity, port) pairs that never match a. */
function bulkEntries(n: number) {
  const out = [entry('INGRESS', 256, 6, 5201), entry('INGRESS', 256, 6, 9000)];
  for (let i = 0; i < n; i++)
    out.push(entry('INGRESS', 100000 + Math.floor(i / 1000), 6, 10000 + (i % 1000) * 2));
  return out;
}

/** Pods of namespace `join` share one identity decided before they exist (same labels). */
const JOIN_IDENTITY = 5000;
class BenchEngine extends FakeEngine {
  override endpointPolicy(ns: string | undefined, name: string): EndpointPolicy {
    const p = super.endpointPolicy(ns, name);
    return ns === 'join' ? { ...p, identity: JOIN_IDENTITY } : p;
  }
  override identityOf(peer: PeerRef): number {
    return peer.kind === 'endpoint' && peer.namespace === 'join' ? JOIN_IDENTITY : super.identityOf(peer);
  }
}

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

export default async function run_(): Promise<void> {
  const why = liveUnavailable(['ip', 'nft', 'iperf3']);
  if (why) {
    console.log(`datapath bench skipped: ${why}`);
    return;
  }
  const eng = new BenchEngine();
  // the one node bring-up and tear-down (no flow records: they would cost in every figure)
  const rt = new NodeRuntime({ engine: eng, node: `seawall-bench${process.pid % 100000}`, flows: false });
  const dp = rt.datapath;
  const procs: Array<{ kill(): void }> = [];
  const ROUNDS = Number(process.env.DP_BENCH_ROUNDS ?? 5);
  const JOINS = Number(process.env.DP_BENCH_JOINS ?? 50);
  const FULL_JOINS = Number(process.env.DP_BENCH_FULL_JOINS ?? 20);
  const sections = new Set((process.env.DP_BENCH_SECTIONS ?? '1,2,3,4').split(',').map(Number));
  // two pods: a (client) and b (servers; its ingress holds the bulk elements)
  let a!: LivePeer;
  let b!: LivePeer;
  let iperfd!: ChildProcess;
  try {
    await rt.start({
      pods: [
        { name: 'a', namespace: 'b', labels: {}, ip: '10.9.0.1' },
        { name: 'b', namespace: 'b', labels: {}, ip: '10.9.0.2' },
      ],
    });
    a = dp.live({ kind: 'endpoint', namespace: 'b', name: 'a' })!;
    b = dp.live({ kind: 'endpoint', namespace: 'b', name: 'b' })!;
    // Short connections by the thousand: reuse TIME_WAIT ports on the client, or the port search
    // (not the datapath) dominates late runs. Same settings for baseline and table runs.
    await run('ip', ['netns', 'exec', a.ns, 'sysctl', '-q', '-w', 'net.ipv4.tcp_tw_reuse=1']);
    await run('ip', ['netns', 'exec', a.ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000']);
    iperfd = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s'], { stdio: 'ignore' });
    procs.push(iperfd);
    const echo = new Traffic(b.ns, ['server', '9000']);
    procs.push(echo);
    await echo.next();
    await new Promise((r) => setTimeout(r, 300));

    if (sections.has(1)) await throughput();
    if (sections.has(2)) await joins();
    if (sections.has(3)) await policyChange();
    if (sections.has(4)) await elementChanges(dp, eng);
  } finally {
    for (const p of procs) p.kill();
    await rt.stop();
  }

  async function throughput(): Promise<void> {
    // 1. throughput, RR and CRR: the same pods and servers, with and without the table
    console.log(
      `### throughput and request/response (${ROUNDS} rounds each, baseline and table interleaved; medians)\n`,
    );
    console.log(
      row([
        'elements',
        'baseline Gbit/s',
        'table Gbit/s',
        'ratio',
        'baseline RR/s',
        'table RR/s',
        'ratio',
        'baseline CRR/s',
        'table CRR/s',
        'ratio',
      ]),
    );
    console.log(row(Array(10).fill('---')));
    for (const n of [0, 1000, 10000, 50000]) {
      eng.setPolicy('b', 'b', { ingress: { enforced: true, defaultDeny: true }, entries: bulkEntries(n) });
      const t: CompiledTable = dp.compile();
      const m = { bw: [[], []], rr: [[], []], crr: [[], []] } as Record<string, [number[], number[]]>;
      for (let r = 0; r < ROUNDS; r++) {
        for (const withTable of [false, true]) {
          if (withTable) await dp.nft.applyFull(t);
          else await removeTable(dp.node);
          const k = withTable ? 1 : 0;
          m.bw![k].push(await iperf(a.ns, b.ip, 2));
          m.rr![k].push(await once(a.ns, ['rr', b.ip, '9000', '20000']));
          m.crr![k].push(await once(a.ns, ['crr', b.ip, '9000', '2000']));
        }
      }
      const cells = [String(n)];
      for (const key of ['bw', 'rr', 'crr']) {
        const [base, tab] = m[key]!;
        const mb = median(base);
        const mt = median(tab);
        cells.push(
          key === 'bw' ? mb.toFixed(2) : mb.toFixed(0),
          key === 'bw' ? mt.toFixed(2) : mt.toFixed(0),
        );
        cells.push(`${(mt / mb).toFixed(2)}x`);
      }
      console.log(row(cells));
    }
    iperfd.kill();
  }

  async function joins(): Promise<void> {
    // 2. pod joins: b's ingress allows the join identity on 9000 before any joiner exists
    console.log('\n### pod join (joining pod runs a client to b:9000 before the event)\n');
    console.log(
      row([
        'elements',
        'mode',
        'joins',
        '(a) event → delta applied p50 / p99 ms',
        '(b) event → first allowed connection p50 / p99 ms',
        'delta lines',
      ]),
    );
    console.log(row(Array(6).fill('---')));
    let seq = 0;
    const joinSummary: Record<string, { a: number[]; b: number[] }> = {};
    for (const n of [0, 10000, 50000]) {
      eng.setPolicy('b', 'b', {
        ingress: { enforced: true, defaultDeny: true },
        entries: [...bulkEntries(n), entry('INGRESS', JOIN_IDENTITY, 6, 9000)],
      });
      await dp.sync({ full: true });
      for (const mode of ['delta', 'full'] as const) {
        const ta: number[] = [];
        const tb: number[] = [];
        let lines = 0;
        const count = mode === 'delta' ? JOINS : FULL_JOINS;
        for (let i = 0; i < count; i++) {
          seq++;
          const name = `j${seq}`;
          const ip = `10.9.${10 + (seq >> 8)}.${seq % 256}`;
          const spec = { name, namespace: 'join', labels: {}, ip };
          // outside the timed window: the namespace, its veth and the running client
          const h = await dp.topo.addHost(`pod:join/${name}`, ip);
          eng.setPolicy('join', name, {
            ingress: { enforced: true, defaultDeny: true },
            egress: { enforced: true, defaultDeny: true },
            entries: [entry('EGRESS', 257, 6, 9000)],
          });
          const client = new Traffic(h.ns, ['join', b.ip, '9000']);
          procs.push(client);
          await client.next();
          client.send('go\n');
          await new Promise((r) => setTimeout(r, 30)); // attempts are being dropped now
          const t0 = performance.now();
          await dp.addPod(spec, { connect: false, sync: mode === 'delta' });
          if (mode === 'full') await dp.sync({ full: true });
          const t1 = performance.now();
          const ok = await Promise.race([
            client.next(),
            new Promise<Record<string, unknown>>((r) => setTimeout(() => r({ ok: false }), 3000)),
          ]);
          const t2 = performance.now();
          client.kill();
          if (ok.ok !== true) throw new Error(`join ${name}: no allowed connection within 3 s`);
          ta.push(t1 - t0);
          tb.push(t2 - t0);
          lines = dp.lastApply?.lines ?? 0;
          await dp.removePod('join', name);
        }
        joinSummary[`${n}/${mode}`] = { a: ta, b: tb };
        console.log(
          row([
            String(n),
            mode === 'delta' ? 'incremental delta' : 'full reload',
            String(count),
            `${f1(pct(ta, 50))} / ${f1(pct(ta, 99))}`,
            `${f1(pct(tb, 50))} / ${f1(pct(tb, 99))}`,
            String(lines),
          ]),
        );
      }
    }
    const d50 = joinSummary['50000/delta'];
    const r50 = joinSummary['50000/full'];
    if (d50 && r50) {
      console.log(
        `\nat 50k elements the incremental join is ${(median(r50.b) / median(d50.b)).toFixed(1)}x faster than a full reload (event → first allowed connection, medians; p99 ${f1(pct(d50.b, 99))} vs ${f1(pct(r50.b, 99))} ms)`,
      );
    }
  }

  async function policyChange(): Promise<void> {
    // 3. one policy change selecting 200 endpoints (one of them, t, has a namespace and a server)
    eng.setPolicy('b', 'b', { ingress: { enforced: false, defaultDeny: false }, entries: [] });
    const tpod = (await dp.addPod({ name: 't', namespace: 'm', labels: {}, ip: '10.9.3.250' }))!;
    const tsrv = new Traffic(tpod.ns, ['server', '9000', '9001']);
    procs.push(tsrv);
    await tsrv.next();
    const many = ['t'];
    for (let i = 0; i < 199; i++) {
      many.push(`m${i}`);
      await dp.addPod(
        { name: `m${i}`, namespace: 'm', labels: {}, ip: `10.9.${4 + (i >> 7)}.${(i % 128) + 1}` },
        { sync: false, connect: false },
      );
    }
    const setAll = (port: number): void => {
      for (const name of many) {
        eng.setPolicy('m', name, {
          ingress: { enforced: true, defaultDeny: true },
          entries: [entry('INGRESS', 256, 6, port), entry('INGRESS', 258, 17, 53)],
        });
      }
    };
    setAll(9001);
    await dp.sync({ full: true });
    const ca: number[] = [];
    const cb: number[] = [];
    const cn: number[] = [];
    let changeLines = 0;
    for (let k = 0; k < 20; k++) {
      const client = new Traffic(a.ns, ['join', tpod.ip, '9000']);
      procs.push(client);
      await client.next();
      client.send('go\n');
      await new Promise((r) => setTimeout(r, 30));
      const t0 = performance.now();
      setAll(9000); // the policy now allows 9000 (and no longer 9001) on all 200 endpoints
      const st = await dp.sync();
      const t1 = performance.now();
      const ok = await client.next();
      const t2 = performance.now();
      client.kill();
      if (ok.ok !== true) throw new Error('policy change: no allowed connection');
      changeLines = st.lines;
      cn.push(st.ms);
      ca.push(t1 - t0);
      cb.push(t2 - t0);
      setAll(9001);
      await dp.sync();
    }
    console.log(
      `\n### policy change on 200 endpoints (20 changes, deny → allow)\n\n` +
        `change → delta applied: p50 ${f1(pct(ca, 50))} ms, p99 ${f1(pct(ca, 99))} ms (${changeLines} lines; ` +
        `of which render + nft transaction p50 ${f1(pct(cn, 50))} ms, the rest re-distilling and compiling 200 endpoints); ` +
        `change → first connection with the new verdict: p50 ${f1(pct(cb, 50))} ms, p99 ${f1(pct(cb, 99))} ms`,
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run_();

/**
 * 4. One change of `k` set elements with 50k installed. Layouts: `one` puts the k elements in
 * the sets of the endpoint already holding the 50k (b's ingress), `spread` in the sets of 200
 * other endpoints (k/200 each, at least one per endpoint touched). Each round: add by delta,
 * remove by delta, and (in the first FULL rounds) the same two states by full reload.
 */
async function elementChanges(dp: NodeDatapath, eng: BenchEngine): Promise<void> {
  const CHANGES = Number(process.env.DP_BENCH_CHANGES ?? 30);
  const FULL = Number(process.env.DP_BENCH_FULL_CHANGES ?? 10);
  const BULK = 50000;
  const bulk = bulkEntries(BULK);
  const open = { enforced: false, defaultDeny: false };
  const closed = { enforced: true, defaultDeny: true };
  eng.setPolicy('b', 'b', { ingress: closed, entries: bulk });
  const spread: string[] = [];
  for (let i = 0; i < 200; i++) {
    spread.push(`c${i}`);
    await dp.addPod(
      { name: `c${i}`, namespace: 'c', labels: {}, ip: `10.9.${20 + (i >> 7)}.${(i % 128) + 1}` },
      { sync: false, connect: false },
    );
    eng.setPolicy('c', `c${i}`, { ingress: closed, entries: [entry('INGRESS', 256, 6, 9001)] });
  }
  const restore = (): void => {
    eng.setPolicy('b', 'b', { ingress: closed, entries: bulk });
    for (const n of spread)
      eng.setPolicy('c', n, { ingress: closed, entries: [entry('INGRESS', 256, 6, 9001)] });
  };
  await dp.sync({ full: true });
  const installed = dp.nft.state;
  let elements = 0;
  for (const ep of installed.endpoints.values()) for (const s of ep.in.sets) elements += s.elements.length;

  console.log(
    `\n### element changes with ${elements} elements installed (${CHANGES} adds + ${CHANGES} removes by delta, ` +
      `${FULL} + ${FULL} full reloads of the same states, interleaved)\n`,
  );
  console.log(
    row([
      'elements changed',
      'layout',
      'delta add p50 / p99 ms',
      'delta remove p50 / p99 ms',
      'delta lines',
      'of which render + nft p50 ms',
      'full reload p50 / p99 ms',
      'full / delta (p50)',
      'full / delta (p99)',
    ]),
  );
  console.log(row(Array(9).fill('---')));
  for (const k of [10, 100, 1000]) {
    for (const layout of ['one', 'spread'] as const) {
      // the change: k new allow elements (identity . tcp . port, none of them in the table yet;
      // ports spaced so that no two merge into one range in either representation)
      const touched =
        layout === 'one' ? ['b/b'] : spread.slice(0, Math.min(k, spread.length)).map((n) => `c/${n}`);
      const apply = (): void => {
        if (layout === 'one') {
          const extra = [];
          for (let j = 0; j < k; j++)
            extra.push(entry('INGRESS', 200000 + (j >> 6), 6, 30000 + 2 * (j & 63)));
          eng.setPolicy('b', 'b', { ingress: closed, entries: [...bulk, ...extra] });
          return;
        }
        const per = new Map<string, ReturnType<typeof entry>[]>();
        for (let j = 0; j < k; j++) {
          const n = spread[j % spread.length]!;
          const l = per.get(n) ?? [entry('INGRESS', 256, 6, 9001)];
          l.push(entry('INGRESS', 200000 + j, 6, 30000 + (j % 64)));
          per.set(n, l);
        }
        for (const [n, entries] of per) eng.setPolicy('c', n, { ingress: closed, entries });
      };
      const add: number[] = [];
      const del: number[] = [];
      const full: number[] = [];
      const nft: number[] = [];
      let lines = 0;
      const timed = async (change: () => void, isFull: boolean): Promise<number> => {
        const t0 = performance.now();
        change();
        const st = await dp.sync(isFull ? { full: true, endpoints: touched } : { endpoints: touched });
        if (!isFull && st.kind === 'delta') {
          lines = Math.max(lines, st.lines);
          nft.push(st.ms);
        }
        return performance.now() - t0;
      };
      for (let r = 0; r < CHANGES; r++) {
        add.push(await timed(apply, false));
        del.push(await timed(restore, false));
        if (r < FULL) {
          full.push(await timed(apply, true));
          full.push(await timed(restore, true));
        }
      }
      console.log(
        row([
          String(k),
          layout === 'one' ? 'one endpoint (its 50k set)' : `spread (${touched.length} endpoints)`,
          `${f1(pct(add, 50))} / ${f1(pct(add, 99))}`,
          `${f1(pct(del, 50))} / ${f1(pct(del, 99))}`,
          String(lines),
          f1(pct(nft, 50)),
          `${f1(pct(full, 50))} / ${f1(pct(full, 99))}`,
          `${(pct(full, 50) / pct([...add, ...del], 50)).toFixed(1)}x`,
          `${(pct(full, 99) / pct([...add, ...del], 99)).toFixed(1)}x`,
        ]),
      );
    }
  }
  for (const n of spread) await dp.removePod('c', n, { sync: false });
  eng.setPolicy('b', 'b', { ingress: open, entries: [] });
  await dp.sync({ full: true });
}
