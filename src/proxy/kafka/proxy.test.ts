// The Kafka proxy on loopback (a fixed original destination, an upstream that records what
// reaches it): forwarding with correlation ids intact, refusals in request order on a connection
// that stays usable, the limits, closing on frames that do not parse, the records; and the judge
// against decide's own L7 matching (policy/l7match), so live and offline agree.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { matchL7 } from '../../policy/l7match.ts';
import { judgeKafka, type KafkaRuleSet } from './judge.ts';
import { KafkaMirror } from './mirror.ts';
import { decodeResponse, errorCodes, parseRequest } from './protocol.ts';
import { MAX_TOPIC_RECORDS } from './proxy.ts';
import { exchange, harness, pos, request, rules } from './test-support.ts';
import { Writer } from './wire.ts';

const guide: KafkaRuleSet[] = [
  {
    direction: 'EGRESS',
    rules: rules({ role: 'consume', topic: 'user-events' }, { role: 'produce', topic: 'processed-events' }),
    policies: [
      { name: 'restrict-kafka-topics', namespace: 'data-processing', kind: 'CiliumNetworkPolicy' } as never,
    ],
  },
];

const corrOf = (f: Buffer) => f.readInt32BE(4);

describe('Kafka proxy on loopback', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const h of open) await h.close();
  });

  it('forwards allowed requests byte for byte and relays the answers with their correlation ids', async () => {
    const h = await harness(guide);
    open.push(h);
    const reqs = [
      request(18, 3, 11, []),
      request(3, 4, 12, ['user-events']),
      request(0, 7, 13, ['processed-events']),
    ];
    const a = await exchange(h.proxy.address().port, reqs, 3);
    assert.deepEqual(a.frames.map(corrOf), [11, 12, 13]);
    assert.deepEqual(h.upstream.frames, reqs);
    assert.deepEqual(h.proxy.stats, {
      connections: 1,
      refused: 0,
      requests: 3,
      forwarded: 3,
      denied: 0,
      malformed: 0,
    });
  });

  it('answers a refused request with code 29 in request order, between forwarded ones, and keeps the connection', async () => {
    const h = await harness(guide, { delayMs: 60 });
    open.push(h);
    const reqs = [
      request(1, 11, 1, ['user-events']),
      request(1, 11, 2, ['payments']),
      request(0, 7, 3, ['user-events']),
      request(3, 6, 4, ['user-events']),
    ];
    const a = await exchange(h.proxy.address().port, reqs, 4);
    assert.equal(a.closed, false);
    // the refusals are ready at once, the broker answers 60 ms later: the order is the requests'
    assert.deepEqual(a.frames.map(corrOf), [1, 2, 3, 4]);
    assert.deepEqual(errorCodes(decodeResponse(a.frames[1]!, 1, 11)), [0, 29]);
    assert.deepEqual(errorCodes(decodeResponse(a.frames[2]!, 0, 7)), [29]);
    assert.deepEqual(
      h.upstream.frames.map((f) => parseRequest(f).correlationId),
      [1, 4],
    );
  });

  it('a refused Produce with acks=0 gets no answer (as from Kafka); the next request does', async () => {
    const h = await harness(guide);
    open.push(h);
    const acks0 = request(0, 7, 5, ['payments']);
    // acks sits after the null transactional id: size(4) key(2) version(2) corr(4) client(2+3) txn(2)
    acks0.writeInt16BE(0, 4 + 2 + 2 + 4 + 2 + 3 + 2);
    assert.equal(parseRequest(acks0).expectsResponse, false);
    const a = await exchange(h.proxy.address().port, [acks0, request(18, 3, 6, [])], 1);
    assert.deepEqual(a.frames.map(corrOf), [6]);
    assert.equal(h.upstream.frames.length, 1);
  });

  const closing: Array<{ name: string; frames: () => Buffer[]; refused: RegExp; max?: number }> = [
    {
      name: 'a topic-carrying request that does not parse',
      frames: () => {
        const bad = Buffer.from(request(3, 4, 1, ['user-events']));
        bad.writeInt32BE(1_000_000, 4 + 10 + 3); // the topic array's length
        return [bad, request(18, 3, 2, [])];
      },
      refused: /unparseable Kafka request: array of 1000000 elements/,
    },
    {
      name: 'a frame above the frame limit',
      frames: () => [request(0, 7, 1, ['processed-events'])],
      refused: /frame size 55 exceeds the 32-byte limit/,
      max: 32,
    },
    {
      name: 'a frame size below the smallest header',
      frames: () => [Buffer.from([0, 0, 0, 3, 1, 2, 3])],
      refused: /below the 8-byte minimum/,
    },
    {
      name: 'a refused key that has no error response (AddPartitionsToTxn)',
      frames: () => {
        const f = new Writer().int32(0).int16(24).int16(1).int32(1).string('app', false).int32(0).finish();
        f.writeInt32BE(f.length - 4, 0);
        return [f];
      },
      refused: /denied addpartitionstotxn v1 has no error response here/,
    },
  ];
  for (const c of closing) {
    it(`closes the connection on ${c.name}; nothing reaches the broker`, async () => {
      const h = await harness(guide, c.max === undefined ? {} : { maxFrameBytes: c.max });
      open.push(h);
      const a = await exchange(h.proxy.address().port, c.frames(), 1);
      assert.equal(a.closed, true);
      assert.deepEqual(a.frames, []);
      assert.deepEqual(h.upstream.frames, []);
      assert.match(h.refused.join('\n'), c.refused);
    });
  }

  it('refuses a connection without context, and judges nothing', async () => {
    const h = await harness(guide, { noContext: true });
    open.push(h);
    const a = await exchange(h.proxy.address().port, [request(18, 3, 1, [])], 1);
    assert.equal(a.closed, true);
    assert.deepEqual(h.upstream.frames, []);
    assert.deepEqual(h.refused, ['no redirect context for this connection']);
  });

  it('rule sets that cannot be read deny (fail closed), with the reason in the record', async () => {
    const h = await harness(() => {
      throw new Error('mirror gone');
    });
    open.push(h);
    const a = await exchange(h.proxy.address().port, [request(18, 3, 1, [])], 1);
    assert.deepEqual(errorCodes(decodeResponse(a.frames[0]!, 18, 3)), [29]);
    assert.deepEqual(h.upstream.frames, []);
    assert.match(h.flows[0]?.Summary ?? '', /policy engine error: mirror gone/);
  });

  it('holds at most maxInFlight requests at the broker; the rest wait unjudged, then all are answered in order', async () => {
    const h = await harness(guide, { maxInFlight: 2, delayMs: 20 });
    open.push(h);
    const reqs = Array.from({ length: 12 }, (_, i) => request(3, 4, 100 + i, ['user-events']));
    const a = await exchange(h.proxy.address().port, reqs, 12, 5000);
    assert.deepEqual(
      a.frames.map(corrOf),
      reqs.map((_, i) => 100 + i),
    );
    assert.equal(h.upstream.maxOutstanding, 2);
  });

  it('writes one L7 Kafka record per topic: FORWARDED code 0, DROPPED code 29 with the reason', async () => {
    const h = await harness(guide);
    open.push(h);
    await exchange(
      h.proxy.address().port,
      [request(3, 4, 21, ['user-events', 'processed-events']), request(1, 11, 22, ['payments'])],
      2,
    );
    const seen = h.flows.map((f) => ({ verdict: f.verdict, kafka: f.l7?.kafka, dir: f.traffic_direction }));
    assert.deepEqual(seen, [
      {
        verdict: 'FORWARDED',
        kafka: { api_version: 4, api_key: 'metadata', correlation_id: 21, topic: 'user-events' },
        dir: 'EGRESS',
      },
      {
        verdict: 'FORWARDED',
        kafka: { api_version: 4, api_key: 'metadata', correlation_id: 21, topic: 'processed-events' },
        dir: 'EGRESS',
      },
      {
        verdict: 'DROPPED',
        kafka: { error_code: 29, api_version: 11, api_key: 'fetch', correlation_id: 22, topic: 'payments' },
        dir: 'EGRESS',
      },
    ]);
    assert.equal(h.flows[0]?.egress_allowed_by?.[0]?.name, 'restrict-kafka-topics');
    assert.match(
      h.flows[2]?.Summary ?? '',
      /^Kafka request fetch correlation id 22 topic 'payments'; egress: topics not covered by any rule: payments$/,
    );
  });

  it('a request naming more topics than MAX_TOPIC_RECORDS gets that many records, the last saying how many more', async () => {
    const h = await harness([{ direction: 'EGRESS', rules: rules({}) }]);
    open.push(h);
    const topics = Array.from({ length: MAX_TOPIC_RECORDS + 8 }, (_, i) => `t${i}`);
    await exchange(h.proxy.address().port, [request(3, 4, 1, topics)], 1);
    assert.equal(h.flows.length, MAX_TOPIC_RECORDS);
    assert.match(h.flows.at(-1)?.Summary ?? '', /; and 8 more topics$/);
  });

  it('a policy change applies to the next request on a kept connection', async () => {
    const h = await harness(guide, { delayMs: 0 });
    open.push(h);
    const first = await exchange(h.proxy.address().port, [request(1, 11, 1, ['payments'])], 1);
    assert.deepEqual(errorCodes(decodeResponse(first.frames[0]!, 1, 11)), [0, 29]);
    h.sets.current = () => [{ direction: 'EGRESS', rules: rules({}) }];
    const second = await exchange(h.proxy.address().port, [request(1, 11, 2, ['payments'])], 1);
    assert.deepEqual(second.frames.map(corrOf), [2]);
    assert.equal(h.upstream.frames.length, 1);
  });
});

