import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { query } from './testing/upstream.ts';
import { memoHits, parseAnswer, parseQuery, WireError } from './wire.ts';

/** A name as labels on the wire, optionally ending in a pointer instead of the root. */
function name(labels: string[], pointer?: number): number[] {
  const out: number[] = [];
  for (const l of labels) out.push(l.length, ...Buffer.from(l));
  if (pointer === undefined) out.push(0);
  else out.push(0xc0 | (pointer >> 8), pointer & 0xff);
  return out;
}

const ptr = (off: number) => [0xc0 | (off >> 8), off & 0xff];
const u16 = (n: number) => [n >> 8, n & 0xff];
const A = (owner: number[], ip: number[], ttl = 30) => [
  ...owner,
  ...u16(1),
  ...u16(1),
  0,
  0,
  ...u16(ttl),
  ...u16(4),
  ...ip,
];
const CNAME = (owner: number[], target: number[], ttl = 30) => [
  ...owner,
  ...u16(5),
  ...u16(1),
  0,
  0,
  ...u16(ttl),
  ...u16(target.length),
  ...target,
];

/** An answer to the query for `q` (id 0x1234): header, the question as given, then the records. */
function answer(question: number[], records: number[][]): Buffer {
  const head = [...u16(0x1234), ...u16(0x8180), ...u16(1), ...u16(records.length), ...u16(0), ...u16(0)];
  return Buffer.from([...head, ...question, ...u16(1), ...u16(1), ...records.flat()]);
}

/** An AAAA answer (2001:db8::1) as dns-packet writes it. */
function dnsPacketAnswer(n: string, id: number): Buffer {
  return dnsPacket.encode({
    id,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: 'AAAA', name: n, class: 'IN' }],
    answers: [{ type: 'AAAA', name: n, ttl: 30, data: '2001:db8::1' }],
  });
}

const Q = ['api', 'example', 'com'];
const raw = query('api.example.com', 'A', 0x1234);
const q = parseQuery(raw, 4096);
// where the question's name starts and where the answer section does in answer(name(Q), ...)
const QNAME = 12;
const FIRST_RR = 12 + name(Q).length + 4;

describe('parseAnswer: the echoed question and owner pointers are not decoded again, with the same result', () => {
  const cnameTarget = name(['cdn', 'example', 'net']);
  const rows: Array<{ name: string; buf: Buffer }> = [
    { name: 'one A, owner 0xc00c', buf: answer(name(Q), [A(ptr(QNAME), [192, 0, 2, 1])]) },
    {
      name: 'two A, owners 0xc00c',
      buf: answer(name(Q), [A(ptr(QNAME), [192, 0, 2, 1]), A(ptr(QNAME), [192, 0, 2, 2], 5)]),
    },
    {
      name: 'the question in other case (0x20): decoded',
      buf: answer(name(['API', 'Example', 'com']), [A(ptr(QNAME), [192, 0, 2, 1])]),
    },
    { name: 'owner written out in full', buf: answer(name(Q), [A(name(Q), [192, 0, 2, 1])]) },
    {
      // the CNAME's target starts at FIRST_RR + 2 + 10; the A record's owner points there
      name: 'a CNAME chain, the A owner a pointer to the CNAME target',
      buf: answer(name(Q), [
        CNAME(ptr(QNAME), cnameTarget, 60),
        A(ptr(FIRST_RR + 12), [198, 51, 100, 7], 20),
      ]),
    },
    {
      name: 'a CNAME target that itself ends in a pointer',
      buf: answer(name(Q), [
        CNAME(ptr(QNAME), name(['www'], QNAME + 4)),
        A(ptr(FIRST_RR + 12), [198, 51, 100, 8]),
      ]),
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const fast = parseAnswer(r.buf, q, 65535, raw);
      const slow = parseAnswer(r.buf, q, 65535);
      assert.deepEqual(fast, slow);
      assert.ok(fast.ips.length > 0);
    });
  }

  const bad: Array<{ name: string; buf: Buffer; reason: string }> = [
    {
      name: 'an owner pointing past the end',
      buf: answer(name(Q), [A(ptr(200), [192, 0, 2, 1])]),
      reason: 'malformed',
    },
    {
      name: "an owner pointing forward (to the next record's owner)",
      buf: answer(name(Q), [A(ptr(FIRST_RR + 16), [192, 0, 2, 1]), A(name(Q), [192, 0, 2, 2])]),
      reason: 'malformed', // dns-packet refuses it before the walk does
    },
    {
      name: 'an owner pointing into the header',
      buf: answer(name(Q), [A(ptr(4), [192, 0, 2, 1])]),
      reason: 'bad-pointer',
    },
    {
      name: 'an owner off the chain',
      buf: answer(name(Q), [A(name(['evil', 'test']), [192, 0, 2, 1])]),
      reason: 'answer-mismatch',
    },
  ];
  for (const r of bad) {
    it(`${r.name}: dropped as ${r.reason} either way`, () => {
      for (const withRaw of [true, false]) {
        assert.throws(
          () => parseAnswer(r.buf, q, 65535, withRaw ? raw : undefined),
          (e: unknown) => e instanceof WireError && e.reason === r.reason,
        );
      }
    });
  }
});

