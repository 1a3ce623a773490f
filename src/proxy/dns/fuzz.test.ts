// Fuzz: mutated query packets (bit flips, truncations, spliced bytes) through a running proxy whose
// rules allow one name only. Whatever comes in: the proxy does not crash or hang, and every query
// the server receives is a well-formed query for the allowed name (nothing forwarded unjudged).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { DNSProxy } from './proxy.ts';
import { query, startUpstream, type Upstream, udpAsk } from './testing/upstream.ts';
import { parseQuery } from './wire.ts';

const pos = { file: 't.yaml', line: 1, column: 1 };
let up: Upstream;
let proxy: DNSProxy;
before(async () => {
  up = await startUpstream({
    'allowed.example': { answers: [{ type: 'A', name: 'allowed.example', ttl: 5, data: '192.0.2.1' }] },
  });
  proxy = new DNSProxy({
    resolveRedirect: () => ({
      endpoint: { key: 'prod/app', identity: 1234 },
      server: { ip: '127.0.0.1', port: up.port },
      rules: [{ pos, matchName: 'allowed.example' }],
    }),
    upstreamTimeoutMs: 200,
  });
  await proxy.start();
});
after(async () => {
  await proxy.close();
  await up.close();
});

const seeds = [
  query('allowed.example'),
  query('denied.example'),
  query('Allowed.Example.', 'AAAA'),
  dnsPacket.encode({
    type: 'query',
    id: 9,
    questions: [{ type: 'A', name: 'allowed.example' }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as dnsPacket.Answer],
  } as dnsPacket.Packet),
];

const mutation = fc.record({
  seed: fc.integer({ min: 0, max: seeds.length - 1 }),
  flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
  cut: fc.option(fc.nat(), { nil: undefined }),
  splice: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
});

test('mutated queries: no crash, no hang, nothing forwarded unjudged', async () => {
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      let b = Buffer.from(seeds[m.seed]!);
      for (const [at, v] of m.flips) if (b.length > 0) b[at % b.length] = v;
      if (m.cut !== undefined) b = b.subarray(0, m.cut % (b.length + 1));
      if (m.splice !== undefined) b = Buffer.concat([b, Buffer.from(m.splice)]);
      await udpAsk(proxy.port, b, 40);
    }),
    { numRuns: 150 },
  );
  await new Promise((r) => setTimeout(r, 250)); // answers still in flight
  for (const q of up.received) {
    const name = (q.questions?.[0]?.name ?? '').toLowerCase();
    assert.equal(name.replace(/\.$/, ''), 'allowed.example', `forwarded ${name}`);
  }
  const answer = await udpAsk(proxy.port, query('allowed.example'));
  assert.ok(answer, 'still serving');
});

test('parseQuery never throws anything but WireError on random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      try {
        parseQuery(Buffer.from(bytes), 65535);
      } catch (e) {
        assert.equal((e as Error).constructor.name, 'WireError');
      }
    }),
    { numRuns: 2000 },
  );
});