describe('the proxy judges as decide does (policy/l7match)', () => {
  const ruleTable: Array<{ name: string; rules: KafkaRuleSet['rules'] }> = [
    {
      name: 'guide roles and topics',
      rules: rules({ role: 'consume', topic: 'user-events' }, { role: 'produce', topic: 'processed-events' }),
    },
    {
      name: 'apiKey fetch and produce only',
      rules: rules({ apiKey: 'fetch', topic: 'user-events' }, { apiKey: 'produce' }),
    },
    {
      name: 'version and client',
      rules: rules({ apiKey: 'metadata', apiVersion: '4', clientID: 'rdkafka' }),
    },
    { name: 'empty rule', rules: rules({}) },
    { name: 'no rules', rules: [] },
    { name: 'an invalid rule (role and apiKey)', rules: rules({ role: 'produce', apiKey: 'produce' }) },
  ];
  const requests = [
    { apiKey: 18, apiVersion: 3, clientID: 'rdkafka', topics: [] },
    { apiKey: 3, apiVersion: 4, clientID: 'rdkafka', topics: [] },
    { apiKey: 3, apiVersion: 4, clientID: 'rdkafka', topics: ['user-events', 'processed-events'] },
    { apiKey: 3, apiVersion: 6, clientID: 'kafkajs', topics: ['user-events', 'payments'] },
    { apiKey: 0, apiVersion: 7, clientID: 'kafkajs', topics: ['processed-events'] },
    { apiKey: 0, apiVersion: 7, clientID: 'kafkajs', topics: ['user-events'] },
    { apiKey: 1, apiVersion: 11, clientID: 'x', topics: ['user-events'] },
    { apiKey: 15, apiVersion: 3, clientID: 'x', topics: [] },
    { apiKey: 10, apiVersion: 2, clientID: 'x', topics: [] },
    { apiKey: 24, apiVersion: 1, clientID: 'x', topics: ['(unparsed)'] },
    { apiKey: 60, apiVersion: 0, clientID: 'x', topics: [] },
  ];
  for (const r of ruleTable) {
    it(r.name, () => {
      for (const q of requests) {
        const live = judgeKafka([{ direction: 'INGRESS', rules: r.rules }], q).allowed;
        const offline = matchL7({ parser: 'kafka', rules: [...r.rules] }, `parity|${r.name}`, {
          kind: 'kafka',
          ...q,
        }).allowed;
        assert.equal(live, offline, `${r.name}: ${JSON.stringify(q)}`);
      }
    });
  }

  it('both sides must admit a request', () => {
    const q = { apiKey: 0, apiVersion: 7, clientID: 'x', topics: ['processed-events'] };
    const eg: KafkaRuleSet = { direction: 'EGRESS', rules: rules({ role: 'produce' }) };
    const ing: KafkaRuleSet = { direction: 'INGRESS', rules: rules({ role: 'consume' }) };
    assert.equal(judgeKafka([eg], q).allowed, true);
    assert.equal(judgeKafka([eg, ing], q).allowed, false);
    assert.equal(judgeKafka([], q).allowed, false);
  });
});