describe('the memo: a message seen before (bytes after the id) is not checked again, with the same result', () => {
  const good = answer(name(Q), [A(ptr(QNAME), [192, 0, 2, 1])]);
  // the same answer with its A record's length one byte short: dns-packet decodes it, the walk refuses it
  const shortRdata = Buffer.from(good);
  shortRdata.writeUInt16BE(3, shortRdata.length - 6);
  // an owner pointing past the end: dns-packet refuses it
  const pastEnd = answer(name(Q), [A(ptr(200), [192, 0, 2, 1])]);
  const rows: Array<{
    name: string;
    first: Buffer;
    second: Buffer;
    kind: 'query' | 'answer';
    hit: boolean;
    reason?: string;
    /** The query the second message answers (default: the one for api.example.com). */
    to?: ReturnType<typeof parseQuery>;
  }> = [
    {
      name: 'the same query with another id: from the memo, with its own id',
      first: query('memo1.example', 'A', 1),
      second: query('memo1.example', 'A', 2),
      kind: 'query',
      hit: true,
    },
    {
      name: 'another name: parsed anew',
      first: query('memo2.example', 'A', 1),
      second: query('memo3.example', 'A', 1),
      kind: 'query',
      hit: false,
    },
    {
      name: 'another type: parsed anew',
      first: query('memo4.example', 'A', 1),
      second: query('memo4.example', 'AAAA', 1),
      kind: 'query',
      hit: false,
    },
    { name: 'the same answer again: parsed once', first: good, second: good, kind: 'answer', hit: true },
    {
      name: 'an equal answer to a query for another name: refused',
      first: good,
      second: good,
      kind: 'answer',
      hit: false,
      reason: 'answer-mismatch',
      to: parseQuery(query('other.example.com', 'A', 0x1234), 4096),
    },
    {
      name: 'an equal answer to a query of another type: refused',
      first: good,
      second: good,
      kind: 'answer',
      hit: false,
      reason: 'answer-mismatch',
      to: parseQuery(query('api.example.com', 'AAAA', 0x1234), 4096),
    },
    {
      name: 'an answer one byte off after a good one: refused',
      first: good,
      second: shortRdata,
      kind: 'answer',
      hit: false,
      reason: 'malformed',
    },
    {
      name: 'what dns-packet decodes but the walk refuses: refused every time',
      first: shortRdata,
      second: shortRdata,
      kind: 'answer',
      hit: false,
      reason: 'malformed',
    },
    {
      name: 'what dns-packet refuses is not remembered: refused again',
      first: pastEnd,
      second: pastEnd,
      kind: 'answer',
      hit: false,
      reason: 'malformed',
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const first = (b: Buffer) => (r.kind === 'query' ? parseQuery(b, 4096) : parseAnswer(b, q, 65535, raw));
      const parse = (b: Buffer) =>
        r.kind === 'query' ? parseQuery(b, 4096) : parseAnswer(b, r.to ?? q, 65535, r.to ? undefined : raw);
      try {
        first(r.first);
      } catch {
        // a refused first message: what matters is the second
      }
      const before = memoHits.queries + memoHits.answers;
      if (r.reason !== undefined) {
        assert.throws(
          () => parse(r.second),
          (e: unknown) => e instanceof WireError && e.reason === r.reason,
        );
      } else {
        const out = parse(r.second);
        if (r.kind === 'query') {
          const pq = out as ReturnType<typeof parseQuery>;
          const qtype = r.second.readUInt16BE(r.second.length - 4);
          assert.deepEqual(
            [pq.id, pq.question.qtype, pq.questionEnd],
            [r.second.readUInt16BE(0), qtype, r.second.length],
          );
        } else assert.deepEqual((out as ReturnType<typeof parseAnswer>).ips, ['192.0.2.1']);
      }
      assert.equal(memoHits.queries + memoHits.answers > before, r.hit);
    });
  }

  it("an answer's lists are frozen (shared with equal answers); IPv6 in canonical text", () => {
    const aaaaQuery = parseQuery(query('v6.example.com', 'AAAA', 7), 4096);
    const v6 = dnsPacketAnswer('v6.example.com', 7);
    for (let i = 0; i < 2; i++) {
      const a = parseAnswer(v6, aaaaQuery, 65535);
      assert.deepEqual(a.ips, ['2001:db8::1']);
      assert.ok(Object.isFrozen(a.ips) && Object.isFrozen(a.cnames) && Object.isFrozen(a.rrtypes));
      assert.equal(a.id, 7);
    }
  });

  it('a message past the memo size is checked every time', () => {
    const big = query(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, 'A', 1);
    const padded = Buffer.concat([big, Buffer.alloc(600)]); // over 512 bytes, and trailing bytes
    for (let i = 0; i < 2; i++) {
      const before = memoHits.queries + memoHits.answers;
      assert.throws(
        () => parseQuery(padded, 4096),
        (e: unknown) => e instanceof WireError && e.reason === 'trailing-bytes',
      );
      assert.equal(memoHits.queries + memoHits.answers, before);
    }
  });
});

