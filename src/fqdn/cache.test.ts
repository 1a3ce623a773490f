import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DNSCache, FQDNSelectorCache } from './cache.ts';
import { canonicalIP } from './ip.ts';
import { compileFQDNSelector } from './pattern.ts';

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
    assert.equal(c.hasName('a.com'), false);
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

  test('shared across pods: one cache serves every lookup', () => {
    // conformance fqdn-cache-shared-by-pods-on-node: an IP learnt through one pod's lookup is known to all.
    const c = new DNSCache();
    c.learn('cdn.partner.example', ['203.0.113.21'], 300, 0);
    const m = compileFQDNSelector({ matchPattern: '*.partner.example' });
    assert.deepEqual(c.ipsMatching(m, 1_000), ['203.0.113.21']);
  });

  test('ipsMatching: fqdn-pattern-excludes-apex', () => {
    const c = new DNSCache();
    c.learn('partner.example', ['203.0.113.20'], 300, 0);
    c.learn('cdn.partner.example', ['203.0.113.21'], 300, 0);
    assert.deepEqual(c.ipsMatching(compileFQDNSelector({ matchPattern: '*.partner.example' }), 0), [
      '203.0.113.21',
    ]);
    assert.deepEqual(c.ipsMatching(compileFQDNSelector({ matchName: 'partner.example' }), 0), [
      '203.0.113.20',
    ]);
    assert.deepEqual(c.ipsMatching(compileFQDNSelector({ matchPattern: '*' }), 0), [
      '203.0.113.20',
      '203.0.113.21',
    ]);
  });
});

describe('FQDNSelectorCache', () => {
  test('selectorsForIP and incremental notifications', () => {
    const dns = new DNSCache();
    dns.learn('partner.example', ['203.0.113.20'], 300, 0);
    const sc = new FQDNSelectorCache(dns);
    const sub = sc.register({ matchPattern: '*.partner.example' });
    const apex = sc.register({ matchName: 'Partner.Example' });
    const events: string[] = [];
    sc.subscribe((k, a, r) => events.push(`${k} +${a.join(',')} -${r.join(',')}`));

    assert.deepEqual(sc.selectorsForIP('203.0.113.20', 0), [apex]);
    dns.learn('cdn.partner.example', ['203.0.113.21', '203.0.113.20'], 300, 0);
    assert.deepEqual(sc.selectorsForIP('203.0.113.20', 0), [sub, apex].sort());
    assert.deepEqual(sc.selectorsForIP('203.0.113.21', 0), [sub]);
    assert.deepEqual(events, ['matchPattern:*.partner.example. +203.0.113.21,203.0.113.20 -']);

    // A second name of the same selector adding an IP the selector already has: no event.
    events.length = 0;
    dns.learn('eu.partner.example', ['203.0.113.21'], 600, 0);
    assert.deepEqual(events, []);
    // cdn expires; 203.0.113.21 still held by eu, 203.0.113.20 leaves the pattern selector.
    dns.gc(400_000);
    assert.deepEqual(events, [
      'matchName:partner.example. + -203.0.113.20',
      'matchPattern:*.partner.example. + -203.0.113.20',
    ]);
    assert.deepEqual(sc.ipsForSelector(sub, 400_000), ['203.0.113.21']);
    assert.deepEqual(sc.selectorsForIP('203.0.113.20', 400_000), []);
  });

  test('register counts references', () => {
    const dns = new DNSCache();
    const sc = new FQDNSelectorCache(dns);
    const k1 = sc.register({ matchName: 'a.com' });
    const k2 = sc.register({ matchName: 'A.com.' });
    assert.equal(k1, k2);
    dns.learn('a.com', ['10.0.0.1'], 60, 0);
    sc.unregister(k1);
    assert.deepEqual(sc.selectorsForIP('10.0.0.1', 0), [k1]);
    sc.unregister(k1);
    assert.deepEqual(sc.selectorsForIP('10.0.0.1', 0), []);
  });

  test('invalid selector selects nothing', () => {
    const dns = new DNSCache();
    const sc = new FQDNSelectorCache(dns);
    const k = sc.register({ matchName: 'a.com', matchPattern: '*' });
    dns.learn('a.com', ['10.0.0.1'], 60, 0);
    assert.deepEqual(sc.ipsForSelector(k, 0), []);
    assert.deepEqual(sc.selectorsForIP('10.0.0.1', 0), []);
  });

  test('expired entries not selected before gc', () => {
    const dns = new DNSCache();
    const sc = new FQDNSelectorCache(dns);
    const k = sc.register({ matchPattern: '*' });
    dns.learn('a.com', ['10.0.0.1'], 1, 0);
    assert.deepEqual(sc.selectorsForIP('10.0.0.1', 1_000), [k]);
    assert.deepEqual(sc.selectorsForIP('10.0.0.1', 1_001), []);
  });

  test('lookup cost independent of cache size', () => {
    const dns = new DNSCache();
    const sc = new FQDNSelectorCache(dns);
    sc.register({ matchPattern: '*.example.com' });
    for (let i = 0; i < 20_000; i++)
      dns.learn(`h${i}.example.com`, [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`], 60, 0);
    const t0 = performance.now();
    for (let i = 0; i < 20_000; i++) sc.selectorsForIP('10.0.0.7', 0);
    assert.ok(performance.now() - t0 < 1000);
  });
});
