import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kafkaFlowRecord } from '../flow/kafka-record.ts';
import type { Flow } from '../flow/types.ts';
import { FlowMetrics } from './metrics.ts';

const record = (verdict: 'FORWARDED' | 'DROPPED', apiKey: string, topic: string): Flow =>
  kafkaFlowRecord({
    time: new Date(0),
    nodeName: 'n',
    verdict,
    direction: 'EGRESS',
    client: { ip: '10.0.0.1', port: 1, endpoint: { identity: 1001 } },
    server: { ip: '10.0.0.2', port: 9092, endpoint: { identity: 1002 } },
    errorCode: verdict === 'DROPPED' ? 29 : 0,
    apiVersion: 7,
    apiKey,
    correlationId: 1,
    topic,
  });

describe('hubble_kafka_requests_total', () => {
  it('counts Kafka request records by topic, key and error code; policy verdicts match l7/kafka', async () => {
    const m = new FlowMetrics();
    for (const f of [
      record('FORWARDED', 'produce', 'processed-events'),
      record('FORWARDED', 'produce', 'processed-events'),
      record('DROPPED', 'produce', 'payments'),
    ])
      m.observe(f);
    const text = await m.text();
    for (const line of [
      'hubble_kafka_requests_total{topic="processed-events",api_key="produce",error_code="0"} 2',
      'hubble_kafka_requests_total{topic="payments",api_key="produce",error_code="29"} 1',
      'hubble_policy_verdicts_total{direction="egress",match="l7/kafka",action="forwarded"} 2',
      'hubble_policy_verdicts_total{direction="egress",match="l7/kafka",action="dropped"} 1',
      'hubble_flows_processed_total{protocol="Kafka",type="L7",subtype="Kafka",verdict="DROPPED"} 1',
    ]) {
      assert.ok(text.includes(line), `${line}\n${text}`);
    }
  });

  it('is absent until a Kafka record is seen, and separate per registry', async () => {
    const a = new FlowMetrics();
    const b = new FlowMetrics();
    a.observe(record('FORWARDED', 'fetch', 't'));
    assert.match(await a.text(), /hubble_kafka_requests_total\{topic="t",api_key="fetch",error_code="0"\} 1/);
    assert.doesNotMatch(await b.text(), /hubble_kafka_requests_total\{/);
  });
});
