// L7 matcher throughput: matchHTTP (RE2 through re2-wasm) and matchDNS (hand-written label matcher),
// each against a baseline measured in the same run: plain string equality over the same inputs.

import { compileDNSRules, matchDNS } from '../src/l7/dns.ts';
import { compileHTTPRules, type HTTPRequest, matchHTTP } from '../src/l7/http.ts';
import type { SourcePos } from '../src/policy-api/issue.ts';
import type { PortRuleDNS, PortRuleHTTP } from '../src/policy-api/types.ts';
import { fmtRatio, interleaved, median, rng, table } from './lib.ts';

const N = 20_000;
const pos: SourcePos = { file: 'bench', line: 1, column: 1 };

function httpInputs(): HTTPRequest[] {
  const r = rng(7);
  const methods = ['GET', 'GET', 'POST', 'PUT', 'DELETE', 'HEAD'];
  const paths = ['/api/v1/items', '/api/v1/items/42', '/public/index.html', '/admin', '/search?q=shoes'];
  return Array.from({ length: N }, () => ({
    method: methods[Math.floor(r() * methods.length)]!,
    path: paths[Math.floor(r() * paths.length)]!,
    host: r() < 0.5 ? 'shop.example' : 'shop.example:8080',
    headers: [
      ['user-agent', 'bench'],
      ['x-env', r() < 0.5 ? 'prod' : 'dev'],
    ],
  }));
}

function dnsInputs(): string[] {
  const r = rng(11);
  const names = [
    'api.example.com',
    'cdn.partner.example.',
    'EU.CDN.partner.example',
    'edge-eu-1-node.partner.example',
    'evil.test',
    'a.b.c.d.e.f.example.org',
  ];
  return Array.from({ length: N }, () => names[Math.floor(r() * names.length)]!);
}

const httpRules: PortRuleHTTP[] = [
  { pos, method: 'GET|HEAD', path: '/public/.*' },
  { pos, method: 'POST', path: '/api/v1/items', headers: ['X-Env: prod'] },
  { pos, method: 'GET', path: '/api/v1/items(/[0-9]+)?', host: 'shop\\.example(:[0-9]+)?' },
];

const dnsRules: PortRuleDNS[] = [
  { pos, matchName: 'api.example.com' },
  { pos, matchPattern: '*.partner.example' },
  { pos, matchPattern: 'edge*node.partner.example' },
  { pos, matchPattern: '**.example.org' },
];

export default async function run(): Promise<void> {
  const reqs = httpInputs();
  const names = dnsInputs();
  const httpPolicy = compileHTTPRules(httpRules);
  const dnsPolicy = compileDNSRules(dnsRules);
  let sink = 0;

  const samples = await interleaved(
    {
      'http baseline (string ===)': () => {
        for (const q of reqs) if (q.method === 'GET' && q.path === '/api/v1/items') sink++;
      },
      matchHTTP: () => {
        for (const q of reqs) if (matchHTTP(httpPolicy, q).allowed) sink++;
      },
      'dns baseline (string ===)': () => {
        for (const q of names) if (q === 'api.example.com') sink++;
      },
      matchDNS: () => {
        for (const q of names) if (matchDNS(dnsPolicy, q).allowed) sink++;
      },
    },
    7,
  );

  const opsPerSec = (name: string) => N / (median(samples[name]!.ms) / 1000);
  const row = (name: string, base: string) => {
    const ops = opsPerSec(name);
    return [name, ops.toFixed(0), fmtRatio(opsPerSec(base) / ops)];
  };
  const rows = [
    ['variant', 'ops/s', 'slowdown vs baseline'],
    row('http baseline (string ===)', 'http baseline (string ===)'),
    row('matchHTTP', 'http baseline (string ===)'),
    row('dns baseline (string ===)', 'dns baseline (string ===)'),
    row('matchDNS', 'dns baseline (string ===)'),
  ];
  process.stdout.write(`${table(rows)}\n(${N} inputs per run, median of 7; sink ${sink > 0 ? 'ok' : '0'})\n`);
}
