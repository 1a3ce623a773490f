// Issue 12: `seawall test --live` sends the Kafka flows of a PolicyTest as real requests (the
// flow's key, version, client id and topics, from the source pod) through the node's Kafka proxy
// to the test broker, and checks what each got: the guide's Kafka example passes live.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { type LiveFlowResult, runLive } from '../../src/testbed/live-test.ts';
import { liveSkipReason } from './helpers.ts';

const FILE = join(
  import.meta.dirname,
  '..',
  '..',
  'examples',
  'guide',
  'tests',
  '08-restrict-kafka-topics.test.yaml',
);
const skip = liveSkipReason() ?? (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH})`);

it("the guide's Kafka example passes live, its Kafka flows sent as real requests", {
  skip,
  timeout: 300_000,
}, async () => {
  const lines: string[] = [];
  const code = await runLive([FILE], { output: 'json', write: (l) => lines.push(l) });
  const results = lines.map((l) => JSON.parse(l) as LiveFlowResult);
  assert.deepEqual(
    results.filter((r) => r.outcome !== 'pass'),
    results.filter((r) => r.outcome === 'skip' && r.note?.startsWith('dns request')),
    'every flow passes (the DNS query waits for the DNS proxy)',
  );
  assert.equal(code, 0);
  const kafka = results.filter((r) => r.port === 9092 && r.records?.[0]?.startsWith('Kafka'));
  // every Kafka request judged by the proxy (the production broker is refused at L3/L4 first)
  assert.equal(kafka.length, 23 + 5);
  const byName = new Map(kafka.map((r) => [`${r.test}: ${r.name}`, r.records?.[0]]));
  assert.equal(byName.get('restrict-kafka-topics: Fetch another topic'), 'Kafka refused, error_code 29');
  assert.equal(byName.get('restrict-kafka-topics: DescribeGroups'), 'Kafka refused, error_code 29');
  // an all-topics Metadata refused: no topic to carry the code, the proxy's empty answer
  assert.equal(
    byName.get('restrict-kafka-topics: Metadata for all topics'),
    'Kafka refused, error_code (none)',
  );
  assert.equal(
    byName.get('restrict-kafka-topics: Produce to processed-events'),
    'Kafka answered, error_code 0',
  );
  assert.equal(
    byName.get('restrict-kafka-topics-as-in-the-guide: ApiVersions is refused (mistake 7)'),
    'Kafka refused, error_code 29',
  );
});
