// Fuzzing the Kafka frame parser and the proxy with generated and mutated frames (a seeded PRNG:
// a failure names its seed and is reproducible). The parser may only return or throw a
// KafkaParseError; the proxy never crashes, and every frame that reaches the upstream is one the
// parser reads and the judge admits: nothing unjudged is forwarded.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { kafkaCarriesTopics } from '../../l7/kafka.ts';
import { judgeKafka, type KafkaRuleSet } from './judge.ts';
import { encodeRequest, KafkaParseError, parseRequest, refusalResponse, requestBodyFor } from './protocol.ts';
import { SCHEMAS } from './schema.ts';
import { exchange, harness, request, rules } from './test-support.ts';

/** mulberry32: small, seeded, good enough to spread mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYS = [...SCHEMAS.values()];
const NAMES = ['ok', 'user-events', 'payments', '', 'a.b_c-d', 'x'.repeat(300)];

function generated(rnd: () => number): Buffer {
  const m = KEYS[Math.floor(rnd() * KEYS.length)]!;
  const v = Math.floor(rnd() * (m.maxVersion + 1));
  const n = Math.floor(rnd() * 4);
  const topics = Array.from({ length: n }, () => NAMES[Math.floor(rnd() * NAMES.length)]!);
  return encodeRequest(
    {
      apiKey: m.key,
      apiVersion: v,
      correlationId: Math.floor(rnd() * 2 ** 31),
      clientID: rnd() < 0.5 ? 'c' : '',
    },
    requestBodyFor(m.key, v, topics),
  );
}

function mutated(rnd: () => number, f: Buffer): Buffer {
  const b = Buffer.from(f);
  const pick = () => 4 + Math.floor(rnd() * Math.max(1, b.length - 4));
  switch (Math.floor(rnd() * 6)) {
    case 0: // flip bytes
      for (let i = 0, n = 1 + Math.floor(rnd() * 4); i < n; i++) b[pick()] = Math.floor(rnd() * 256);
      return b;
    case 1: {
      // truncate (size fixed: the frame is whole but its body is short)
      const t = b.subarray(0, Math.max(12, Math.floor(rnd() * b.length)));
      const out = Buffer.from(t);
      out.writeInt32BE(out.length - 4, 0);
      return out;
    }
    case 2: {
      // insert bytes
      const at = pick();
      const extra = Buffer.from(
        Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => Math.floor(rnd() * 256)),
      );
      const out = Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
      out.writeInt32BE(out.length - 4, 0);
      return out;
    }
    case 3: {
      // an extreme length or count somewhere
      const at = Math.min(pick(), b.length - 4);
      if (at >= 4) b.writeInt32BE([0x7fffffff, -1, -2, 0x10000][Math.floor(rnd() * 4)]!, at);
      return b;
    }
    case 4: {
      // an int16 length
      const at = Math.min(pick(), b.length - 2);
      if (at >= 4) b.writeInt16BE([0x7fff, -1, -3][Math.floor(rnd() * 3)]!, at);
      return b;
    }
    default: {
      // garbage with a valid size
      const g = Buffer.from(
        Array.from({ length: 8 + Math.floor(rnd() * 60) }, () => Math.floor(rnd() * 256)),
      );
      return Buffer.concat([Buffer.from([0, 0, 0, g.length]), g]);
    }
  }
}

describe('Kafka parser fuzz', () => {
  const seeds = [1, 2, 3, 0xc0ffee];
  for (const seed of seeds) {
    it(`seed ${seed}: 2000 generated and mutated frames: a request or a KafkaParseError, never anything else`, () => {
      const rnd = prng(seed);
      let parsed = 0;
      let rejected = 0;
      for (let i = 0; i < 2000; i++) {
        const f = i % 4 === 0 ? generated(rnd) : mutated(rnd, generated(rnd));
        let p: ReturnType<typeof parseRequest>;
        try {
          p = parseRequest(f);
        } catch (e) {
          assert.ok(
            e instanceof KafkaParseError,
            `seed ${seed} frame ${i} (${f.toString('hex').slice(0, 80)}): ${e}`,
          );
          rejected++;
          continue;
        }
        parsed++;
        assert.ok(Array.isArray(p.topics) && p.topics.every((t) => typeof t === 'string'));
        if (!kafkaCarriesTopics(p.apiKey)) assert.deepEqual(p.topics, []);
        // building the refusal never throws for what parsed
        const r = refusalResponse(p);
        if (r !== undefined) assert.equal(r.readInt32BE(4), p.correlationId);
      }
      assert.ok(
        parsed > 400 && rejected > 400,
        `parsed ${parsed}, rejected ${rejected}: both paths exercised`,
      );
    });
  }
});

describe('Kafka proxy fuzz: nothing unjudged reaches the broker', () => {
  const sets: KafkaRuleSet[] = [
    { direction: 'EGRESS', rules: rules({ role: 'produce', topic: 'ok' }, { apiKey: 'findcoordinator' }) },
  ];
  const open: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const h of open) await h.close();
  });

  it('60 connections of 25 mutated and generated frames each', { timeout: 120_000 }, async () => {
    const h = await harness(sets, { maxFrameBytes: 4096 });
    open.push(h);
    const rnd = prng(42);
    for (let c = 0; c < 60; c++) {
      // two admitted requests first (a malformed frame closes the connection), then the fuzz
      const frames = [
        request(18, 3, c, []),
        request(0, 7, c, ['ok']),
        ...Array.from({ length: 25 }, (_, i) =>
          i % 3 === 0 ? generated(rnd) : mutated(rnd, generated(rnd)),
        ),
      ];
      await exchange(h.proxy.address().port, frames, frames.length, 1500);
    }
    // the upstream gets the last admitted frames after their client connection closed
    await new Promise((r) => setTimeout(r, 300));
    for (const f of h.upstream.frames) {
      const p = parseRequest(f); // throws if an unparseable frame got through
      const j = judgeKafka(sets, p);
      assert.ok(
        j.allowed,
        `forwarded but not admitted: ${JSON.stringify({ key: p.apiKey, topics: p.topics })}`,
      );
    }
    assert.ok(h.upstream.frames.length > 0, 'some frames were admitted and forwarded');
    assert.ok(h.proxy.stats.malformed > 0 && h.proxy.stats.denied > 0, JSON.stringify(h.proxy.stats));
    // still serving
    const a = await exchange(h.proxy.address().port, [request(10, 2, 77, [])], 1);
    assert.equal(a.frames[0]?.readInt32BE(4), 77);
  });
});
