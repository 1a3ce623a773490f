// Policy engine benchmarks, each against a baseline measured in the same run:
// (a) compile N rules × M identities vs a naive rules × identities evaluator (same verdicts on a
//     sample), with the growth exponent of time vs output size from a log-log fit;
// (b) 20,000 rules selecting nothing: cost per endpoint vs no rules;
// (c) one identity joining among 10,000: incremental update vs full recompute;
// (d) verdict lookups per second vs plain Map.get on exact keys.

import { performance } from 'node:perf_hooks';
import { podIdentityLabels } from '../src/labels/pod.ts';
import { compileSelector } from '../src/labels/selector.ts';
import { PolicyEngine } from '../src/policy/engine.ts';
import { cnp, pod } from '../src/policy/testutil.ts';
import type { EndpointSpec } from '../src/policy/types.ts';
import { PROTO } from '../src/policy/types.ts';
import type { PolicyObject } from '../src/policy-api/types.ts';
import { fmtBytes, fmtMs, fmtRatio, median, retainedBytes, rng, table } from './lib.ts';

function ip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

/** N rules over K app groups: rule i selects app a(i%K), allows tier t(i%T) on port 1000+i%50. */
function workload(
  n: number,
  m: number,
): { policies: PolicyObject[]; eps: EndpointSpec[]; k: number; t: number } {
  const k = Math.max(10, Math.floor(n / 10));
  const t = Math.max(10, Math.floor(m / 10));
  const policies: PolicyObject[] = [];
  for (let i = 0; i < n; i++) {
    policies.push(
      cnp('bench', `r${i}`, {
        endpointSelector: { matchLabels: { app: `a${i % k}` } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { tier: `t${(i * 7) % t}` } }],
            toPorts: [{ ports: [{ port: String(1000 + (i % 50)), protocol: 'TCP' }] }],
          },
        ],
      }),
    );
  }
  const eps: EndpointSpec[] = [];
  for (let j = 0; j < m; j++)
    eps.push(pod(`bench/p${j}`, { app: `a${j % k}`, tier: `t${j % t}`, id: String(j) }, ip(j)));
  return { policies, eps, k, t };
}

function build(policies: PolicyObject[], eps: EndpointSpec[]): PolicyEngine {
  const e = new PolicyEngine();
  for (const p of policies) e.upsertPolicy(p);
  for (const ep of eps) e.upsertEndpoint(ep);
  return e;
}

/** Naive: for every subject identity scan every rule, and for every selected rule every identity. */
function naive(
  policies: PolicyObject[],
  eps: EndpointSpec[],
): Map<string, { enforced: boolean; allowed: Set<string> }> {
  const labels = eps.map((e) => podIdentityLabels({ namespace: e.namespace!, labels: e.labels }));
  const rules = policies.map((p) => {
    const spec = (
      p as {
        spec: {
          endpointSelector: { matchLabels: Record<string, string> };
          ingress: Array<{
            fromEndpoints: Array<{ matchLabels: Record<string, string> }>;
            toPorts: Array<{ ports: Array<{ port: string }> }>;
          }>;
        };
      }
    ).spec;
    return {
      subject: compileSelector({
        matchLabels: { ...spec.endpointSelector.matchLabels, 'k8s:io.kubernetes.pod.namespace': 'bench' },
      }),
      peer: compileSelector({
        matchLabels: {
          ...spec.ingress[0]!.fromEndpoints[0]!.matchLabels,
          'k8s:io.kubernetes.pod.namespace': 'bench',
        },
      }),
      port: spec.ingress[0]!.toPorts[0]!.ports[0]!.port,
    };
  });
  const allowed = new Map<string, { enforced: boolean; allowed: Set<string> }>(); // dst → "srcIdx:port"
  labels.forEach((dl, d) => {
    const set = new Set<string>();
    let enforced = false;
    for (const r of rules) {
      if (!r.subject.matches(dl)) continue;
      enforced = true;
      labels.forEach((sl, s) => {
        if (r.peer.matches(sl)) set.add(`${s}:${r.port}`);
      });
    }
    allowed.set(eps[d]!.name, { enforced, allowed: set });
  });
  return allowed;
}

function time<T>(f: () => T): { ms: number; out: T } {
  const t0 = performance.now();
  const out = f();
  return { ms: performance.now() - t0, out };
}

