// `seawall generate` and `seawall test --against` on 100,000 recorded flows (generated here: 200
// pods of 25 apps in 4 namespaces, L4 and HTTP records, outside addresses with and without DNS
// names, replies and dropped records), against a baseline in the same run: reading and parsing
// the same JSON lines without the engine. Figures are flows per second over the whole log.

import { parseFlowText } from '../src/flow/read.ts';
import type { Flow, FlowEvent } from '../src/flow/types.ts';
import { formatPolicies, generatePolicies } from '../src/generate/generate.ts';
import { defaultEngineFactory } from '../src/policy/default-engine.ts';
import { loadPolicyText } from '../src/policy-api/load.ts';
import { runAgainst } from '../src/policytest/against.ts';
import { fmtMs, fmtRatio, interleaved, median, rng, table } from './lib.ts';

const FLOWS = 100_000;
const PODS = 200;
const APPS = 25;
const NAMESPACES = 4;
const PORTS = [80, 443, 5432, 6379, 8080, 9090];

function flowLog(): string {
  const rand = rng(14);
  const pick = (n: number) => Math.floor(rand() * n);
  const pod = (i: number) => {
    const ns = `ns${i % NAMESPACES}`;
    const app = `a${i % APPS}`;
    return {
      ep: {
        identity: 1000 + (i % APPS) * NAMESPACES + (i % NAMESPACES),
        namespace: ns,
        pod_name: `${app}-5d8f9-${i}`,
        labels: [
          `k8s:app=${app}`,
          'k8s:io.cilium.k8s.policy.cluster=default',
          'k8s:io.cilium.k8s.policy.serviceaccount=default',
          `k8s:io.kubernetes.pod.namespace=${ns}`,
          'k8s:pod-template-hash=5d8f9',
        ],
      },
      ip: `10.1.${i >> 7}.${(i & 127) + 1}`,
    };
  };
  const lines: string[] = [];
  for (let n = 0; n < FLOWS; n++) {
    // Each app talks to a few others only, so the policies stay realistic in size.
    const si = pick(PODS);
    const src = pod(si);
    const kind = pick(100);
    let dst: { ep: Flow['destination']; ip: string };
    let port = PORTS[(si + pick(2)) % PORTS.length]!;
    let names: string[] | undefined;
    if (kind < 8) {
      dst = { ep: { identity: 16777300, labels: ['reserved:world'] }, ip: `203.0.113.${1 + pick(20)}` };
      port = 443;
      if (kind < 5) names = [`api${pick(10)}.example.com`];
    } else {
      const peerApp = (si % APPS) + 1 + pick(3);
      dst = pod((peerApp % APPS) + APPS * pick(PODS / APPS));
    }
    const http = kind >= 8 && kind < 30 && port === 8080;
    const f: Flow = {
      time: '2026-11-30T10:00:00.000000Z',
      uuid: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
      verdict: kind === 99 ? 'DROPPED' : 'FORWARDED',
      IP: { source: src.ip, destination: dst.ip, ipVersion: 'IPv4' },
      l4: { TCP: { source_port: 30000 + (n % 30000), destination_port: port } },
      source: src.ep,
      destination: dst.ep!,
      Type: http ? 'L7' : 'L3_L4',
      node_name: 'node-1',
      traffic_direction: http ? 'INGRESS' : 'EGRESS',
      is_reply: kind === 98,
    };
    if (http)
      f.l7 = {
        type: 'REQUEST',
        http: { method: pick(4) === 0 ? 'POST' : 'GET', url: `http://x/api/v1/items/${pick(50)}` },
      };
    if (names) f.destination_names = names;
    const ev: FlowEvent = { flow: f, node_name: 'node-1', time: f.time };
    lines.push(JSON.stringify(ev));
  }
  return `${lines.join('\n')}\n`;
}

export default async function run(): Promise<void> {
  const text = flowLog();
  const flows = parseFlowText('bench', text).flows;
  const generated = generatePolicies(flows, { generalizePaths: true });
  const policies = loadPolicyText('generated.yaml', formatPolicies(generated.policies), {
    lint: false,
  }).policies;
  const r = await interleaved(
    {
      'read + parse (baseline)': () => parseFlowText('bench', text),
      'generate --generalize-paths': () =>
        generatePolicies(parseFlowText('bench', text).flows, { generalizePaths: true }),
      'test --against (generated policies)': () => {
        const f = parseFlowText('bench', text);
        return runAgainst({ flows: f.flows, lines: f.lines, policies }, defaultEngineFactory);
      },
    },
    3,
  );
  const base = median(r['read + parse (baseline)']!.ms);
  const rows = [['variant', 'median', 'flows/s', 'vs read + parse']];
  for (const [name, s] of Object.entries(r)) {
    const ms = median(s.ms);
    rows.push([
      name,
      fmtMs(ms),
      Math.round((FLOWS / ms) * 1000).toLocaleString('en-US'),
      fmtRatio(ms / base),
    ]);
  }
  const check = runAgainst({ flows, policies }, defaultEngineFactory);
  process.stdout.write(
    `${FLOWS.toLocaleString('en-US')} flow records (${(text.length / 1e6).toFixed(1)} MB of JSON lines), ${generated.policies.length} policies generated (${generated.used.toLocaleString('en-US')} records used); replay of those records against them: ${check.dropped} dropped\n\n${table(rows)}\n`,
  );
}
