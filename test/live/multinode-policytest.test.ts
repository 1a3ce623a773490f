// `seawall test --live` on a PolicyTest with endpoints on node-1 and node-2 (Cilium's
// echo-other-node, client3): the cross-node flows are replayed through two nodes and etcd instead
// of being skipped, each judged where Cilium judges it: L3/L4 and L7 egress at the source's node,
// ingress at the destination's, outside peers as test hosts on the node of the flow's pod.

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
      // a world test host on node-2, where the traffic to echo-other-node enters
      'world',
    ])
      assert.equal(by(n)?.outcome, 'pass', `${n}: ${JSON.stringify(by(n))}`);
    assert.equal(code, 0, lines.join('\n'));
  });

  it('replays L7 (egress L7 into ingress-enforcing pods too), DNS/toFQDNs, world, CIDR and kube-apiserver flows across nodes, none skipped', async () => {
    const lines: string[] = [];
    const code = await runLive([join(import.meta.dirname, 'testdata', 'multinode-l7.policytest.yaml')], {
      output: 'json',
      write: (l) => lines.push(l),
      timeoutMs: 800,
    });
    const rows = lines.map(
      (l) =>
        JSON.parse(l) as { name?: string; outcome: string; live?: string; note?: string; records?: string[] },
    );
    const by = (n: string) => rows.find((r) => r.name === n);
    assert.equal(rows.length, 22, lines.join('\n'));
    for (const r of rows) assert.equal(r.outcome, 'pass', JSON.stringify(r));
    // judged by the proxies, not at L3/L4: the L7 answers say who refused
    for (const [n, rec] of [
      ['ingress l7 to echo-other-node', 'HTTP 200'],
      ['ingress l7 denied path', 'HTTP 403'],
      ['client3 to echo-same-node (ingress l7 at node-1)', 'HTTP 200'],
      ['egress l7 allowed', 'HTTP 200'],
      ['egress l7 denied path', 'HTTP 403'],
      ['grpc Get across nodes', 'gRPC status 0 OK'],
      ['grpc Remove across nodes', 'gRPC status 7 PERMISSION_DENIED'],
      ['kafka produce orders', 'Kafka answered'],
      ['kafka produce payments', 'Kafka refused'],
      ["dns through node-1's proxy to kube-dns on node-2", 'DNS NOERROR 203.0.113.10'],
      // egress L7 at node-1 into ingress-enforcing pods on node-2: node-2 judges client2 itself
      ['egress l7 into l4 ingress on node-2', 'HTTP 200'],
      ['egress l7 denied path before l4 ingress', 'HTTP 403'],
      ['egress l7 then ingress l7 on node-2', 'HTTP 200'],
      ['egress l7 allows what ingress l7 denies', 'HTTP 403'],
    ] as const)
      assert.ok(by(n)?.records?.[0]?.startsWith(rec), `${n}: ${JSON.stringify(by(n))}`);
    // node-2 drops client2 (not remote-node; from node-1's address it would have passed): node-1's
    // proxy answers 503 (its upstream did not connect) or the client gives up first
    const nodesOnly = by('egress l7 into an ingress for remote-node only');
    assert.match(nodesOnly?.records?.[0] ?? '', /^HTTP (503|no answer)$/, JSON.stringify(nodesOnly));
    assert.equal(code, 0, lines.join('\n'));
  });
});
