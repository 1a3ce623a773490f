import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { DNS_PROXY_NODE_FLAGS } from '../dns/node-flags.ts';
import { HTTP_PROXY_NODE_FLAGS } from './node-flags.ts';

describe('HTTP_PROXY_NODE_FLAGS', () => {
  // A flag this node does not know would stop the agent's proxy from starting at all.
  for (const flag of new Set([...HTTP_PROXY_NODE_FLAGS, ...DNS_PROXY_NODE_FLAGS])) {
    test(`${flag}: this node accepts it`, () => {
      const r = spawnSync(process.execPath, [flag, '-e', ''], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
    });
  }

  const rows = [
    {
      name: 'the young generation fixed (no shrinking while idle)',
      flags: ['--min-semi-space-size=16', '--max-semi-space-size=16'],
    },
    {
      name: 'no memory reducer (no compacting collections once the proxy goes quiet)',
      flags: ['--no-memory-reducer'],
    },
  ];
  for (const r of rows) {
    test(r.name, () => {
      for (const f of r.flags) assert.ok(HTTP_PROXY_NODE_FLAGS.includes(f), f);
    });
  }

  test('the DNS proxy: no memory reducer either', () => {
    assert.ok(DNS_PROXY_NODE_FLAGS.includes('--no-memory-reducer'));
  });

  test('a flag node does not know is refused (the check above can fail)', () => {
    const r = spawnSync(process.execPath, ['--no-such-v8-flag-seawall', '-e', ''], { encoding: 'utf8' });
    assert.ok(r.status !== 0 || r.stderr !== '', 'an unknown flag is reported');
  });
});
