import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type DNSRecordInput, dnsFlowRecord } from '../flow/dns-record.ts';
import type { Flow } from '../flow/types.ts';
import { FlowMetrics } from './metrics.ts';

const peer = (ip: string, port: number, identity: number) => ({ ip, port, endpoint: { identity } });
const base: DNSRecordInput = {
  time: new Date('2026-01-01T00:00:00Z'),
  uuid: 'u',
  nodeName: 'n',
  type: 'REQUEST',
  verdict: 'FORWARDED',
  transport: 'UDP',
  client: peer('10.0.0.1', 40000, 1000),
  server: peer('10.0.0.53', 53, 1001),
  query: 'api.example.com.',
  qtypes: ['A'],
};
const rec = (o: Partial<DNSRecordInput>): Flow => dnsFlowRecord({ ...base, ...o });

describe('hubble_dns_* metrics (issue 10)', () => {
  const rows: { name: string; flows: Flow[]; expect: string[]; absent?: string[] }[] = [
    {
      name: 'an allowed query: rcode empty, no addresses',
      flows: [rec({})],
      expect: [
        'hubble_dns_queries_total{rcode="",qtypes="A",ips_returned="0"} 1',
        'hubble_policy_verdicts_total{direction="egress",match="l7/dns",action="forwarded"} 1',
      ],
      absent: ['hubble_dns_responses_total{'],
    },
    {
      name: 'a refused query: Policy denied',
      flows: [rec({ verdict: 'DROPPED' }), rec({ verdict: 'DROPPED', qtypes: ['AAAA'] })],
      expect: [
        'hubble_dns_queries_total{rcode="Policy denied",qtypes="A",ips_returned="0"} 1',
        'hubble_dns_queries_total{rcode="Policy denied",qtypes="AAAA",ips_returned="0"} 1',
        'hubble_policy_verdicts_total{direction="egress",match="l7/dns",action="dropped"} 2',
      ],
    },
    {
      name: 'an answer with two addresses and a CNAME: response types counted per record type',
      flows: [
        rec({
          type: 'RESPONSE',
          ips: ['192.0.2.1', '192.0.2.2'],
          ttl: 30,
          cnames: ['edge.example.net.'],
          rcode: 0,
          rrtypes: ['CNAME', 'A', 'A'],
        }),
      ],
      expect: [
        'hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="2"} 1',
        'hubble_dns_response_types_total{type="CNAME",qtypes="A"} 1',
        'hubble_dns_response_types_total{type="A",qtypes="A"} 2',
      ],
      absent: ['hubble_dns_queries_total{'],
    },
    {
      name: 'an NXDOMAIN answer',
      flows: [rec({ type: 'RESPONSE', rcode: 3, rcodeText: 'Non-Existent Domain' })],
      expect: ['hubble_dns_responses_total{rcode="Non-Existent Domain",qtypes="A",ips_returned="0"} 1'],
    },
    {
      name: 'a record that is not DNS counts nothing here',
      flows: [{ time: 't', uuid: 'u', verdict: 'FORWARDED', Type: 'L3_L4' }],
      expect: [],
      absent: [
        'hubble_dns_queries_total{',
        'hubble_dns_responses_total{',
        'hubble_dns_response_types_total{',
      ],
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const m = new FlowMetrics();
      for (const f of r.flows) m.observe(f);
      const text = await m.text();
      for (const line of r.expect) assert.ok(text.includes(`${line}\n`), `missing ${line} in\n${text}`);
      for (const a of r.absent ?? []) assert.ok(!text.includes(a), `unexpected ${a}`);
    });
  }
});
