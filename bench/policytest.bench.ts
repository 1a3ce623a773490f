// `seawall test` runner throughput on a large generated PolicyTest (200 endpoints, 300 policies,
// 20,000 flows, some with HTTP and DNS requests), against a baseline in the same run: the same
// flows decided by calling engine.decide directly on an engine holding the same state. The ratio
// is the runner's overhead (result objects, explanations, DNS learning). Parsing is reported
// apart.

import { performance } from 'node:perf_hooks';
import { defaultEngineFactory } from '../src/policy/default-engine.ts';
import { parsePolicyTestText } from '../src/policytest/parse.ts';
import { prepareEngine, runPolicyTest } from '../src/policytest/runner.ts';
import type { PolicyTest } from '../src/policytest/types.ts';
import { fmtMs, fmtRatio, interleaved, median, rng, table } from './lib.ts';

const ENDPOINTS = 200;
const POLICIES = 300;
const FLOWS = 20_000;
const NAMESPACES = 4;
const APPS = 25;
const TIERS = 10;

function generate(): string {
  const rand = rng(42);
  const pick = (n: number) => Math.floor(rand() * n);
  const endpoints = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    endpoints.push({
      name: `ep${i}`,
      namespace: `ns${i % NAMESPACES}`,
      labels: { app: `a${i % APPS}`, tier: `t${i % TIERS}` },
      ip: `10.1.${i >> 7}.${(i & 127) + 1}`,
    });
  }
  endpoints.push({
    name: 'dns',
    namespace: 'kube-system',
    labels: { 'k8s-app': 'kube-dns' },
    ip: '10.2.0.10',
  });
  endpoints.push({ name: 'ext', ip: '198.51.100.7', external: true });
  const policies = [];
  for (let i = 0; i < POLICIES; i++) {
    const ns = `ns${i % NAMESPACES}`;
    const spec: Record<string, unknown> = { endpointSelector: { matchLabels: { app: `a${i % APPS}` } } };
    if (i % 3 === 0) {
      spec.egress = [
        {
          toEndpoints: [
            { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' } },
          ],
          toPorts: [
            { ports: [{ port: '53', protocol: 'UDP' }], rules: { dns: [{ matchPattern: '*.example.com' }] } },
          ],
        },
        {
          toFQDNs: [{ matchName: `svc${i % 10}.example.com` }],
          toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
        },
      ];
    } else {
      const rule: Record<string, unknown> = {
        fromEndpoints: [{ matchLabels: { tier: `t${(i * 7) % TIERS}` } }],
        toPorts: [{ ports: [{ port: String(8000 + (i % 20)), protocol: 'TCP' }] }],
      };
      if (i % 5 === 1) {
        (rule.toPorts as Array<Record<string, unknown>>)[0]!.rules = {
          http: [{ method: 'GET', path: '/api/.*' }],
        };
      }
      spec.ingress = [rule];
    }
    policies.push({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: `p${i}`, namespace: ns },
      spec,
    });
  }
  const dns = [];
  for (let i = 0; i < 10; i++)
    dns.push({ name: `svc${i}.example.com`, ips: [`198.51.100.${10 + i}`], ttl: 3600 });
  const flows = [];
  for (let i = 0; i < FLOWS; i++) {
    const src = pick(ENDPOINTS);
    const from = `ns${src % NAMESPACES}/ep${src}`;
    const kind = i % 10;
    if (kind === 0) {
      flows.push({
        from,
        to: 'kube-system/dns',
        port: 53,
        protocol: 'UDP',
        dns: { query: `svc${pick(10)}.example.com` },
        expect: 'allowed',
      });
    } else if (kind === 1) {
      flows.push({ from, to: `svc${pick(10)}.example.com`, port: 443, expect: 'denied' });
    } else {
      const dst = pick(ENDPOINTS);
      const flow: Record<string, unknown> = {
        from,
        to: `ns${dst % NAMESPACES}/ep${dst}`,
        port: 8000 + pick(20),
        expect: 'allowed',
      };
      if (kind === 2) flow.http = { method: 'GET', path: `/api/v${pick(3)}` };
      flows.push(flow);
    }
  }
  const doc = {
    apiVersion: 'seawall/v1',
    kind: 'PolicyTest',
    metadata: { name: 'bench' },
    spec: { policies, endpoints, dns, flows },
  };
  return JSON.stringify(doc);
}

/** The baseline: the same engine state, the same flows, engine.decide and nothing else. */
function baseline(test: PolicyTest): number {
  const { engine } = prepareEngine(test, defaultEngineFactory);
  let allowed = 0;
  let now = 0;
  for (const f of test.flows) {
    now += 100;
    if (engine.decide(f.request, now).allowed) allowed++;
  }
  return allowed;
}

export default async function run(): Promise<void> {
  const text = generate();
  const t0 = performance.now();
  const parsed = await parsePolicyTestText('bench.json', text);
  const parseMs = performance.now() - t0;
  const errors = parsed.issues.filter((i) => i.severity === 'error');
  if (errors.length > 0) throw new Error(`generated test is invalid: ${errors[0]!.message}`);
  const test = parsed.tests[0]!;
  const samples = await interleaved(
    {
      baseline: () => baseline(test),
      runner: () => runPolicyTest(test, { createEngine: defaultEngineFactory }),
    },
    3,
  );
  const base = median(samples.baseline!.ms);
  const runner = median(samples.runner!.ms);
  const fps = (ms: number) => `${Math.round((test.flows.length / ms) * 1000).toLocaleString('en-US')}/s`;
  process.stdout.write(
    `${table([
      ['what', 'median', 'flows/s', 'vs baseline'],
      ['baseline: engine.decide loop (incl. engine setup)', fmtMs(base), fps(base), fmtRatio(1)],
      ['seawall test runner (incl. engine setup)', fmtMs(runner), fps(runner), fmtRatio(runner / base)],
      ['parse the PolicyTest (once)', fmtMs(parseMs), fps(parseMs), '-'],
    ])}\n`,
  );
  process.stdout.write(
    `${test.endpoints.length} endpoints, ${test.policies.length} policies, ${test.flows.length} flows\n`,
  );
}
