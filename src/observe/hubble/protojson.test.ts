// The strict protojson check: every kind of record Seawall writes parses as flow.Flow (unknown
// fields rejected, canonical protojson form), and the check itself rejects what protojson rejects.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { httpFlowRecord } from '../../flow/l7-record.ts';
import { type FlowMeta, flowFromVerdict } from '../../flow/record.ts';
import { allowIngress, decision, flowEngine, ref } from '../../flow/test-support.ts';
import { FLOWS } from '../../flow/testing/flows.ts';
import type { Flow } from '../../flow/types.ts';
import type { FlowRequest, Verdict } from '../../policy/types.ts';
import { parseRFC3339, protoJSONProblems, readProtoJSON } from './protojson.ts';
import { hubbleType } from './schema.ts';

const FlowT = hubbleType('flow.Flow');
const TESTDATA = join(import.meta.dirname, '../../flow/testdata');

const fe = { kind: 'endpoint', name: 'frontend', namespace: 'production' } as const;
const be = { kind: 'endpoint', name: 'backend', namespace: 'production' } as const;
const meta: FlowMeta = {
  time: { seconds: 1592083822, nanos: 292379064 },
  nodeName: 'node-1',
  srcIP: '10.0.1.8',
  dstIP: '10.0.1.11',
  sport: 45084,
  uuid: '00000000-0000-4000-8000-000000000001',
  srcEndpointID: 101,
  dstEndpointID: 102,
};
const deniedIngress: Verdict = {
  allowed: false,
  verdict: 'DROPPED',
  reason: 'POLICY_DENY',
  decidedBy: 'INGRESS',
  srcIdentity: 1001,
  dstIdentity: 1002,
  explanation: [],
  ingress: decision({
    direction: 'INGRESS',
    allowed: false,
    reason: 'POLICY_DENY',
    matchType: 'L4_ONLY',
    deniedBy: [ref('CiliumClusterwideNetworkPolicy', 'deny-ssh', undefined, 'ingressDeny')],
  }),
};
function withoutKey<T extends object, K extends keyof T>(o: T, k: K): Omit<T, K> {
  const { [k]: _, ...rest } = o;
  return rest;
}
const tcp = (dport: number): FlowRequest => ({ src: fe, dst: be, protocol: 'TCP', dport });

/** Records as the agent builds them: flowFromVerdict and the HTTP record builder. */
function builtRecords(): Record<string, Flow> {
  const e = flowEngine();
  const peer = (ip: string, port: number, pod: string, identity: number) => ({
    ip,
    port,
    endpoint: { identity, namespace: 'production', pod_name: pod },
  });
  const http = {
    time: new Date('2025-01-02T03:04:05.5Z'),
    nodeName: 'node-1',
    type: 'REQUEST' as const,
    verdict: 'FORWARDED' as const,
    direction: 'INGRESS' as const,
    client: peer('10.0.1.8', 45084, 'frontend', 1001),
    server: peer('fd00::11', 80, 'backend', 1002),
    method: 'GET',
    url: 'http://backend/public',
    protocol: 'HTTP/1.1',
    headers: [['host', 'backend']] as const,
    allowedBy: { ingress: [ref('CiliumNetworkPolicy', 'backend-http', 'production', 'ingress')] },
    proxyPort: 15001,
  };
  return {
    'verdict allowed ingress with revision': flowFromVerdict(e, tcp(8080), allowIngress(), {
      ...meta,
      policyRevision: 12,
    }),
    'verdict explicit deny as drop event': flowFromVerdict(e, tcp(22), deniedIngress, {
      ...meta,
      eventKind: 'drop',
    }),
    'verdict with ethernet, flags and random uuid': flowFromVerdict(e, tcp(443), allowIngress(), {
      ...withoutKey(meta, 'uuid'),
      ethernet: { source: '02:00:00:00:00:01', destination: '02:00:00:00:00:02' },
      tcpFlags: { SYN: true, ACK: true },
    }),
    'verdict icmp echo reply (type 0) with code': flowFromVerdict(
      e,
      { src: fe, dst: be, protocol: 'ICMP', icmp: { type: 0, family: 'IPv4' } },
      allowIngress(),
      { ...withoutKey(meta, 'sport'), icmpCode: 3 },
    ),
    'verdict sctp': flowFromVerdict(
      e,
      { src: fe, dst: be, protocol: 'SCTP', dport: 9 },
      allowIngress(),
      meta,
    ),
    'http request': httpFlowRecord(http),
    'http response': httpFlowRecord({ ...http, type: 'RESPONSE', code: 200, latencyNs: 1_500_000n }),
    'http request dropped with note': httpFlowRecord({
      ...http,
      verdict: 'DROPPED',
      note: 'denied by L7 rules',
    }),
  };
}

