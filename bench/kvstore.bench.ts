// Kvstore mode (several nodes through etcd), against baselines measured in the same run:
//  1. propagation without a datapath (agents = engine + etcd backend, as many as wanted): a pod
//     joining on node 1 (a replica: its label set known) → every other node's engine resolving
//     its address to its identity and allowing it (decide), p50/p99 per node count (2, 3, 5, 8,
//     12), with the fitted exponent of p50 against nodes; baseline: etcd's own put → watch event
//     on as many watchers, same rounds;
//  2. etcd writes per join (a replica, and the first pod of a label set: its allocation);
//  3. memory per remote endpoint on one agent (heap growth with 2,000 remote endpoints, against
//     the same agent's memory backend holding them as local ipcache entries);
//  4. with the datapath, 2, 3 and 5 nodes on one underlay (KV_BENCH_DP_NODES, KV_BENCH_DP_JOINS):
//     join on node 1 → delta applied on every other node (its kernel ipcache holds the pod),
//     p50/p99, split into the phases of the slowest node (the joiner's put acknowledged, the
//     watch event there, the wait for its delta, the delta itself), with the fitted exponent
//     against nodes; baselines in the same run (KV_BENCH_DP_MODES): commands spawned on the
//     agents' thread as before (inline), etcd's data on disk (disk), against the worker spawner
//     with etcd on tmpfs (worker), and the same join's delta on the joining node.
// KV_BENCH_SECTIONS=1,3 runs only some. Root + Linux + etcd (+ nft, ip for section 4).

import { loadavg, tmpdir } from 'node:os';
import { liveUnavailable } from '../src/datapath/preflight.ts';
import { MemoryIdentityBackend } from '../src/identity/backend.ts';
import { KvstoreIdentityBackend } from '../src/kvstore/backend.ts';
import { KvstoreClient } from '../src/kvstore/client.ts';
import { encodeIPPair, ipKey } from '../src/kvstore/layout.ts';
import { etcdBinary, startEtcd, type TestEtcd } from '../src/kvstore/testing/etcd.ts';
import { PolicyEngine } from '../src/policy/engine.ts';
import { loadPolicyText } from '../src/policy-api/load.ts';
import { LiveCluster } from '../src/testbed/cluster.ts';
import { fmtBytes, gc, heapUsedBytes, median, table } from './lib.ts';

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
};
const f1 = (x: number): string => x.toFixed(1);
const sections = new Set((process.env.KV_BENCH_SECTIONS ?? '1,2,3,4').split(','));

const POLICY = loadPolicyText(
  'bench.yaml',
  `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-in, namespace: kb}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
`,
).policies;

interface Agent {
  name: string;
  backend: KvstoreIdentityBackend;
  engine: PolicyEngine;
}

