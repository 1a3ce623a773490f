// Malformed queries, generated: each is dropped and counted by its reason, gets no answer, and never
// reaches the server. Over TCP a bad length prefix closes the connection.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DNSProxy } from './proxy.ts';
import { query, startUpstream, tcpAsk, type Upstream, udpAsk } from './testing/upstream.ts';
import { type DropReason, frame } from './wire.ts';

const pos = { file: 't.yaml', line: 1, column: 1 };
let up: Upstream;
let proxy: DNSProxy;
before(async () => {
  up = await startUpstream({});
  proxy = new DNSProxy({
    resolveRedirect: () => ({
      endpoint: { key: 'prod/app', identity: 1234 },
      server: { ip: '127.0.0.1', port: up.port },
      rules: [{ pos, matchPattern: '*' }], // everything allowed: only the wire checks stand between
    }),
    maxUDPQueryBytes: 512,
  });
  await proxy.start();
});
after(async () => {
  await proxy.close();
  await up.close();
});

/** A query with its question name replaced by raw name bytes. */
function withName(nameBytes: number[], tail: number[] = [0, 1, 0, 1]): Buffer {
  const h = query('x.example').subarray(0, 12);
  return Buffer.concat([h, Buffer.from(nameBytes), Buffer.from(tail)]);
}

function setU16(b: Buffer, off: number, v: number): Buffer {
  const c = Buffer.from(b);
  c.writeUInt16BE(v, off);
  return c;
}

const good = query('api.example.com');
const rows: Array<{ name: string; bytes: Buffer; reason: DropReason }> = [
  { name: 'shorter than a header', bytes: good.subarray(0, 7), reason: 'truncated' },
  { name: 'question cut mid-label', bytes: good.subarray(0, 18), reason: 'truncated' },
  { name: 'question cut before qtype', bytes: good.subarray(0, good.length - 3), reason: 'truncated' },
  { name: 'compression pointer in a query', bytes: withName([0xc0, 12]), reason: 'bad-pointer' },
  { name: 'pointer loop (points at itself)', bytes: withName([1, 97, 0xc0, 12]), reason: 'bad-pointer' },
  { name: 'extended label type 0x40', bytes: withName([0x41, 97, 0]), reason: 'bad-label' },
  {
    name: 'name longer than 255 octets',
    bytes: withName([...Array.from({ length: 5 }, () => [63, ...Array(63).fill(97)]).flat(), 0]),
    reason: 'name-too-long',
  },
  { name: 'qdcount 2', bytes: setU16(good, 4, 2), reason: 'qdcount' },
  { name: 'qdcount 0', bytes: setU16(good, 4, 0), reason: 'qdcount' },
  { name: 'opcode not QUERY (STATUS)', bytes: setU16(good, 2, 2 << 11), reason: 'bad-opcode' },
  { name: 'a response sent as a query', bytes: setU16(good, 2, 0x8180), reason: 'response-as-query' },
  { name: 'ancount claims a record that is not there', bytes: setU16(good, 6, 1), reason: 'malformed' },
  {
    name: 'trailing garbage',
    bytes: Buffer.concat([good, Buffer.from([1, 2, 3])]),
    reason: 'trailing-bytes',
  },
  {
    name: 'oversized (over the UDP query limit)',
    bytes: Buffer.concat([good, Buffer.alloc(600)]),
    reason: 'oversized',
  },
];

describe('malformed queries over UDP', () => {
  for (const r of rows) {
    test(r.name, async () => {
      const before = up.received.length;
      const dropped = proxy.stats.dropped[r.reason] ?? 0;
      const answer = await udpAsk(proxy.port, r.bytes, 300);
      assert.equal(answer, undefined, 'no answer');
      assert.equal(proxy.stats.dropped[r.reason], dropped + 1, `counted as ${r.reason}`);
      assert.equal(up.received.length, before, 'never forwarded');
    });
  }
});

describe('malformed TCP framing', () => {
  test('length prefix shorter than a header closes the connection', async () => {
    const before = proxy.stats.dropped['tcp-bad-length'] ?? 0;
    const r = await tcpAsk(proxy.port, Buffer.from([0, 5, 1, 2, 3, 4, 5]), { timeoutMs: 1000 });
    assert.equal(r.closed, true);
    assert.deepEqual(r.answers, []);
    assert.equal(proxy.stats.dropped['tcp-bad-length'], before + 1);
  });

  test('length prefix longer than what comes, then the client ends: truncated', async () => {
    const before = proxy.stats.dropped.truncated ?? 0;
    const f = frame(good);
    f.writeUInt16BE(good.length + 40, 0);
    const net = await import('node:net');
    await new Promise<void>((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1', () => s.end(f));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      s.resume();
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(proxy.stats.dropped.truncated, before + 1);
  });

  test('a malformed message inside a good frame: dropped, the next one still answered', async () => {
    const bytes = Buffer.concat([frame(setU16(good, 4, 2)), frame(good)]);
    const r = await tcpAsk(proxy.port, bytes, { want: 1 });
    assert.equal(r.answers.length, 1);
  });

  test('the proxy still answers after all of the above', async () => {
    const a = await udpAsk(proxy.port, good);
    assert.ok(a);
  });
});
