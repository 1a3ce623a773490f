import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { golden } from '../core/testing/golden.ts';
import { runDirFor } from '../datapath/topology.ts';
import { DNSCache } from '../fqdn/cache.ts';
import { saveCacheFile } from '../fqdn/persist.ts';
import { defaultCacheFile, type FqdnCacheListOptions, runFqdnCacheList } from './fqdn.ts';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const here = new URL('.', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'seawall-cli-fqdn-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function run(o: Partial<FqdnCacheListOptions>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runFqdnCacheList(
    { node: 'seawall-node1', output: 'table', ...o },
    { write: (s) => (out += s), error: (s) => (err += `${s}\n`), now: () => NOW },
  );
  return { code, out, err };
}

function cacheFile(): string {
  const c = new DNSCache();
  c.learn('api.github.com', ['192.0.2.10'], 300, NOW - 60_000, 'production/api-client');
  c.learn('api.github.com', ['192.0.2.10'], 300, NOW - 30_000, 'production/worker');
  c.learn('img.cdn.example.net', ['198.51.100.7', '2001:db8::7'], 60, NOW - 1_000, 'shop/frontend');
  c.learn('old.example.com', ['203.0.113.99'], 10, NOW - 20_000, 'shop/frontend');
  c.setInUse(['203.0.113.99']);
  c.gc(NOW - 5_000); // old.example.com expired with a live connection: a zombie
  const file = join(dir, 'fqdn-cache.json');
  saveCacheFile(file, c, NOW - 5_000);
  return file;
}

const guide = join(here, '../../examples/guide/tests/06-allow-external-apis.test.yaml');

describe('seawall fqdn cache list', () => {
  const rows: Array<{ name: string; opts: () => Partial<FqdnCacheListOptions>; golden: string }> = [
    { name: 'cache file, table', opts: () => ({ cache: cacheFile() }), golden: 'cache-file.golden' },
    {
      name: 'cache file, json',
      opts: () => ({ cache: cacheFile(), output: 'json' }),
      golden: 'cache-file.json.golden',
    },
    {
      name: 'cache file, one name',
      opts: () => ({ cache: cacheFile(), name: 'API.GitHub.com.' }),
      golden: 'cache-file-name.golden',
    },
    { name: 'PolicyTest replay, table', opts: () => ({ test: guide }), golden: 'policytest.golden' },
    {
      name: 'PolicyTest replay, json',
      opts: () => ({ test: guide, output: 'json' }),
      golden: 'policytest.json.golden',
    },
  ];
  for (const r of rows) {
    test(r.name, async () => {
      const got = await run(r.opts());
      assert.equal(got.err, '');
      assert.equal(got.code, 0);
      golden(join(here, 'testdata/fqdn', r.golden), got.out);
    });
  }

  test('a missing cache file: exit 2, says which file', async () => {
    const got = await run({ cache: join(dir, 'missing.json') });
    assert.equal(got.code, 2);
    assert.match(got.err, /missing\.json: cannot read/);
  });

  test('an invalid cache file: exit 2, says where', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(
      file,
      JSON.stringify({ version: 1, savedAt: 0, entries: [{ name: 'a.com' }], zombies: [] }),
    );
    const got = await run({ cache: file });
    assert.equal(got.code, 2);
    assert.match(got.err, /bad\.json: \$\.entries\[0\]\.ip: undefined is not an IP address/);
  });

  test('default cache file is in the node run dir', () => {
    assert.equal(defaultCacheFile('n1'), join(runDirFor('n1'), 'fqdn-cache.json'));
  });
});