describe('the memo: names that do not repeat are sampled, not all kept', () => {
  const hitsOnSecondPass = (prefix: string, n: number): number => {
    const qs = Array.from({ length: n }, (_, i) => query(`${prefix}${i}.example`, 'A', 1));
    for (const b of qs) parseQuery(b, 4096);
    const before = memoHits.queries;
    for (const b of qs) parseQuery(b, 4096);
    return memoHits.queries - before;
  };
  const repeat = query('again.example', 'A', 1);
  const rows: Array<{ name: string; before: () => void; min: number; max: number }> = [
    {
      name: 'after repeated names: every new name kept (64 of 64 hit again)',
      before: () => {
        for (let i = 0; i < 2048; i++) parseQuery(repeat, 4096);
      },
      min: 64,
      max: 64,
    },
    {
      name: 'after 2,048 names never repeated: 1 in 8 kept',
      before: () => {
        for (let i = 0; i < 2048; i++) parseQuery(query(`once${i}.example`, 'A', 1), 4096);
      },
      min: 6,
      max: 10,
    },
    {
      name: 'repeats again: every new name kept once more',
      before: () => {
        for (let i = 0; i < 4096; i++) parseQuery(repeat, 4096);
      },
      min: 64,
      max: 64,
    },
  ];
  for (const [i, r] of rows.entries()) {
    it(r.name, () => {
      r.before();
      const hits = hitsOnSecondPass(`fresh${i}-`, 64);
      assert.ok(hits >= r.min && hits <= r.max, `${hits} hits`);
    });
  }
});
