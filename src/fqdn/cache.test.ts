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

describe('DNSCache per-endpoint lookups', () => {
  test('which endpoints looked a name up, with their IPs', () => {
    const c = new DNSCache();
    c.learn('api.example.com', ['10.0.0.1'], 60, 0, 'prod/a');
    c.learn('API.example.com.', ['10.0.0.2'], 30, 0, 'prod/b');
    c.learn('other.com', ['10.0.0.9'], 60, 0, 'prod/a');
    assert.deepEqual(c.lookupsOf('api.example.com', 0), [
      { endpoint: 'prod/a', name: 'api.example.com.', ips: [{ ip: '10.0.0.1', expiresAt: 60_000 }] },
      { endpoint: 'prod/b', name: 'api.example.com.', ips: [{ ip: '10.0.0.2', expiresAt: 30_000 }] },
    ]);
    assert.deepEqual(
      c.lookupName('api.example.com', 0),
      ['10.0.0.1', '10.0.0.2'],
      'the node cache is shared',
    );
    assert.deepEqual(c.namesLookedUpBy('prod/a', 0), ['api.example.com.', 'other.com.']);
    assert.deepEqual(
      c.lookupsOf('api.example.com', 40_000).map((l) => l.endpoint),
      ['prod/a'],
      'b expired',
    );
  });

  test('endpoint cap evicts the soonest-expiring IP of that endpoint, and from the node when no one else holds it', () => {
    const c = new DNSCache({ maxIPsPerEndpointName: 2 });
    const events: string[] = [];
    c.subscribe((_n, a, r) => events.push(`+${a.join(',')} -${r.join(',')}`));
    c.learn('a.com', ['10.0.0.1'], 10, 0, 'ns/p');
    c.learn('a.com', ['10.0.0.1'], 10, 0, 'ns/q'); // q holds .1 too
    c.learn('a.com', ['10.0.0.2'], 100, 0, 'ns/p');
    c.learn('a.com', ['10.0.0.3'], 50, 0, 'ns/p'); // p over its cap: .1 goes from p, q keeps it
    assert.deepEqual(
      c.lookupsOf('a.com', 0)[0]!.ips.map((x) => x.ip),
      ['10.0.0.2', '10.0.0.3'],
    );
    assert.deepEqual(c.lookupName('a.com', 0), ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'q still holds .1');
    c.learn('a.com', ['10.0.0.4'], 200, 0, 'ns/p'); // .3 goes from p, no one else holds it
    assert.deepEqual(c.lookupName('a.com', 0), ['10.0.0.1', '10.0.0.2', '10.0.0.4']);
    assert.equal(events.at(-1), '+10.0.0.4 -10.0.0.3');
  });

  test('one answer over the cap keeps the cap', () => {
    const c = new DNSCache({ maxIPsPerEndpointName: 3 });
    c.learn('a.com', ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'], 60, 0, 'ns/p');
    assert.equal(c.lookupName('a.com', 0).length, 3);
    assert.equal(c.lookupsOf('a.com', 0)[0]!.ips.length, 3);
  });

  test('default endpoint cap is 1000 (--tofqdns-endpoint-max-ip-per-hostname)', () => {
    assert.equal(new DNSCache().maxIPsPerEndpointName, 1000);
  });

  test('forgetEndpoint drops its lookups, not the shared entries', () => {
    const c = new DNSCache();
    c.learn('a.com', ['10.0.0.1'], 60, 0, 'ns/p');
    c.forgetEndpoint('ns/p');
    assert.deepEqual(c.lookupsOf('a.com', 0), []);
    assert.deepEqual(c.lookupName('a.com', 0), ['10.0.0.1']);
  });
});

describe('DNSCache zombies', () => {
  const rows: Array<{
    name: string;
    inUse: string[];
    at: number;
    zombie: boolean;
    newConn: boolean;
    oldConn: boolean;
  }> = [
    {
      name: 'alive: new and existing connections',
      inUse: ['10.0.0.1'],
      at: 5_000,
      zombie: false,
      newConn: true,
      oldConn: true,
    },
    {
      name: 'expired, in use: zombie, existing only',
      inUse: ['10.0.0.1'],
      at: 20_000,
      zombie: true,
      newConn: false,
      oldConn: true,
    },
    {
      name: 'expired, not in use: gone',
      inUse: [],
      at: 20_000,
      zombie: false,
      newConn: false,
      oldConn: false,
    },
    {
      name: 'in use written another way',
      inUse: ['::ffff:10.0.0.1'],
      at: 20_000,
      zombie: false,
      newConn: false,
      oldConn: false,
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const c = new DNSCache();
      c.learn('a.com', ['10.0.0.1'], 10, 0, 'ns/p');
      c.setInUse(r.inUse);
      const removed = c.gc(r.at);
      assert.equal(c.zombies().length > 0, r.zombie);
      assert.equal(c.allowsNewConnection('10.0.0.1', r.at), r.newConn);
      assert.equal(c.allowsExistingConnection('10.0.0.1', r.at), r.oldConn);
      if (r.at > 10_000)
        assert.deepEqual(removed, [{ name: 'a.com.', removed: ['10.0.0.1'] }], 'out of policy either way');
    });
  }

  test('zombie record, then deleted when its connections end', () => {
    const c = new DNSCache();
    c.learn('a.com', ['10.0.0.1'], 10, 0, 'ns/p');
    c.setInUse(['10.0.0.1']);
    c.gc(11_000);
    assert.deepEqual(c.zombies(), [
      { ip: '10.0.0.1', names: ['a.com.'], endpoints: ['ns/p'], expiredAt: 11_000 },
    ]);
    assert.deepEqual(
      c.rows(11_000).map((x) => `${x.name} ${x.ip} ${x.source}`),
      ['a.com. 10.0.0.1 connection'],
    );
    c.setInUse([]);
    assert.deepEqual(c.zombies(), []);
    assert.equal(c.allowsExistingConnection('10.0.0.1', 11_000), false);
  });

  test('a fresh answer revives a zombie', () => {
    const c = new DNSCache();
    c.learn('a.com', ['10.0.0.1'], 10, 0);
    c.setInUse(['10.0.0.1']);
    c.gc(11_000);
    const r = c.learn('a.com', ['10.0.0.1'], 10, 12_000);
    assert.deepEqual(r.added, ['10.0.0.1']);
    assert.deepEqual(c.zombies(), []);
  });

  test('zombie cap drops the oldest (--tofqdns-max-deferred-connection-deletes)', () => {
    const c = new DNSCache({ maxZombies: 1 });
    c.learn('a.com', ['10.0.0.1'], 1, 0);
    c.learn('b.com', ['10.0.0.2'], 5, 0);
    c.setInUse(['10.0.0.1', '10.0.0.2']);
    c.gc(2_000);
    c.gc(6_000);
    assert.deepEqual(
      c.zombies().map((z) => z.ip),
      ['10.0.0.2'],
    );
    assert.equal(new DNSCache().maxZombies, 10_000);
  });
});

