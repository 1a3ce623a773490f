import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { golden } from '../core/testing/golden.ts';
import type { RuleRef } from '../policy/types.ts';
import { type KafkaRecordInput, kafkaFlowRecord } from './kafka-record.ts';

const TESTDATA = join(import.meta.dirname, 'testdata');

const ref: RuleRef = {
  kind: 'CiliumNetworkPolicy',
  name: 'restrict-kafka-topics',
  namespace: 'data-processing',
  ruleIndex: 0,
  section: 'egress',
  entryIndex: 0,
  pos: { file: 'p.yaml', line: 1, column: 1 },
};

const base: KafkaRecordInput = {
  time: { seconds: 1592083822, nanos: 292379064 },
  nodeName: 'node-1',
  uuid: '00000000-0000-4000-8000-000000000012',
  verdict: 'FORWARDED',
  direction: 'EGRESS',
  client: {
    ip: '10.0.4.10',
    port: 40112,
    endpoint: { identity: 1001, namespace: 'data-processing', pod_name: 'kafka-consumer' },
  },
  server: {
    ip: '10.0.4.20',
    port: 9092,
    endpoint: { identity: 1002, namespace: 'data-processing', pod_name: 'kafka-broker' },
  },
  errorCode: 0,
  apiVersion: 11,
  apiKey: 'fetch',
  correlationId: 7,
  topic: 'user-events',
  allowedBy: { egress: [ref] },
  proxyPort: 15002,
};

const rows: Array<{ name: string; input: KafkaRecordInput }> = [
  { name: 'request-forwarded', input: base },
  {
    name: 'request-refused',
    input: {
      ...base,
      verdict: 'DROPPED',
      errorCode: 29,
      topic: 'payments',
      note: 'egress: topics not covered by any rule: payments',
    },
  },
  // protojson leaves zero values out: version 0, correlation id 0, no topic
  {
    name: 'request-zero-values',
    input: { ...base, apiKey: 'apiversions', apiVersion: 0, correlationId: 0, topic: '' },
  },
];

describe('kafkaFlowRecord', () => {
  for (const r of rows) {
    test(r.name, () =>
      golden(
        join(TESTDATA, `l7-kafka-${r.name}.golden.json`),
        `${JSON.stringify(kafkaFlowRecord(r.input), null, 2)}\n`,
      ),
    );
  }

  test('a refused request names no allowing policy', () => {
    const f = kafkaFlowRecord({ ...base, verdict: 'DROPPED', errorCode: 29 });
    assert.equal(f.egress_allowed_by, undefined);
    assert.equal(f.l7?.type, 'REQUEST');
  });
});