function slope(xs: number[], ys: number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  lx.forEach((x, i) => {
    num += (x - mx) * (ly[i]! - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

async function compileBench(): Promise<void> {
  const quick = process.env.BENCH_QUICK === '1';
  const sizes: Array<[number, number]> = quick
    ? [
        [500, 500],
        [1000, 1000],
        [2000, 2000],
      ]
    : [
        [1000, 1000],
        [2000, 2000],
        [5000, 5000],
        [10000, 10000],
      ];
  const rows: string[][] = [
    ['rules', 'identities', 'entries', 'engine', 'heap', 'naive', 'naive/engine', 'sample agree'],
  ];
  const outSizes: number[] = [];
  const times: number[] = [];
  for (const [n, m] of sizes) {
    const w = workload(n, m);
    const runs = n >= 10000 ? 3 : 5;
    const ems: number[] = [];
    const nms: number[] = [];
    let engine: PolicyEngine | undefined;
    for (let r = 0; r < runs; r++) {
      engine = undefined; // the previous run's engine must be collectable before this one is built
      const t = time(() => build(w.policies, w.eps));
      engine = t.out;
      ems.push(t.ms);
      if (r < 3) nms.push(time(() => naive(w.policies, w.eps)).ms);
    }
    const ref = naive(w.policies, w.eps);
    let entries = 0;
    for (const key of engine!.endpointKeys())
      entries += engine!.endpointPolicy('bench', key.slice(6)).entries.length;
    // Sample verdicts: engine vs naive.
    const rand = rng(n);
    let agree = 0;
    const sample = 2000;
    for (let i = 0; i < sample; i++) {
      const s = Math.floor(rand() * m);
      const d = Math.floor(rand() * m);
      const port = 1000 + Math.floor(rand() * 50);
      const v = engine!.decide({
        src: { kind: 'endpoint', namespace: 'bench', name: `p${s}` },
        dst: { kind: 'endpoint', namespace: 'bench', name: `p${d}` },
        protocol: 'TCP',
        dport: port,
      });
      const nv = ref.get(`p${d}`)!;
      const want = !nv.enforced || nv.allowed.has(`${s}:${port}`);
      if (v.allowed === want) agree++;
    }
    engine = undefined;
    const heap = retainedBytes(() => build(w.policies, w.eps));
    outSizes.push(entries);
    times.push(median(ems));
    rows.push([
      String(n),
      String(m),
      String(entries),
      fmtMs(median(ems)),
      `${fmtBytes(heap)} (${(heap / Math.max(entries, 1) / 1024).toFixed(2)} KiB/entry)`,
      fmtMs(median(nms)),
      fmtRatio(median(nms) / median(ems)),
      `${agree}/${sample}`,
    ]);
  }
  console.log('(a) compile N rules × M identities (policies, then endpoints), medians');
  console.log(table(rows));
  console.log(
    `growth exponent of engine time vs MapState entries (log-log fit): ${slope(outSizes, times).toFixed(2)}`,
  );
}

async function emptyRulesBench(): Promise<void> {
  const policies: PolicyObject[] = [];
  for (let i = 0; i < 20000; i++) {
    policies.push(
      cnp('bench', `none${i}`, {
        endpointSelector: { matchLabels: { app: `nobody-${i}` } },
        ingress: [{ fromEndpoints: [{}] }],
      }),
    );
  }
  const eps: EndpointSpec[] = [];
  for (let j = 0; j < 1000; j++)
    eps.push(pod(`bench/p${j}`, { app: `real-${j % 50}`, id: String(j) }, ip(j)));
  const per = (ps: PolicyObject[]): number[] => {
    const out: number[] = [];
    for (let r = 0; r < 5; r++) {
      const e = new PolicyEngine();
      for (const p of ps) e.upsertPolicy(p);
      const t = time(() => {
        for (const ep of eps) e.upsertEndpoint(ep);
      });
      out.push((t.ms * 1000) / eps.length);
    }
    return out;
  };
  const withRules = median(per(policies));
  const without = median(per([]));
  console.log(
    '\n(b) 20,000 rules selecting nothing: cost of adding one endpoint (1,000 endpoints, median of 5)',
  );
  console.log(
    table([
      ['rules', 'µs/endpoint', 'vs no rules'],
      ['0', without.toFixed(1), fmtRatio(1)],
      ['20000', withRules.toFixed(1), fmtRatio(withRules / without)],
    ]),
  );
}

async function joinBench(): Promise<void> {
  const w = workload(1000, 10000);
  const e = build(w.policies, w.eps);
  const inc: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < 7; r++) {
    const ep = pod(
      `bench/joiner${r}`,
      { app: `a${r % w.k}`, tier: `t${r % w.t}`, id: `j${r}` },
      `10.200.0.${r + 1}`,
    );
    inc.push(time(() => e.upsertEndpoint(ep)).ms);
    e.removeEndpoint('bench', ep.name);
    if (r < 3) full.push(time(() => e.regenerateAll()).ms);
  }
  console.log(
    '\n(c) one identity joining among 10,000 (1,000 rules): incremental vs full recompute, medians',
  );
  console.log(
    table([
      ['update', 'time', 'ratio'],
      ['incremental (upsertEndpoint)', fmtMs(median(inc)), fmtRatio(1)],
      ['full recompute (all endpoints)', fmtMs(median(full)), fmtRatio(median(full) / median(inc))],
    ]),
  );
}

async function lookupBench(): Promise<void> {
  const w = workload(1000, 1000);
  const e = build(w.policies, w.eps);
  const rand = rng(7);
  const n = 1 << 16;
  const epKeys: string[] = [];
  const ids: number[] = [];
  const ports: number[] = [];
  const exact = new Map<string, number>();
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = Math.floor(rand() * w.eps.length);
    const s = Math.floor(rand() * w.eps.length);
    epKeys.push(`bench/p${d}`);
    const id = e.identityOf({ kind: 'endpoint', namespace: 'bench', name: `p${s}` });
    ids.push(id);
    const port = 1000 + Math.floor(rand() * 50);
    ports.push(port);
    const k = `bench/p${d}|${id}|6|${port}`;
    keys.push(k);
    exact.set(k, e.lookup(`bench/p${d}`, 'INGRESS', id, PROTO.TCP, port));
  }
  const loops = 30;
  const rate = (f: () => number): number[] => {
    const out: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      if (f() === -1) console.log('');
      out.push((loops * n) / ((performance.now() - t0) / 1000));
    }
    return out;
  };
  const engineRate = median(
    rate(() => {
      let acc = 0;
      for (let l = 0; l < loops; l++)
        for (let i = 0; i < n; i++) acc += e.lookup(epKeys[i]!, 'INGRESS', ids[i]!, PROTO.TCP, ports[i]!);
      return acc;
    }),
  );
  const mapRate = median(
    rate(() => {
      let acc = 0;
      for (let l = 0; l < loops; l++) for (let i = 0; i < n; i++) acc += exact.get(keys[i]!)!;
      return acc;
    }),
  );
  const flows = Array.from({ length: 20000 }, (_, i) => ({
    src: { kind: 'endpoint' as const, namespace: 'bench', name: `p${i % 1000}` },
    dst: { kind: 'endpoint' as const, namespace: 'bench', name: `p${(i * 13) % 1000}` },
    protocol: 'TCP' as const,
    dport: 1000 + (i % 50),
  }));
  const decideRates: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (const f of flows) e.decide(f);
    decideRates.push(flows.length / ((performance.now() - t0) / 1000));
  }
  console.log('\n(d) verdict lookups per second (1,000 rules × 1,000 identities), medians of 7');
  console.log(
    table([
      ['lookup', 'per second', 'vs Map.get'],
      ['Map.get on exact keys', mapRate.toExponential(2), fmtRatio(1)],
      ['engine.lookup (MapState)', engineRate.toExponential(2), fmtRatio(engineRate / mapRate)],
      [
        'engine.decide (both sides + explanation)',
        median(decideRates).toExponential(2),
        fmtRatio(median(decideRates) / mapRate),
      ],
    ]),
  );
}

const SECTIONS: Record<string, () => Promise<void>> = {
  compile: compileBench,
  empty: emptyRulesBench,
  join: joinBench,
  lookup: lookupBench,
};

/** SEAWALL_BENCH_ONLY=lookup,join runs only those sections (the compile section takes minutes). */
export default async function run(): Promise<void> {
  const only = process.env.SEAWALL_BENCH_ONLY?.split(',');
  for (const [name, section] of Object.entries(SECTIONS)) {
    if (only === undefined || only.includes(name)) await section();
  }
}
