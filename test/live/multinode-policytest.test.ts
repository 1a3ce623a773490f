// `seawall test --live` on a PolicyTest with endpoints on node-1 and node-2 (Cilium's
// echo-other-node): the cross-node flows are replayed through two nodes and etcd instead of
// being skipped, each judged where Cilium judges it.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { etcdBinary } from '../../src/kvstore/testing/etcd.ts';
import { runLive } from '../../src/testbed/live-test.ts';
import { liveSkipReason } from './helpers.ts';

const skip = liveSkipReason() ?? (etcdBinary() === undefined ? 'needs etcd (etcd-server)' : undefined);

describe('seawall test --live across nodes', { skip }, () => {
  it('replays echo-other-node flows through two nodes', async () => {
    const lines: string[] = [];
    const code = await runLive([join(import.meta.dirname, 'testdata', 'multinode.policytest.yaml')], {
      output: 'json',
      write: (l) => lines.push(l),
      timeoutMs: 800,
    });
    const rows = lines.map(
      (l) => JSON.parse(l) as { name?: string; outcome: string; live?: string; note?: string },
    );
    const by = (n: string) => rows.find((r) => r.name === n);
    for (const n of [
      'client to echo-other-node',
      'client to echo-same-node',
      'other to echo-other-node (ingress at node-2)',
      'client2 to echo-other-node (egress at node-1)',
      'echo-other-node to client (no policy)',
      'wrong port',
    ])
      assert.equal(by(n)?.outcome, 'pass', `${n}: ${JSON.stringify(by(n))}`);
    assert.equal(by('world')?.outcome, 'skip', 'world needs test hosts per node');
    assert.match(by('world')?.note ?? '', /multi-node/);
    assert.equal(code, 0, lines.join('\n'));
  });
});