async function agents(etcd: TestEtcd, n: number, tag: string): Promise<Agent[]> {
  const out: Agent[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${tag}-n${i + 1}`;
    const backend = new KvstoreIdentityBackend(new KvstoreClient(etcd.endpoint), {
      node: name,
      nodeIp: `172.30.${n}.${i + 1}`,
    });
    await backend.start();
    const engine = new PolicyEngine({ localNode: name }, { identity: backend });
    engine.upsertNamespace('kb', {});
    for (const p of POLICY) engine.upsertPolicy(p);
    out.push({ name, backend, engine });
  }
  // every node has a server the joining clients must reach
  for (const [i, a] of out.entries())
    await a.backend.withIdentities(() =>
      a.engine.upsertEndpoint({
        name: `server-${i}`,
        namespace: 'kb',
        labels: { app: 'server' },
        ip: `10.200.${i}.1`,
      }),
    );
  return out;
}

/** Resolves when `cond` holds, polling each microtask turn and every millisecond. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

function allowed(a: Agent, ip: string, server: number): boolean {
  return a.engine.decide({
    src: { kind: 'ip', ip },
    dst: { kind: 'endpoint', namespace: 'kb', name: `server-${server}` },
    protocol: 'TCP',
    dport: 8080,
  }).allowed;
}

/** etcd's own propagation: one put → the event on `watchers` watching clients. */
async function rawPropagation(etcd: TestEtcd, watchers: number, rounds: number): Promise<number[]> {
  const writer = new KvstoreClient(etcd.endpoint);
  const seen = new Map<string, number>();
  const ws: KvstoreClient[] = [];
  for (let i = 0; i < watchers; i++) {
    const c = new KvstoreClient(etcd.endpoint);
    await c.watch(
      {
        snapshot: () => {},
        put: (k) => seen.set(k, (seen.get(k) ?? 0) + 1),
        del: () => {},
      },
      'bench/raw/',
    );
    ws.push(c);
  }
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const k = `bench/raw/${watchers}/${r}`;
    const t0 = performance.now();
    await writer.etcd.put(k).value('x');
    await until(() => (seen.get(k) ?? 0) >= watchers);
    out.push(performance.now() - t0);
  }
  for (const c of [writer, ...ws]) await c.close();
  return out;
}

/** Least-squares slope of log(y) on log(x): y ∝ x^slope. */
function exponent(xs: number[], ys: number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i]! - mx) * (ly[i]! - my);
    den += (lx[i]! - mx) ** 2;
  }
  return num / den;
}

async function propagation(etcd: TestEtcd): Promise<void> {
  const counts = [2, 3, 5, 8, 12];
  const rounds = 30;
  const rows = [['nodes', 'join → all allow p50', 'p99', 'etcd put → all watchers p50', 'p99', 'ratio p50']];
  const p50s: number[] = [];
  let writes: { replica: number; keys: number; first: number; firstKeys: number } | undefined;
  for (const n of counts) {
    const as = await agents(etcd, n, `b${n}`);
    const joiner = as[0]!;
    const others = as.slice(1);
    const ms: number[] = [];
    // one client pod first (the label set's allocation), then replicas
    const w0 = joiner.backend.client.writes;
    const k0 = joiner.backend.client.keysWritten;
    await joiner.backend.withIdentities(() =>
      joiner.engine.upsertEndpoint({
        name: 'c0',
        namespace: 'kb',
        labels: { app: 'client' },
        ip: '10.201.0.1',
      }),
    );
    await joiner.backend.client.flushed();
    const firstW = joiner.backend.client.writes - w0;
    const firstK = joiner.backend.client.keysWritten - k0;
    await until(() => others.every((o, i) => allowed(o, '10.201.0.1', i + 1)));
    const w1 = joiner.backend.client.writes;
    const k1 = joiner.backend.client.keysWritten;
    for (let r = 1; r <= rounds; r++) {
      const ip = `10.201.${Math.floor(r / 250)}.${(r % 250) + 2}`;
      const t0 = performance.now();
      await joiner.backend.withIdentities(() =>
        joiner.engine.upsertEndpoint({ name: `c${r}`, namespace: 'kb', labels: { app: 'client' }, ip }),
      );
      await until(() => others.every((o, i) => allowed(o, ip, i + 1)));
      ms.push(performance.now() - t0);
    }
    await joiner.backend.client.flushed();
    if (n === 3)
      writes = {
        replica: (joiner.backend.client.writes - w1) / rounds,
        keys: (joiner.backend.client.keysWritten - k1) / rounds,
        first: firstW,
        firstKeys: firstK,
      };
    const raw = await rawPropagation(etcd, n - 1, rounds);
    p50s.push(median(ms));
    rows.push([
      String(n),
      `${f1(median(ms))} ms`,
      `${f1(pct(ms, 99))} ms`,
      `${f1(median(raw))} ms`,
      `${f1(pct(raw, 99))} ms`,
      `${f1(median(ms) / median(raw))}×`,
    ]);
    for (const a of as) {
      a.engine.close();
      await a.backend.close({ revoke: true });
    }
  }
  process.stdout.write(table(rows));
  process.stdout.write(
    `\nfitted exponent of join p50 against node count (2..12): ${exponent(counts, p50s).toFixed(2)} (1 = linear)\n`,
  );
  if (sections.has('2') && writes !== undefined)
    process.stdout.write(
      `\netcd writes per join (3 nodes): replica ${f1(writes.replica)} transactions / ${f1(writes.keys)} keys; first pod of a label set ${writes.first} transactions / ${writes.firstKeys} keys (allocation included)\n`,
    );
}

async function memory(etcd: TestEtcd): Promise<void> {
  const R = 2000;
  const [obs] = (await agents(etcd, 1, 'mem')) as [Agent];
  // another node's endpoints, written by a plain client (its memory is not the observer's)
  const writer = new KvstoreClient(etcd.endpoint);
  const ip = (i: number, net: number): string => `10.${net}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  gc();
  const before = heapUsedBytes();
  for (let i = 0; i < R; i += 100)
    await Promise.all(
      Array.from({ length: 100 }, (_, j) =>
        writer.etcd.put(ipKey('default', ip(i + j, 210))).value(
          encodeIPPair({
            IP: ip(i + j, 210),
            Mask: null,
            HostIP: '172.30.99.1',
            ID: 300,
            Key: 0,
            Metadata: '',
          }),
        ),
      ),
    );
  await until(() => obs.backend.ipcache.remote.size >= R, 30_000);
  gc();
  const perRemote = (heapUsedBytes() - before) / R;
  // baseline: the same addresses as plain memory ipcache entries (a single node's local pods)
  const mem = new MemoryIdentityBackend();
  gc();
  const b0 = heapUsedBytes();
  for (let i = 0; i < R; i++) mem.ipcache.upsertEndpoint(ip(i, 211), 300, {});
  gc();
  const perLocal = (heapUsedBytes() - b0) / R;
  process.stdout.write(
    `\nagent memory per remote endpoint (${R} from another node, engine + etcd mirror): ${fmtBytes(perRemote)}; a memory ipcache entry alone: ${fmtBytes(perLocal)} (${f1(perRemote / perLocal)}×)\n`,
  );
  if (mem.ipcache.lookup(ip(0, 211)) !== 300) throw new Error('baseline lost its entries');
  obs.engine.close();
  await obs.backend.close({ revoke: true });
  await writer.close();
}

/** Resolves when `cond` holds, checking every millisecond (no busy loop beside the agents). */
async function untilTimer(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

/**
 * Where a join's time goes on each other node, by events instead of polling: the store's watch
 * event (write + etcd + watch delivery), the start of the delta that holds it (the agent's own
 * coalescing timer and whatever else held its event loop or its sync queue), and the kernel
 * transaction done (compile + nft). Per join the slowest other node counts.
 */
interface JoinPhases {
  total: number;
  /** The joining node's put acknowledged by etcd (part of watch). */
  write: number;
  watch: number;
  queued: number;
  apply: number;
}

async function withDatapath(): Promise<void> {
  const why = liveUnavailable(['ip', 'nft']);
  if (why !== undefined) {
    process.stdout.write(`\nsection 4 skipped: ${why}\n`);
    return;
  }
  const rows = [
    [
      'nodes',
      'join → delta applied on all others p50',
      'p99',
      'max',
      'phases p50: put acked / watch / queued / delta',
      'phases p99: put acked / watch / queued / delta',
      'baseline: on the joining node p50',
      'p99',
      'joins',
    ],
  ];
  const counts = (process.env.KV_BENCH_DP_NODES ?? '2,3,5').split(',').map(Number);
  const joins = Number(process.env.KV_BENCH_DP_JOINS ?? 30);
  // baselines in the same run: the commands spawned on the agents' own thread, as before
  // (inline), and etcd's data on disk instead of tmpfs (disk: every put waits for an fsync)
  const modes = (process.env.KV_BENCH_DP_MODES ?? 'inline,worker,disk').split(',');
  const p50By = new Map<string, number[]>();
  for (const n of counts)
    for (const mode of modes) {
      if (mode === 'inline') process.env.SEAWALL_EXEC_INLINE = '1';
      if (mode === 'inline' || mode === 'disk') process.env.SEAWALL_ETCD_DATA_PARENT = tmpdir();
      try {
        await datapathRound(n, mode, joins, rows, p50By);
      } finally {
        delete process.env.SEAWALL_EXEC_INLINE;
        delete process.env.SEAWALL_ETCD_DATA_PARENT;
      }
    }
  process.stdout.write(`\n${table(rows)}`);
  if (counts.length > 1)
    for (const [mode, p50s] of p50By)
      process.stdout.write(
        `\nfitted exponent of the datapath join p50 against node count (${counts.join(', ')}), ${mode}: ${exponent(counts, p50s).toFixed(2)} (1 = linear)\n`,
      );
}

async function datapathRound(
  n: number,
  mode: string,
  joins: number,
  rows: string[][],
  p50By: Map<string, number[]>,
): Promise<void> {
  {
    const cluster = await LiveCluster.start({
      nodes: Array.from({ length: n }, (_, i) => ({
        name: `sw-kvb${process.pid % 10000}-${n}${i}`,
        pods: [{ name: `server-${i}`, namespace: 'kb', labels: { app: 'server' }, ip: `10.220.${i}.1` }],
        podCIDRs: [`10.220.${i}.0/24`],
      })),
      policies: POLICY,
      namespaces: new Map([['kb', {}]]),
    });
    try {
      await cluster.settle();
      const [first, ...others] = cluster.nodes;
      const phases: JoinPhases[] = [];
      const local: number[] = [];
      // per other node: when the watch event for the address came, when the next delta started
      const seen = new Map<string, number>();
      const started = new Map<string, number>();
      let target = '';
      const offs: Array<() => void> = [];
      for (const o of others) {
        offs.push(
          o.kv.backend.ipcache.onRemote((ip, e) => {
            if (e !== undefined && ip === target && !seen.has(o.spec.name))
              seen.set(o.spec.name, performance.now());
          }),
          o.rt.beforeSync(() => {
            if (seen.has(o.spec.name) && !started.has(o.spec.name))
              started.set(o.spec.name, performance.now());
          }),
        );
      }
      for (let r = 0; r < joins; r++) {
        const ip = `10.220.0.${r + 10}`;
        target = ip;
        seen.clear();
        started.clear();
        const applied = new Map<string, number>();
        const t0 = performance.now();
        const onOthers = Promise.all(
          others.map(async (o) => {
            while (!o.rt.datapath.nft.state.ipcache.has(ip)) await o.kv.nextApplied();
            applied.set(o.spec.name, performance.now());
          }),
        );
        const join = first!.kv.addPod({ name: `c${r}`, namespace: 'kb', labels: { app: 'client' }, ip });
        // the pod's key is queued synchronously by addPod: this resolves once etcd has it
        let written = t0;
        const put = first!.kv.client.flushed().then(() => {
          written = performance.now();
        });
        // the same join's delta on its own node: the single-node path, same round
        const own = untilTimer(() => first!.rt.datapath.nft.state.ipcache.has(ip)).then(() =>
          local.push(performance.now() - t0),
        );
        await onOthers;
        const worst = others.reduce((a, o) =>
          (applied.get(o.spec.name) ?? 0) > (applied.get(a.spec.name) ?? 0) ? o : a,
        );
        const w = worst.spec.name;
        const tw = seen.get(w) ?? t0;
        const ts = started.get(w) ?? tw;
        await put;
        phases.push({
          total: applied.get(w)! - t0,
          write: written - t0,
          watch: tw - t0,
          queued: ts - tw,
          apply: applied.get(w)! - ts,
        });
        await own;
        await join;
      }
      for (const off of offs) off();
      const col = (k: keyof JoinPhases): number[] => phases.map((p) => p[k]);
      p50By.set(mode, [...(p50By.get(mode) ?? []), median(col('total'))]);
      rows.push([
        `${n} (${mode === 'inline' ? 'spawn inline, etcd on disk' : mode === 'disk' ? 'spawn worker, etcd on disk' : 'spawn worker, etcd on tmpfs'})`,
        `${f1(median(col('total')))} ms`,
        `${f1(pct(col('total'), 99))} ms`,
        `${f1(Math.max(...col('total')))} ms`,
        `${f1(median(col('write')))} / ${f1(median(col('watch')))} / ${f1(median(col('queued')))} / ${f1(median(col('apply')))} ms`,
        `${f1(pct(col('write'), 99))} / ${f1(pct(col('watch'), 99))} / ${f1(pct(col('queued'), 99))} / ${f1(pct(col('apply'), 99))} ms`,
        `${f1(median(local))} ms`,
        `${f1(pct(local, 99))} ms`,
        String(joins),
      ]);
    } finally {
      await cluster.stop();
    }
  }
}

export default async function run(): Promise<void> {
  if (etcdBinary() === undefined) {
    process.stdout.write('skipped: etcd not installed (apt-get install etcd-server)\n');
    return;
  }
  process.stdout.write(
    `load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n\n`,
  );
  const etcd = await startEtcd();
  try {
    if (sections.has('1') || sections.has('2')) await propagation(etcd);
    if (sections.has('3')) await memory(etcd);
  } finally {
    await etcd.stop();
  }
  if (sections.has('4')) await withDatapath();
  process.stdout.write(
    `\nload average after ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}\n`,
  );
}
