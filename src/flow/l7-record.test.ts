import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { RuleRef } from '../policy/types.ts';
import { type HTTPRecordInput, httpFlowRecord } from './l7-record.ts';

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), 'testdata');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function golden(name: string, actual: unknown): void {
  const path = join(TESTDATA, `l7-http-${name}.golden.json`);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (UPDATE) writeFileSync(path, text);
  assert.equal(text, readFileSync(path, 'utf8'), `golden ${path} (UPDATE_GOLDEN=1 to refresh)`);
}

const ref: RuleRef = {
  kind: 'CiliumNetworkPolicy',
  name: 'backend-http',
  namespace: 'production',
  ruleIndex: 0,
  section: 'ingress',
  entryIndex: 0,
  pos: { file: 'p.yaml', line: 1, column: 1 },
};

const base: HTTPRecordInput = {
  time: { seconds: 1592083822, nanos: 292379064 },
  nodeName: 'node-1',
  uuid: '00000000-0000-4000-8000-000000000001',
  type: 'REQUEST',
  verdict: 'FORWARDED',
  direction: 'INGRESS',
  client: {
    ip: '10.0.1.8',
    port: 45084,
    endpoint: { identity: 1001, namespace: 'production', pod_name: 'frontend' },
  },
  server: {
    ip: '10.0.1.11',
    port: 80,
    endpoint: { identity: 1002, namespace: 'production', pod_name: 'backend' },
  },
  method: 'GET',
  url: 'http://backend/public',
  protocol: 'HTTP/1.1',
  headers: [
    ['host', 'backend'],
    ['user-agent', 'curl/8.0'],
  ],
  allowedBy: { ingress: [ref] },
  proxyPort: 15001,
};

const rows: Array<{ name: string; input: HTTPRecordInput }> = [
  { name: 'request-forwarded', input: base },
  {
    name: 'request-dropped',
    input: {
      ...base,
      method: 'POST',
      url: 'http://backend/admin',
      verdict: 'DROPPED',
      note: 'ingress: no HTTP rule matched',
    },
  },
  {
    name: 'response',
    input: {
      ...base,
      type: 'RESPONSE',
      code: 200,
      latencyNs: 3_400_000n,
      headers: [['content-type', 'text/plain']],
    },
  },
  {
    name: 'grpc-request-both-directions',
    input: {
      ...base,
      method: 'POST',
      url: 'http://backend:50051/shop.Cart/Add',
      protocol: 'HTTP/2',
      allowedBy: { ingress: [ref], egress: [{ ...ref, name: 'frontend-egress', section: 'egress' }] },
    },
  },
];

describe('httpFlowRecord (Hubble L7 shape)', () => {
  for (const r of rows) test(r.name, () => golden(r.name, httpFlowRecord(r.input)));

  test('a response swaps the endpoints and is a reply', () => {
    const f = httpFlowRecord({ ...base, type: 'RESPONSE', code: 403 });
    assert.equal(f.is_reply, true);
    assert.equal(f.IP?.source, '10.0.1.11');
    assert.equal(f.source?.pod_name, 'backend');
    assert.equal(f.event_type?.type, 129);
    assert.equal(f.Type, 'L7');
    assert.equal(f.ingress_allowed_by, undefined);
  });
});
