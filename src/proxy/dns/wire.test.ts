import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { query } from './testing/upstream.ts';
import { parseAnswer, parseQuery, WireError } from './wire.ts';

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
