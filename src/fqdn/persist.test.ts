import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { DNSCache } from './cache.ts';
import { CacheFileError, loadCacheFile, parseSnapshot, readCacheFile, saveCacheFile } from './persist.ts';

const dir = mkdtempSync(join(tmpdir(), 'seawall-fqdn-persist-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('cache file', () => {
  test('save then load into a fresh cache (an agent restart)', () => {
    const file = join(dir, 'fqdn-cache.json');
    const a = new DNSCache();
    a.learn('api.example.com', ['203.0.113.5'], 300, 1_000, 'prod/app');
    saveCacheFile(file, a, 2_000);
    assert.deepEqual(readdirSync(dir), ['fqdn-cache.json'], 'no temporary file left');
    const b = new DNSCache();
    assert.deepEqual(loadCacheFile(file, b, 3_000), { restored: 1, expired: 0, missing: false });
    assert.deepEqual(b.lookupName('api.example.com', 3_000), ['203.0.113.5']);
    assert.deepEqual(b.lookupsOf('api.example.com', 3_000)[0]!.endpoint, 'prod/app');
  });

  test('a missing file is an empty cache', () => {
    assert.deepEqual(loadCacheFile(join(dir, 'nope.json'), new DNSCache(), 0), {
      restored: 0,
      expired: 0,
      missing: true,
    });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['not an object', [], /\$: not an object/],
    [
      'wrong version',
      { version: 2, savedAt: 0, entries: [], zombies: [] },
      /\$\.version: unsupported version 2/,
    ],
    ['entries not a list', { version: 1, savedAt: 0, entries: {}, zombies: [] }, /\$\.entries: not a list/],
    [
      'bad ip',
      {
        version: 1,
        savedAt: 0,
        entries: [{ name: 'a.com.', ip: '1.2.3', expiresAt: 1, endpoints: [] }],
        zombies: [],
      },
      /\$\.entries\[0\]\.ip: "1\.2\.3" is not an IP address/,
    ],
    [
      'bad name',
      {
        version: 1,
        savedAt: 0,
        entries: [{ name: 'a b', ip: '1.2.3.4', expiresAt: 1, endpoints: [] }],
        zombies: [],
      },
      /\$\.entries\[0\]\.name: "a b" is not a DNS name/,
    ],
    [
      'negative time',
      {
        version: 1,
        savedAt: 0,
        entries: [{ name: 'a.com', ip: '1.2.3.4', expiresAt: -1, endpoints: [] }],
        zombies: [],
      },
      /\$\.entries\[0\]\.expiresAt: not a time/,
    ],
    [
      'zombie endpoints not a list',
      {
        version: 1,
        savedAt: 0,
        entries: [],
        zombies: [{ ip: '1.2.3.4', names: [], endpoints: 'x', expiredAt: 0 }],
      },
      /\$\.zombies\[0\]\.endpoints: not a list/,
    ],
  ];
  for (const [name, data, want] of bad) {
    test(`invalid: ${name}`, () => {
      assert.throws(
        () => parseSnapshot(data, 'f.json'),
        (e: unknown) => e instanceof CacheFileError && /^f\.json: /.test(e.message) && want.test(e.message),
      );
    });
  }

  test('not JSON names the file', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{');
    assert.throws(() => readCacheFile(file), /broken\.json: not JSON/);
  });
});