describe('the Kafka mirror', () => {
  const entry = (
    direction: 'INGRESS' | 'EGRESS',
    identity: number,
    verdict: 'allow' | 'deny' | 'redirect',
    l7?: unknown,
  ) =>
    ({
      key: { direction, identity, proto: 6, portLo: 9092, portHi: 9092 },
      verdict,
      derivedFrom: [{ name: 'p', namespace: 'ns' }],
      ...(l7 === undefined ? {} : { l7 }),
    }) as never;
  const kafka = { parser: 'kafka', rules: rules({ role: 'produce', topic: 't' }) };
  const snapshot = (entries: unknown[], version = 1) => ({
    version,
    peers: [
      ['10.0.0.1', { identity: 1001 }],
      ['10.0.0.2', { identity: 1002 }],
    ] as Array<[string, { identity: number }]>,
    endpoints: [
      {
        ip: '10.0.0.1',
        endpoint: 'ns/client',
        namespace: 'ns',
        ingress: { enforced: false, defaultDeny: false },
        egress: { enforced: true, defaultDeny: true },
        entries: entries as never[],
      },
    ],
  });
  const conn = {
    remote: { address: '10.0.0.1', port: 40000 },
    local: { address: '172.31.255.1', port: 15002 },
    originalDst: { address: '10.0.0.2', port: 9092 },
  };

  it('no snapshot yet: every connection is refused', () => {
    assert.equal(new KafkaMirror().lookup(conn), undefined);
  });

  const rows: Array<{ name: string; entries: unknown[]; rules: unknown[] | undefined }> = [
    {
      name: 'an egress redirect gives its Kafka rules',
      entries: [entry('EGRESS', 1002, 'redirect', kafka)],
      rules: [{ pos, role: 'produce', topic: 't' }],
    },
    {
      name: 'an allow beside the redirect adds the L7 wildcard',
      entries: [entry('EGRESS', 1002, 'redirect', kafka), entry('EGRESS', 0, 'allow')],
      rules: [{ pos, role: 'produce', topic: 't' }, { pos: { file: '(l7 wildcard)', line: 0, column: 0 } }],
    },
    {
      name: 'a deny wins: refused',
      entries: [entry('EGRESS', 1002, 'redirect', kafka), entry('EGRESS', 1002, 'deny')],
      rules: undefined,
    },
    {
      name: 'an HTTP redirect only: refused',
      entries: [entry('EGRESS', 1002, 'redirect', { parser: 'http', rules: [] })],
      rules: undefined,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const m = new KafkaMirror();
      m.load(snapshot(r.entries) as never);
      const ctx = m.lookup(conn);
      if (r.rules === undefined) return assert.equal(ctx, undefined);
      assert.ok(ctx);
      assert.equal(ctx.direction, 'EGRESS');
      assert.equal(ctx.sourceIdentity, 1001);
      assert.deepEqual(
        ctx.ruleSets().map((s) => ({ d: s.direction, rules: s.rules })),
        [{ d: 'EGRESS', rules: r.rules }],
      );
    });
  }

  it('an ingress redirect on the broker (the client not local) is judged on the broker’s side', () => {
    const m = new KafkaMirror();
    const snap = snapshot([]);
    snap.endpoints = [
      {
        ip: '10.0.0.2',
        endpoint: 'ns/broker',
        namespace: 'ns',
        ingress: { enforced: true, defaultDeny: true },
        egress: { enforced: false, defaultDeny: false },
        entries: [entry('INGRESS', 1001, 'redirect', kafka)],
      },
    ];
    m.load(snap as never);
    const ctx = m.lookup(conn)!;
    assert.equal(ctx.direction, 'INGRESS');
    assert.deepEqual(
      ctx.ruleSets().map((x) => [x.direction, x.rules.length]),
      [['INGRESS', 1]],
    );
    // another source identity has no entry on the broker: default deny, refused
    const other = { ...conn, remote: { address: '10.0.0.9', port: 1 } };
    assert.equal(m.lookup(other), undefined);
  });

  it('a new snapshot applies to the next request of a known connection', () => {
    const m = new KafkaMirror();
    m.load(snapshot([entry('EGRESS', 1002, 'redirect', kafka)]) as never);
    const ctx = m.lookup(conn)!;
    m.load(snapshot([entry('EGRESS', 1002, 'deny')], 2) as never);
    assert.deepEqual(ctx.ruleSets(), [{ direction: 'EGRESS', rules: [] }]);
  });
});
