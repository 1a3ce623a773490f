import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DNSCache } from './cache.ts';
import { canonicalIP } from './ip.ts';

describe('canonicalIP', () => {
  const rows: Array<[string, string, string | undefined]> = [
    ['IPv4', '203.0.113.20', '203.0.113.20'],
    ['IPv4 leading zero rejected', '203.0.113.020', undefined],
    ['IPv6 compress', '2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['IPv6 longest run', '2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['IPv6 tie keeps first', '2001:0:0:1:1:0:0:1', '2001::1:1:0:0:1'],
    ['IPv6 single zero not compressed', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['IPv6 all zero', '0:0:0:0:0:0:0:0', '::'],
    ['IPv6 loopback', '::1', '::1'],
    ['mapped IPv4', '::FFFF:c000:0201', '::ffff:192.0.2.1'],
    ['mapped IPv4 dotted', '::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['embedded IPv4 tail', '64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
    ['zone rejected', 'fe80::1%eth0', undefined],
    ['garbage', 'not-an-ip', undefined],
    ['empty', '', undefined],
  ];
  for (const [name, input, want] of rows) test(name, () => assert.equal(canonicalIP(input), want));
});

describe('DNSCache', () => {
  test('learn and lookup, case-insensitive names', () => {
    const c = new DNSCache();
    const r = c.learn('API.Example.com', ['1.1.1.1', '2001:DB8::1', 'bogus'], 60, 0);
    assert.deepEqual(r.added, ['1.1.1.1', '2001:db8::1']);
    assert.deepEqual(r.rejected, ['bogus']);
    assert.deepEqual(c.lookupName('api.example.com.', 1000), ['1.1.1.1', '2001:db8::1']);
    assert.deepEqual(c.namesForIP('2001:db8:0::1', 1000), ['api.example.com.']);
  });

  const ttlRows: Array<[string, { minTTL?: number }, number, number, boolean]> = [
    // name, options, ttl (s), lookup at (ms), alive
    ['alive before TTL', {}, 60, 59_999, true],
    ['alive at exactly TTL', {}, 60, 60_000, true],
    ['expired after TTL', {}, 60, 60_001, false],
    ['TTL 0 alive at learn time', {}, 0, 0, true],
    ['TTL 0 expired right after', {}, 0, 1, false],
    ['minTTL stretches short TTL', { minTTL: 300 }, 5, 200_000, true],
    ['minTTL does not shorten long TTL', { minTTL: 5 }, 300, 200_000, true],
    ['negative TTL treated as 0', {}, -5, 1, false],
    ['NaN TTL treated as 0', {}, Number.NaN, 1, false],
  ];
  for (const [name, opts, ttl, at, alive] of ttlRows) {
    test(name, () => {
      const c = new DNSCache(opts);
      c.learn('a.com', ['10.0.0.1'], ttl, 0);
      assert.deepEqual(c.lookupName('a.com', at), alive ? ['10.0.0.1'] : []);
      assert.deepEqual(c.namesForIP('10.0.0.1', at), alive ? ['a.com.'] : []);
    });
  }

  test('relearn keeps later expiry', () => {
    const c = new DNSCache();
    c.learn('a.com', ['10.0.0.1'], 100, 0);
    const r = c.learn('a.com', ['10.0.0.1'], 10, 50_000);
    assert.deepEqual(r.added, []);
    assert.deepEqual(c.lookupName('a.com', 99_000), ['10.0.0.1']);
  });

  test('expired then relearnt is not reported as a change', () => {
    const c = new DNSCache();
    c.learn('a.com', ['10.0.0.1', '10.0.0.2'], 1, 0);
    const r = c.learn('a.com', ['10.0.0.1'], 1, 5_000);
    assert.deepEqual(r.added, []);
    assert.deepEqual(r.removed, ['10.0.0.2']);
  });

  test('gc removes expired and notifies', () => {
    const c = new DNSCache();
    const events: string[] = [];
    c.subscribe((n, a, r) => events.push(`${n} +${a.join(',')} -${r.join(',')}`));
    c.learn('a.com', ['10.0.0.1'], 1, 0);
    c.learn('b.com', ['10.0.0.2'], 100, 0);
    assert.deepEqual(c.gc(2_000), [{ name: 'a.com.', removed: ['10.0.0.1'] }]);
    assert.deepEqual(c.lookupName('a.com', 0), [], 'gone, not just expired');
    assert.deepEqual(c.namesForIP('10.0.0.1', 0), []);
    assert.deepEqual(events, ['a.com. +10.0.0.1 -', 'b.com. +10.0.0.2 -', 'a.com. + -10.0.0.1']);
  });

  test('per-name IP cap evicts the soonest-expiring', () => {
    const c = new DNSCache({ maxIPsPerName: 2 });
    c.learn('a.com', ['10.0.0.1'], 10, 0);
    c.learn('a.com', ['10.0.0.2'], 100, 0);
    const r = c.learn('a.com', ['10.0.0.3'], 50, 0);
    assert.deepEqual(r.added, ['10.0.0.3']);
    assert.deepEqual(r.removed, ['10.0.0.1']);
    assert.deepEqual(c.lookupName('a.com', 0), ['10.0.0.2', '10.0.0.3']);
    assert.deepEqual(c.namesForIP('10.0.0.1', 0), []);
  });

  test('default cap is 1000', () => {
    const c = new DNSCache();
    const ips = Array.from({ length: 1500 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
    c.learn('big.com', ips, 60, 0);
    assert.equal(c.lookupName('big.com', 0).length, 1000);
  });

  test('nextExpiry: a lower bound that gc makes exact', () => {
    const c = new DNSCache();
    assert.equal(c.nextExpiry(), Number.POSITIVE_INFINITY, 'empty');
    c.learn('a.com', ['10.0.0.1'], 10, 0);
    c.learn('b.com', ['10.0.0.2'], 60, 0);
    assert.equal(c.nextExpiry(), 10_000);
    c.gc(10_001);
    assert.equal(c.nextExpiry(), 60_000, 'after a.com expired');
    c.gc(60_001);
    assert.equal(c.nextExpiry(), Number.POSITIVE_INFINITY);
  });
});
