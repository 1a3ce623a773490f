import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { golden } from '../core/testing/golden.ts';
import { type DNSRecordInput, dnsFlowRecord } from './dns-record.ts';

const here = new URL('.', import.meta.url).pathname;
const base: Omit<DNSRecordInput, 'type' | 'verdict'> = {
  time: { seconds: 1767225600, nanos: 123_456_000 },
  uuid: '00000000-0000-4000-8000-000000000001',
  nodeName: 'node-1',
  transport: 'UDP',
  client: {
    ip: '10.0.1.30',
    port: 40123,
    endpoint: {
      ID: 7,
      identity: 12345,
      cluster_name: 'default',
      namespace: 'production',
      pod_name: 'api-client',
    },
  },
  server: {
    ip: '10.0.9.10',
    port: 53,
    endpoint: { identity: 23456, namespace: 'kube-system', pod_name: 'coredns' },
  },
  query: 'api.github.com.',
  qtypes: ['A'],
};

const rows: Array<{ name: string; input: DNSRecordInput }> = [
  { name: 'request-forwarded', input: { ...base, type: 'REQUEST', verdict: 'FORWARDED' } },
  { name: 'request-refused', input: { ...base, type: 'REQUEST', verdict: 'DROPPED', transport: 'TCP' } },
  {
    name: 'response-cname-chain',
    input: {
      ...base,
      type: 'RESPONSE',
      verdict: 'FORWARDED',
      ips: ['192.0.2.10', '2001:db8::10'],
      ttl: 60,
      cnames: ['github.map.fastly.net.'],
      rcode: 0,
      rcodeText: 'No Error',
      rrtypes: ['CNAME', 'A', 'AAAA'],
      latencyNs: 1_234_567,
    },
  },
  {
    name: 'response-nxdomain',
    input: {
      ...base,
      type: 'RESPONSE',
      verdict: 'FORWARDED',
      ttl: 4294967295,
      rcode: 3,
      rcodeText: 'Non-Existent Domain',
    },
  },
];

describe('dnsFlowRecord', () => {
  for (const r of rows) {
    test(r.name, () => {
      golden(
        join(here, 'testdata', `dns-${r.name}.golden.json`),
        `${JSON.stringify(dnsFlowRecord(r.input), null, 2)}\n`,
      );
    });
  }
});

describe('dnsFlowRecord: copies of the input, unless owned', () => {
  /** The input's objects (lists and endpoints) that the record holds as they are. */
  const sharedWith = (input: DNSRecordInput, owned: boolean): string[] => {
    const f = dnsFlowRecord(input, owned);
    const dns = (f.l7 as { dns: Record<string, unknown> }).dns;
    const pairs: Array<[string, unknown, unknown]> = [
      ['ips', dns.ips, input.ips],
      ['cnames', dns.cnames, input.cnames],
      ['qtypes', dns.qtypes, input.qtypes],
      ['rrtypes', dns.rrtypes, input.rrtypes],
      ['destination', f.destination, input.client.endpoint],
      ['source', f.source, input.server.endpoint],
    ];
    return pairs.filter(([, a, b]) => a === b).map(([k]) => k);
  };
  const response = rows[2]!.input;
  const all = ['ips', 'cnames', 'qtypes', 'rrtypes', 'destination', 'source'];
  for (const row of [
    {
      name: 'not owned (the proxy: mirror endpoints, shared answer lists): nothing shared',
      owned: false,
      want: [],
    },
    { name: 'owned (the agent: a message expanded once): used as they are', owned: true, want: all },
  ]) {
    test(row.name, () => {
      assert.deepEqual(sharedWith(response, row.owned), row.want);
      assert.equal(
        JSON.stringify(dnsFlowRecord(response, row.owned)),
        JSON.stringify(dnsFlowRecord(response)),
      );
    });
  }
});