function goldenRecords(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of readdirSync(TESTDATA)) {
    if (/^(record|l7)-.*\.golden\.json$/.test(f))
      out[f] = JSON.parse(readFileSync(join(TESTDATA, f), 'utf8'));
  }
  return out;
}

describe('strict protojson: every record Seawall writes is a flow.Flow', () => {
  const all: Record<string, unknown> = {
    ...goldenRecords(),
    ...Object.fromEntries(Object.entries(FLOWS).map(([k, v]) => [`fixture ${k}`, v])),
    ...builtRecords(),
  };
  assert.ok(Object.keys(all).length >= 20, 'the corpus is not empty');
  for (const [name, rec] of Object.entries(all)) {
    it(name, () => {
      assert.deepEqual(protoJSONProblems(FlowT, rec), []);
      // and it encodes and decodes back to the same protojson
      const msg = FlowT.fromObject(readProtoJSON(FlowT, rec));
      const back = FlowT.decode(FlowT.encode(msg).finish());
      assert.equal(FlowT.verify(back), null);
    });
  }
});

describe('strict protojson rejects what protojson rejects', () => {
  const base = FLOWS.tcpAllowedIngress!;
  const rows: { name: string; flow: unknown; problem: RegExp }[] = [
    {
      name: 'unknown top-level field',
      flow: { ...base, reply_ish: true },
      problem: /Flow\.reply_ish: unknown field of flow\.Flow/,
    },
    {
      name: 'unknown nested field',
      flow: { ...base, source: { ...base.source, pod: 'x' } },
      problem: /Flow\.source\.pod: unknown field of flow\.Endpoint/,
    },
    {
      name: 'bad enum name',
      flow: { ...base, verdict: 'ALLOWED' },
      problem: /"ALLOWED" is not a value of enum Verdict/,
    },
    { name: 'enum as known number', flow: { ...base, verdict: 1 }, problem: /protojson writes FORWARDED/ },
    {
      name: 'uint64 as a JSON number',
      flow: { ...base, ingress_allowed_by: [{ name: 'p', revision: 3 }] },
      problem: /revision: 64-bit integer as number 3/,
    },
    {
      name: 'uint32 as a string',
      flow: { ...base, proxy_port: '80' },
      problem: /proxy_port: 32-bit integer as string/,
    },
    { name: 'uint32 negative', flow: { ...base, proxy_port: -1 }, problem: /-1 out of range for uint32/ },
    {
      name: 'two l4 protocols (oneof)',
      flow: { ...base, l4: { TCP: {}, UDP: {} } },
      problem: /oneof protocol already has TCP/,
    },
    {
      name: 'two l7 records (oneof)',
      flow: { ...base, l7: { http: { code: 200 }, dns: { query: 'a.' } } },
      problem: /oneof record already has http/,
    },
    {
      name: 'time not RFC 3339',
      flow: { ...base, time: '2025-01-02 03:04:05Z' },
      problem: /not an RFC 3339 time/,
    },
    {
      name: 'time with offset',
      flow: { ...base, time: '2025-01-02T03:04:05+01:00' },
      problem: /not protojson's form/,
    },
    {
      name: 'time with 2 fraction digits',
      flow: { ...base, time: '2025-01-02T03:04:05.12Z' },
      problem: /not protojson's form/,
    },
    { name: 'no 30 February', flow: { ...base, time: '2025-02-30T03:04:05Z' }, problem: /no such date/ },
    {
      name: 'is_reply not a bool',
      flow: { ...base, is_reply: 'false' },
      problem: /is_reply: expected true or false/,
    },
    { name: 'zero scalar written', flow: { ...base, proxy_port: 0 }, problem: /proxy_port: zero value 0/ },
    { name: 'empty string written', flow: { ...base, Summary: '' }, problem: /Summary: zero value ""/ },
    { name: 'empty list written', flow: { ...base, source_names: [] }, problem: /source_names: empty list/ },
    { name: 'null written', flow: { ...base, l7: null }, problem: /l7: null/ },
    {
      name: 'field given by both names',
      flow: { ...base, nodeName: 'x' },
      problem: /field node_name given twice/,
    },
    {
      name: 'list where a message is',
      flow: { ...base, IP: [] },
      problem: /expected a IP object, got a list/,
    },
    { name: 'lone surrogate', flow: { ...base, uuid: '\ud800' }, problem: /not valid UTF-8/ },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const problems = protoJSONProblems(FlowT, r.flow);
      assert.ok(
        problems.some((p) => r.problem.test(p)),
        `expected ${r.problem}, got ${JSON.stringify(problems)}`,
      );
    });
  }

  it('lenient mode accepts what protojson.Unmarshal accepts (enum numbers, lowerCamel names, int64 numbers)', () => {
    const { traffic_direction: _, node_name: __, ...rest } = base;
    const loose = { ...rest, verdict: 1, trafficDirection: 'INGRESS', nodeName: 'node-1', proxy_port: '80' };
    assert.deepEqual(
      protoJSONProblems(FlowT, { ...loose, ingress_allowed_by: [{ revision: 3 }] }, { canonical: false }),
      [],
    );
    assert.ok(protoJSONProblems(FlowT, loose).length > 0, 'canonical mode rejects the same record');
  });
});

