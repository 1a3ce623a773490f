// The Kafka frame parser and the refusal responses, per API key and version:
//  - kafkajs as an independent oracle: its own encoders build every version of every request it
//    has; the proxy must read the header and topics from them, and kafkajs's own decoders must read
//    the proxy's refusal as TOPIC_AUTHORIZATION_FAILED (what a kafkajs application sees);
//  - every version of every schema round-trips (classic and flexible encodings);
//  - hand-built flexible frames with non-empty tagged fields (as librdkafka's ApiVersions v3);
//  - malformed frames are KafkaParseErrors that say where.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import {
  canRefuse,
  decodeResponse,
  encodeRequest,
  errorCodes,
  KafkaParseError,
  parseRequest,
  refusalResponse,
  requestBodyFor,
  topicIdName,
  UNPARSED_TOPIC,
} from './protocol.ts';
import { SCHEMAS } from './schema.ts';
import { Writer } from './wire.ts';

const require = createRequire(import.meta.url);
const kjs = (p: string) => require(`kafkajs/src/protocol/requests/${p}`);
const kjsFrame = require('kafkajs/src/protocol/request.js') as (a: unknown) => Promise<{ buffer: Buffer }>;

interface OracleRow {
  name: string;
  dir: string;
  key: number;
  versions: number[];
  args: Record<string, unknown>;
  topics: string[];
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const part = (partition: number) => ({
  partition,
  fetchOffset: '0',
  maxBytes: 100,
  timestamp: -1,
  offset: '5',
  messages: [{ value: 'x' }],
});

const ORACLE: OracleRow[] = [
  {
    name: 'Produce',
    dir: 'produce',
    key: 0,
    versions: range(0, 7),
    args: {
      acks: -1,
      timeout: 1000,
      topicData: [
        { topic: 'orders', partitions: [part(0), part(1)] },
        { topic: 'audit', partitions: [part(0)] },
      ],
    },
    topics: ['orders', 'audit'],
  },
  {
    name: 'Fetch',
    dir: 'fetch',
    key: 1,
    versions: range(0, 11),
    args: {
      replicaId: -1,
      maxWaitTime: 100,
      minBytes: 1,
      maxBytes: 1000,
      topics: [{ topic: 'orders', partitions: [part(0)] }],
    },
    topics: ['orders'],
  },
  {
    name: 'ListOffsets',
    dir: 'listOffsets',
    key: 2,
    versions: range(0, 3),
    args: { replicaId: -1, isolationLevel: 1, topics: [{ topic: 'orders', partitions: [part(0)] }] },
    topics: ['orders'],
  },
  {
    name: 'Metadata',
    dir: 'metadata',
    key: 3,
    versions: range(0, 6),
    args: { topics: ['orders', 'audit'] },
    topics: ['orders', 'audit'],
  },
  {
    name: 'OffsetCommit',
    dir: 'offsetCommit',
    key: 8,
    versions: range(0, 5),
    args: {
      groupId: 'g',
      groupGenerationId: 1,
      memberId: 'm',
      retentionTime: -1,
      topics: [{ topic: 'orders', partitions: [part(0)] }],
    },
    topics: ['orders'],
  },
  {
    name: 'OffsetFetch',
    dir: 'offsetFetch',
    key: 9,
    versions: range(1, 4),
    args: { groupId: 'g', topics: [{ topic: 'orders', partitions: [part(0)] }] },
    topics: ['orders'],
  },
  {
    name: 'FindCoordinator',
    dir: 'findCoordinator',
    key: 10,
    versions: range(0, 2),
    args: { groupId: 'g', coordinatorKey: 'g', coordinatorType: 0 },
    topics: [],
  },
  {
    name: 'JoinGroup',
    dir: 'joinGroup',
    key: 11,
    versions: range(0, 5),
    args: {
      groupId: 'g',
      sessionTimeout: 10000,
      rebalanceTimeout: 10000,
      memberId: '',
      protocolType: 'consumer',
      groupProtocols: [{ name: 'range', metadata: Buffer.from('m') }],
    },
    topics: [],
  },
  {
    name: 'Heartbeat',
    dir: 'heartbeat',
    key: 12,
    versions: range(0, 3),
    args: { groupId: 'g', groupGenerationId: 1, memberId: 'm' },
    topics: [],
  },
  {
    name: 'LeaveGroup',
    dir: 'leaveGroup',
    key: 13,
    versions: range(0, 3),
    args: { groupId: 'g', memberId: 'm', members: [{ memberId: 'm' }] },
    topics: [],
  },
  {
    name: 'SyncGroup',
    dir: 'syncGroup',
    key: 14,
    versions: range(0, 3),
    args: { groupId: 'g', generationId: 1, memberId: 'm', groupAssignment: [] },
    topics: [],
  },
  {
    name: 'DescribeGroups',
    dir: 'describeGroups',
    key: 15,
    versions: range(0, 2),
    args: { groupIds: ['g'] },
    topics: [],
  },
  { name: 'ListGroups', dir: 'listGroups', key: 16, versions: range(0, 2), args: {}, topics: [] },
  { name: 'ApiVersions', dir: 'apiVersions', key: 18, versions: range(0, 2), args: {}, topics: [] },
  {
    name: 'CreateTopics',
    dir: 'createTopics',
    key: 19,
    versions: range(0, 3),
    args: { topics: [{ topic: 'orders', numPartitions: 1, replicationFactor: 1 }], timeout: 1000 },
    topics: ['orders'],
  },
  {
    name: 'DeleteTopics',
    dir: 'deleteTopics',
    key: 20,
    versions: range(0, 1),
    args: { topics: ['orders', 'audit'], timeout: 1000 },
    topics: ['orders', 'audit'],
  },
  {
    name: 'DeleteRecords',
    dir: 'deleteRecords',
    key: 21,
    versions: range(0, 1),
    args: { topics: [{ topic: 'orders', partitions: [{ partition: 0, offset: '3' }] }] },
    topics: ['orders'],
  },
  {
    name: 'InitProducerId',
    dir: 'initProducerId',
    key: 22,
    versions: range(0, 1),
    args: { transactionalId: null, transactionTimeout: 1000 },
    topics: [],
  },
  {
    name: 'CreatePartitions',
    dir: 'createPartitions',
    key: 37,
    versions: range(0, 1),
    args: { topicPartitions: [{ topic: 'orders', count: 3 }] },
    topics: ['orders'],
  },
];

/** kafkajs's error for a response: the first protocol error's type, from parse or an aggregate. */
function kafkajsType(e: unknown): string | undefined {
  const x = e as {
    type?: string;
    errors?: Array<{ type?: string }>;
    partitions?: Array<{ error?: { type?: string } }>;
  };
  return x.type ?? x.errors?.[0]?.type ?? x.partitions?.[0]?.error?.type;
}

describe('Kafka requests as kafkajs encodes them (an independent encoder)', () => {
  for (const row of ORACLE) {
    for (const v of row.versions) {
      it(`${row.name} v${v}: header and topics read; kafkajs reads the refusal as TOPIC_AUTHORIZATION_FAILED`, async () => {
        const req = kjs(`${row.dir}/v${v}/request.js`)(row.args);
        const { buffer } = await kjsFrame({ correlationId: 4242, clientId: 'app-1', request: req });
        const p = parseRequest(buffer);
        assert.deepEqual(
          {
            key: p.apiKey,
            version: p.apiVersion,
            correlation: p.correlationId,
            client: p.clientID,
            topics: p.topics,
          },
          { key: row.key, version: v, correlation: 4242, client: 'app-1', topics: row.topics },
        );
        const answer = refusalResponse(p);
        assert.ok(answer, 'a refusal response');
        assert.equal(answer.readInt32BE(0), answer.length - 4, 'size prefix');
        assert.equal(answer.readInt32BE(4), 4242, 'the correlation id is the request’s');
        const mod = kjs(`${row.dir}/v${v}/response.js`);
        // DeleteRecords's response module is a factory of the request's topics
        const { decode, parse } = typeof mod === 'function' ? mod(row.args) : mod;
        const decoded = await decode(answer.subarray(8));
        await assert.rejects(
          async () => parse(decoded),
          (e) => kafkajsType(e) === 'TOPIC_AUTHORIZATION_FAILED',
        );
      });
    }
  }
});

const TOPICAL = new Set([0, 1, 2, 3, 8, 9, 19, 20, 21, 23, 37]);
/** Versions that name topics by id only. */
const BY_ID: Record<number, number> = { 0: 13, 1: 13 };

describe('every schema version round-trips (classic and flexible)', () => {
  for (const m of SCHEMAS.values()) {
    for (let v = 0; v <= m.maxVersion; v++) {
      it(`${m.name} v${v}${v >= m.flexibleFrom ? ' (flexible)' : ''}`, () => {
        const topics = TOPICAL.has(m.key) ? ['user-events', 'payments'] : [];
        const frame = encodeRequest(
          { apiKey: m.key, apiVersion: v, correlationId: -5, clientID: 'c' },
          requestBodyFor(m.key, v, topics),
        );
        const p = parseRequest(frame);
        assert.equal(p.correlationId, -5);
        assert.equal(p.clientID, 'c');
        const byId = BY_ID[m.key] !== undefined && v >= BY_ID[m.key]!;
        // requestBodyFor names topics; versions that carry only ids get the ids' names
        if (!byId) assert.deepEqual(p.topics, topics);
        else
          assert.ok(
            p.topics.every((t) => t.startsWith('topic-id:')),
            p.topics.join(),
          );
        const answer = refusalResponse(p);
        assert.ok(answer, 'every schema key can be refused with a response');
        const codes = errorCodes(decodeResponse(answer, m.key, v));
        if (m.key === 3 && topics.length === 0) assert.deepEqual(codes, []);
        else assert.ok(codes.length > 0 && codes.every((c) => c === 29 || c === 0), `${codes}`);
        assert.ok(codes.includes(29) || m.key === 3, `${m.name} v${v}: code 29 somewhere (${codes})`);
      });
    }
  }
});

/** A frame from parts: the size prefix is computed. */
function frameOf(...parts: Array<(w: Writer) => Writer>): Buffer {
  const w = new Writer().int32(0);
  for (const p of parts) p(w);
  const b = w.finish();
  b.writeInt32BE(b.length - 4, 0);
  return b;
}

describe('flexible versions as librdkafka sends them', () => {
  it('ApiVersions v3: header v2 with a tagged field, compact strings, body tagged fields', () => {
    const f = frameOf(
      (w) => w.int16(18).int16(3).int32(1).string('rdkafka', false),
      // header tagged fields: one field (tag 0, 2 bytes) that nothing reads
      (w) =>
        w
          .uvarint(1)
          .uvarint(0)
          .uvarint(2)
          .raw(Buffer.from([1, 2])),
      (w) => w.string('librdkafka', true).string('2.0.2', true).taggedFields(),
    );
    const p = parseRequest(f);
    assert.deepEqual(
      [p.apiKey, p.apiVersion, p.correlationId, p.clientID, p.topics],
      [18, 3, 1, 'rdkafka', []],
    );
    assert.deepEqual(p.body, { ClientSoftwareName: 'librdkafka', ClientSoftwareVersion: '2.0.2' });
    // ApiVersions answers with response header v0 (no tagged fields) even when flexible
    const a = refusalResponse(p)!;
    assert.equal(a.toString('hex'), '0000000c' + '00000001' + '001d' + '01' + '00000000' + '00');
  });

  it('Metadata v9: compact arrays of topics with tagged fields per element', () => {
    const f = frameOf(
      (w) => w.int16(3).int16(9).int32(9).string(null, false).taggedFields(),
      (w) =>
        w
          .uvarint(3)
          .string('a', true)
          .uvarint(1)
          .uvarint(5)
          .uvarint(1)
          .raw(Buffer.from([0]))
          .string('b', true)
          .taggedFields(),
      (w) => w.bool(true).bool(false).bool(false).taggedFields(),
    );
    const p = parseRequest(f);
    assert.deepEqual([p.clientID, p.topics], ['', ['a', 'b']]);
  });

  it('Metadata: all topics (v0 empty list, v1+ null) names none', () => {
    for (const v of [0, 1, 4, 9, 12]) {
      const f = encodeRequest(
        { apiKey: 3, apiVersion: v, correlationId: 1, clientID: 'x' },
        requestBodyFor(3, v, []),
      );
      assert.deepEqual(parseRequest(f).topics, [], `v${v}`);
    }
  });

  it('topics named by id only get a name no rule can name', () => {
    const f = encodeRequest(
      { apiKey: 1, apiVersion: 13, correlationId: 1, clientID: 'x' },
      { Topics: [{ TopicId: 'ab'.repeat(16), Partitions: [] }], ForgottenTopicsData: [], RackId: '' },
    );
    assert.deepEqual(parseRequest(f).topics, [topicIdName('ab'.repeat(16))]);
  });

  it('a topic-carrying key or version the proxy does not read is judged by (unparsed)', () => {
    for (const [key, v] of [
      [4, 0], // LeaderAndIsr
      [0, 14], // a future Produce
      [24, 1], // AddPartitionsToTxn
    ] as const) {
      const f = frameOf(
        (w) => w.int16(key).int16(v).int32(3).string('x', false),
        (w) => w.raw(Buffer.from([1, 2, 3])),
      );
      const p = parseRequest(f);
      assert.deepEqual(p.topics, [UNPARSED_TOPIC], `key ${key} v${v}`);
      assert.equal(refusalResponse(p), undefined, 'no refusal response: the connection is closed');
      assert.equal(canRefuse(key, v), false);
    }
  });

  it('Produce acks=0 expects no response, refused or not', () => {
    const f = encodeRequest(
      { apiKey: 0, apiVersion: 7, correlationId: 1, clientID: 'x' },
      { ...requestBodyFor(0, 7, ['t']), Acks: 0 },
    );
    const p = parseRequest(f);
    assert.equal(p.expectsResponse, false);
    assert.equal(refusalResponse(p), undefined);
  });
});

describe('malformed frames are parse errors that say where', () => {
  const good = encodeRequest(
    { apiKey: 0, apiVersion: 7, correlationId: 1, clientID: 'c' },
    requestBodyFor(0, 7, ['orders']),
  );
  const rows: Array<{ name: string; frame: Buffer; error: RegExp }> = [
    { name: 'truncated header', frame: good.subarray(0, 9), error: /int16|int32: needs/ },
    {
      name: 'client id longer than the frame',
      frame: frameOf((w) => w.int16(0).int16(7).int32(1).int16(500)),
      error: /string: needs 500 bytes/,
    },
    {
      name: 'negative API key',
      frame: frameOf((w) => w.int16(-1).int16(0).int32(1).string('', false)),
      error: /negative API key/,
    },
    {
      name: 'negative API version',
      frame: frameOf((w) => w.int16(3).int16(-2).int32(1).string('', false)),
      error: /negative API version/,
    },
    {
      name: 'topic array claiming more elements than bytes',
      frame: frameOf((w) => w.int16(3).int16(1).int32(1).string('', false).int32(1_000_000)),
      error: /array of 1000000 elements/,
    },
    {
      name: 'bytes after the last field',
      frame: (() => {
        const b = Buffer.concat([good, Buffer.from([0])]);
        b.writeInt32BE(b.length - 4, 0);
        return b;
      })(),
      error: /1 bytes after the last field/,
    },
    {
      name: 'truncated body',
      frame: (() => {
        const b = Buffer.from(good.subarray(0, good.length - 3));
        b.writeInt32BE(b.length - 4, 0);
        return b;
      })(),
      error: /needs/,
    },
    {
      name: 'a boolean that is not 0 or 1',
      frame: frameOf((w) => w.int16(3).int16(4).int32(1).string('', false).int32(0).int8(7)),
      error: /boolean byte 7/,
    },
    {
      name: 'tagged fields out of order',
      frame: frameOf((w) =>
        w.int16(3).int16(9).int32(1).string('', false).uvarint(2).uvarint(3).uvarint(0).uvarint(1).uvarint(0),
      ),
      error: /tagged field 1 out of order/,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      assert.throws(
        () => parseRequest(r.frame),
        (e) => e instanceof KafkaParseError && r.error.test(e.message),
      );
    });
  }

  it('a body that does not parse, for a key whose topics are not judged, is forwarded by its header', () => {
    const f = frameOf(
      (w) => w.int16(12).int16(0).int32(8).string('c', false),
      (w) => w.raw(Buffer.from([0xff])),
    );
    const p = parseRequest(f);
    assert.deepEqual([p.apiKey, p.topics, p.body], [12, [], undefined]);
  });
});
