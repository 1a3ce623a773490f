// A child of bench/kafka-proxy.bench.ts: the Kafka proxy on loopback, in a process of its own,
// in front of the test broker (a fixed original destination), judging the guide's rules.
// Arguments: UPSTREAM_PORT. Prints {"port": N} when listening.

import { KafkaProxy } from '../src/proxy/kafka/proxy.ts';

const upstream = Number(process.argv[2]);
const pos = { file: 'bench', line: 1, column: 1 };
const sets = [
  {
    direction: 'EGRESS' as const,
    rules: [
      { pos, role: 'consume', topic: 'user-events' },
      { pos, role: 'produce', topic: 'processed-events' },
    ],
  },
];
const proxy = new KafkaProxy({
  originalDst: () => ({ address: '127.0.0.1', port: upstream }),
  lookup: (c) => ({
    sourceIdentity: 1001,
    source: { identity: 1001 },
    destination: { identity: 1002 },
    originalDst: c.originalDst,
    direction: 'EGRESS',
    ruleSets: () => sets,
  }),
  // records are built as under the agent, then dropped (no pipeline here)
  onFlow: () => {},
});
const a = await proxy.listen(0, '127.0.0.1');
process.stdout.write(`${JSON.stringify({ port: a.port })}\n`);
process.on('SIGTERM', () => void proxy.close().then(() => process.exit(0)));
