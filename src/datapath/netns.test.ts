// What `--cleanup` may touch: only names with our prefix that cannot act as paths, and only
// state files of our shape.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ownedName } from './netns.ts';
import { readState } from './topology.ts';

describe('cleanup guards', () => {
  it('owns only Seawall names that are not paths', () => {
    const rows: Array<[string, string, boolean]> = [
      ['node', 'seawall-node1', true],
      ['pod', 'sw-0123456789', true],
      ['test node', 'seawall-t123-dp1', true],
      ['foreign', 'docker-ns', false],
      ['prefix inside', 'my-seawall-x', false],
      ['path traversal', 'seawall-../../etc', false],
      ['slash', 'sw-a/b', false],
      ['space', 'sw-a b', false],
    ];
    for (const [name, ns, want] of rows) assert.equal(ownedName(ns), want, name);
  });

  it('reads only state files of its shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seawall-state-'));
    const host = { key: 'pod:a/b', ns: 'sw-1', veth: 'swv1', ip: '10.0.0.1' };
    const good = { node: 'seawall-x', nodeIp: '172.31.255.1', pid: 1, hosts: [host] };
    const rows: Array<[string, string, boolean]> = [
      ['good', JSON.stringify(good), true],
      ['not JSON', '{', false],
      ['null', 'null', false],
      ['no hosts', JSON.stringify({ ...good, hosts: undefined }), false],
      ['pid a string', JSON.stringify({ ...good, pid: '1' }), false],
      ['host without ns', JSON.stringify({ ...good, hosts: [{ ...host, ns: 3 }] }), false],
    ];
    try {
      for (const [name, text, ok] of rows) {
        const f = join(dir, 'state.json');
        writeFileSync(f, text);
        assert.equal(readState(f) !== undefined, ok, name);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