describe('DNSCache snapshot and restore', () => {
  test('round trip keeps names, IPs, absolute expiry, endpoints and zombies', () => {
    const a = new DNSCache();
    a.learn('a.com', ['10.0.0.1', '2001:db8::1'], 60, 1_000, 'ns/p');
    a.learn('a.com', ['10.0.0.1'], 60, 1_000, 'ns/q');
    a.learn('b.com', ['10.0.0.2'], 5, 1_000);
    a.learn('c.com', ['10.0.0.3'], 1, 1_000, 'ns/p');
    a.setInUse(['10.0.0.3']);
    a.gc(3_000);
    const snap = a.snapshot(3_000);
    const b = new DNSCache();
    const added: string[] = [];
    b.subscribe((n, ips) => added.push(`${n} ${ips.join(',')}`));
    assert.deepEqual(b.restore(JSON.parse(JSON.stringify(snap)), 4_000), { restored: 3, expired: 0 });
    assert.deepEqual(b.rows(4_000), a.rows(4_000));
    assert.deepEqual(b.zombies(), a.zombies());
    assert.ok(added.includes('a.com. 10.0.0.1'), 'listeners hear restored entries (selections rebuilt)');
    assert.deepEqual(b.lookupName('b.com', 6_001), [], 'expiry is absolute: restart does not extend a TTL');
  });

  test('entries already expired at restore are skipped', () => {
    const a = new DNSCache();
    a.learn('a.com', ['10.0.0.1'], 1, 0);
    a.learn('b.com', ['10.0.0.2'], 100, 0);
    const b = new DNSCache();
    assert.deepEqual(b.restore(a.snapshot(0), 5_000), { restored: 1, expired: 1 });
    assert.deepEqual(b.lookupName('a.com', 5_000), []);
  });
});

describe('DNSCache.allowedUntil and revocations', () => {
  const rows: Array<{
    name: string;
    run: (c: DNSCache) => void;
    ask: string[];
    at: number;
    want: number | undefined;
    revocations: number;
  }> = [
    {
      name: 'the earliest expiry of the addresses',
      run: (c) => {
        c.learn('a.example', ['192.0.2.1'], 30, 0);
        c.learn('a.example', ['192.0.2.2'], 10, 0);
      },
      ask: ['192.0.2.1', '192.0.2.2'],
      at: 1000,
      want: 10_000,
      revocations: 0,
    },
    {
      name: 'one address unknown: undefined',
      run: (c) => c.learn('a.example', ['192.0.2.1'], 30, 0),
      ask: ['192.0.2.1', '192.0.2.9'],
      at: 1000,
      want: undefined,
      revocations: 0,
    },
    {
      name: 'expired: undefined (expiry is no revocation)',
      run: (c) => c.learn('a.example', ['192.0.2.1'], 1, 0),
      ask: ['192.0.2.1'],
      at: 2000,
      want: undefined,
      revocations: 0,
    },
    {
      name: 'evicted by the per-name cap: undefined, and counted as a revocation',
      run: (c) => {
        c.learn('a.example', ['192.0.2.1'], 10, 0);
        c.learn('a.example', ['192.0.2.2', '192.0.2.3'], 30, 0);
      },
      ask: ['192.0.2.1'],
      at: 1000,
      want: undefined,
      revocations: 1,
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      const c = new DNSCache({ maxIPsPerName: 2 });
      r.run(c);
      assert.equal(c.allowedUntil('A.example.', r.ask, r.at), r.want);
      assert.equal(c.revocations, r.revocations);
    });
  }
});