describe('parseRFC3339', () => {
  const rows: { name: string; s: string; want: { seconds: number; nanos: number } | RegExp }[] = [
    { name: 'epoch', s: '1970-01-01T00:00:00Z', want: { seconds: 0, nanos: 0 } },
    {
      name: 'nanoseconds',
      s: '2020-06-13T21:30:22.292379064Z',
      want: { seconds: 1592083822, nanos: 292379064 },
    },
    { name: 'milliseconds', s: '2020-06-13T21:30:22.5Z', want: { seconds: 1592083822, nanos: 500000000 } },
    { name: 'offset', s: '1970-01-01T01:00:00+01:00', want: { seconds: 0, nanos: 0 } },
    { name: 'leap day', s: '2024-02-29T00:00:00Z', want: { seconds: 1709164800, nanos: 0 } },
    { name: 'not a leap year', s: '2023-02-29T00:00:00Z', want: /no such date/ },
    { name: 'leap second', s: '2016-12-31T23:59:60Z', want: /no such time/ },
    { name: 'ten fraction digits', s: '2020-06-13T21:30:22.1234567890Z', want: /not an RFC 3339/ },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const got = parseRFC3339(r.s);
      if (r.want instanceof RegExp) assert.match(String(got), r.want);
      else assert.deepEqual(got, r.want);
    });
  }
});

describe('parseRFC3339 within the second parsed last (checked without the regex)', () => {
  const primed = '2020-06-13T21:30:22Z';
  const rows: { name: string; s: string; want: { seconds: number; nanos: number } | RegExp }[] = [
    { name: 'the same second', s: primed, want: { seconds: 1592083822, nanos: 0 } },
    { name: 'one digit', s: '2020-06-13T21:30:22.5Z', want: { seconds: 1592083822, nanos: 500000000 } },
    { name: 'six digits', s: '2020-06-13T21:30:22.000123Z', want: { seconds: 1592083822, nanos: 123000 } },
    {
      name: 'nine digits',
      s: '2020-06-13T21:30:22.292379064Z',
      want: { seconds: 1592083822, nanos: 292379064 },
    },
    { name: 'a dot without digits', s: '2020-06-13T21:30:22.Z', want: /not an RFC 3339/ },
    { name: 'ten digits', s: '2020-06-13T21:30:22.1234567890Z', want: /not an RFC 3339/ },
    { name: 'a letter among the digits', s: '2020-06-13T21:30:22.12x4Z', want: /not an RFC 3339/ },
    { name: 'an offset', s: '2020-06-13T21:30:22+01:00', want: { seconds: 1592080222, nanos: 0 } },
    { name: 'the next second', s: '2020-06-13T21:30:23.1Z', want: { seconds: 1592083823, nanos: 100000000 } },
  ];
  for (const r of rows) {
    it(r.name, () => {
      parseRFC3339(primed);
      const got = parseRFC3339(r.s);
      if (r.want instanceof RegExp) assert.match(String(got), r.want);
      else assert.deepEqual(got, r.want);
    });
  }
});
