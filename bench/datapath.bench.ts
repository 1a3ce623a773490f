// Datapath benchmarks, each against a baseline measured in the same run (never a CI gate):
//  1. TCP throughput (iperf3) and connection rate between two pods with 0, 1k, 10k, 50k policy
//     set elements on the receiving pod, against the same pods with no Seawall table;
//  2. a pod joining: event → first allowed connection, p50/p99, delta vs full reload at 50k;
//  3. a policy change reaching enforcement with 200 endpoints.
// All traffic stays between namespaces made here. Root + Linux + nft + ip + iperf3 needed.

import { spawn } from 'node:child_process';
import { run } from '../src/datapath/exec.ts';
import { removeTable } from '../src/datapath/nft/apply.ts';
import { NodeDatapath } from '../src/datapath/node.ts';
import { liveUnavailable } from '../src/datapath/preflight.ts';
import { ProbePool } from '../src/datapath/probe.ts';
import { entry, StubEngine } from '../test/live/helpers.ts';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

/** `n` ingress allow elements for pod b: distinct (identity, port) pairs that never match a. */
function bulkEntries(n: number) {
  const out = [entry('INGRESS', 256, 6, 5201), entry('INGRESS', 256, 6, 9000)];
  for (let i = 0; i < n; i++)
    out.push(entry('INGRESS', 100000 + Math.floor(i / 1000), 6, 10000 + (i % 1000) * 2));
  return out;
}

async function iperf(dp: NodeDatapath, clientNs: string, serverIp: string): Promise<number> {
  const r = await run('ip', ['netns', 'exec', clientNs, 'iperf3', '-c', serverIp, '-t', '1', '-J']);
  const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  void dp;
  return (j.end?.sum_received?.bits_per_second ?? 0) / 1e9;
}

async function connRate(probes: ProbePool, ns: string, ip: string, ms = 500): Promise<number> {
  const until = performance.now() + ms;
  let n = 0;
  while (performance.now() < until) if ((await probes.get(ns).connect('tcp', ip, 9000, 300)).passed) n++;
  return (n * 1000) / ms;
}

export default async function run_(): Promise<void> {
  const why = liveUnavailable(['ip', 'nft', 'iperf3']);
  if (why) {
    console.log(`datapath bench skipped: ${why}`);
    return;
  }
  const eng = new StubEngine();
  const dp = new NodeDatapath(eng, { node: 'seawall-bench' });
  const probes = new ProbePool();
  const RUNS = 3;
  try {
    await dp.up();
    const a = (await dp.addPod({ name: 'a', namespace: 'b', labels: {}, ip: '10.9.0.1' }))!;
    const b = (await dp.addPod({ name: 'b', namespace: 'b', labels: {}, ip: '10.9.0.2' }))!;
    const server = spawn('ip', ['netns', 'exec', b.ns, 'iperf3', '-s'], { stdio: 'ignore' });
    await probes.get(b.ns).listen('tcp', 9000);
    await new Promise((r) => setTimeout(r, 300));

    // 1. throughput and connection rate
    await removeTable(dp.node);
    const baseBw: number[] = [];
    const baseCr: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      baseBw.push(await iperf(dp, a.ns, b.ip));
      baseCr.push(await connRate(probes, a.ns, b.ip));
    }
    console.log(
      `baseline (no table): ${median(baseBw).toFixed(2)} Gbit/s, ${median(baseCr).toFixed(0)} conn/s`,
    );
    for (const n of [0, 1000, 10000, 50000]) {
      eng.setPolicy('b', 'b', { ingress: { enforced: true, defaultDeny: true }, entries: bulkEntries(n) });
      await dp.sync({ full: true });
      const bw: number[] = [];
      const cr: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        bw.push(await iperf(dp, a.ns, b.ip));
        cr.push(await connRate(probes, a.ns, b.ip));
      }
      console.log(
        `${String(n).padStart(5)} entries: ${median(bw).toFixed(2)} Gbit/s (${(median(bw) / median(baseBw)).toFixed(2)}x), ${median(cr).toFixed(0)} conn/s (${(median(cr) / median(baseCr)).toFixed(2)}x)`,
      );
    }
    server.kill();

    // 2. a pod joining with 50k elements installed: delta vs full reload
    for (const mode of ['delta', 'full'] as const) {
      const times: number[] = [];
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now();
        const p = (await dp.addPod(
          {
            name: `j${mode}${i}`,
            namespace: 'b',
            labels: {},
            ip: `10.9.1.${i + (mode === 'full' ? 100 : 1)}`,
          },
          { sync: false },
        ))!;
        eng.setPolicy('b', `j${mode}${i}`, {
          ingress: { enforced: true, defaultDeny: true },
          entries: [entry('INGRESS', 256, 6, 9000)],
        });
        await dp.sync({ full: mode === 'full' });
        await probes.get(p.ns).listen('tcp', 9000);
        while (!(await probes.get(a.ns).connect('tcp', p.ip, 9000, 100)).passed) {}
        times.push(performance.now() - t0);
      }
      console.log(
        `pod join (${mode}) at 50k: p50 ${pct(times, 50).toFixed(1)} ms, p99 ${pct(times, 99).toFixed(1)} ms`,
      );
    }

    // 3. policy change with 200 endpoints
    for (let i = 0; i < 200; i++) {
      await dp.addPod(
        { name: `m${i}`, namespace: 'm', labels: {}, ip: `10.9.${2 + (i >> 8)}.${(i % 250) + 1}` },
        {
          sync: false,
          connect: false,
        },
      );
    }
    await dp.sync({ full: true });
    const change: number[] = [];
    for (let k = 0; k < 5; k++) {
      for (let i = 0; i < 200; i++) {
        eng.setPolicy('m', `m${i}`, {
          ingress: { enforced: true, defaultDeny: true },
          entries: [entry('INGRESS', 256, 6, 80 + k)],
        });
      }
      const t0 = performance.now();
      await dp.sync();
      change.push(performance.now() - t0);
    }
    console.log(`policy change on 200 endpoints (delta): median ${median(change).toFixed(1)} ms`);
  } finally {
    probes.closeAll();
    await dp.down();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await run_();
