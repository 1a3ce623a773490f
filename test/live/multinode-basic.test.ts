// Two nodes on one underlay with a private etcd: egress judged at the source node, ingress at the
// destination node by the source address's identity from the ipcache, fromNodes by node labels,
// and a pod joining on one node allowed on the other once its key arrived.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdBinary } from '../../src/kvstore/testing/etcd.ts';
import { loadPolicyText } from '../../src/policy-api/load.ts';
import { LiveCluster } from '../../src/testbed/cluster.ts';
import { ProbePool } from '../../src/testbed/probe.ts';
import { liveSkipReason, testNode } from './helpers.ts';

const skip = liveSkipReason() ?? (etcdBinary() === undefined ? 'needs etcd (etcd-server)' : undefined);

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: server-in, namespace: mn}
spec:
  endpointSelector: {matchLabels: {app: server}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: client}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
  - fromNodes: [{matchLabels: {zone: a}}]
    toPorts: [{ports: [{port: "9090", protocol: TCP}]}]
  - fromEntities: [cluster]
    toPorts: [{ports: [{port: "7070", protocol: TCP}]}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: client-out, namespace: mn}
spec:
  endpointSelector: {matchLabels: {app: client}}
  egress:
  - toEndpoints: [{matchLabels: {app: server}}]
    toPorts: [{ports: [{port: "8080", protocol: TCP}, {port: "7070", protocol: TCP}]}]
`;

describe('two nodes through etcd', { skip }, () => {
  let cluster: LiveCluster;
  const probes = new ProbePool();
  const n1 = testNode('mn');
  const n2 = testNode('mn');
  before(async () => {
    const policies = loadPolicyText('policy.yaml', POLICY).policies;
    assert.equal(policies.length, 2);
    cluster = await LiveCluster.start({
      nodes: [
        {
          name: n1,
          labels: { zone: 'a' },
          pods: [
            { name: 'client', namespace: 'mn', labels: { app: 'client' }, ip: '10.61.1.10' },
            { name: 'intruder', namespace: 'mn', labels: { app: 'intruder' }, ip: '10.61.1.11' },
          ],
          podCIDRs: ['10.61.1.0/24'],
        },
        {
          name: n2,
          labels: { zone: 'b' },
          pods: [
            { name: 'server', namespace: 'mn', labels: { app: 'server' }, ip: '10.61.2.20' },
            { name: 'neighbour', namespace: 'mn', labels: { app: 'intruder' }, ip: '10.61.2.21' },
          ],
          podCIDRs: ['10.61.2.0/24'],
        },
      ],
      policies,
      namespaces: new Map([['mn', {}]]),
    });
    await cluster.settle();
    const server = cluster.node(n2).rt.datapath.live({ kind: 'endpoint', namespace: 'mn', name: 'server' })!;
    for (const port of [7070, 8080, 9090]) await probes.get(server.ns).listen('tcp', port);
  });
  after(async () => {
    probes.closeAll();
    await cluster?.stop();
  });

  const nsOf = (node: string, pod: string): string =>
    cluster.node(node).rt.datapath.live({ kind: 'endpoint', namespace: 'mn', name: pod })!.ns;

  it('one identity per label set on both nodes, remote pods in each ipcache', () => {
    const e1 = cluster.node(n1).engine;
    const e2 = cluster.node(n2).engine;
    for (const ip of ['10.61.1.10', '10.61.1.11', '10.61.2.20', '10.61.2.21'])
      assert.equal(e1.identityOf({ kind: 'ip', ip }), e2.identityOf({ kind: 'ip', ip }), ip);
    assert.equal(
      e1.identityOf({ kind: 'ip', ip: '10.61.1.11' }),
      e1.identityOf({ kind: 'ip', ip: '10.61.2.21' }),
    );
    const ipc = cluster.node(n1).rt.datapath.nft.state.ipcache;
    assert.equal(ipc.get('10.61.2.20'), e1.identityOf({ kind: 'ip', ip: '10.61.2.20' }));
  });

  it('cross-node flows: egress at the source, ingress at the destination, by identity', async () => {
    const rows: Array<[string, string, string, number, boolean]> = [
      ['client → server:8080 (both sides allow)', n1, 'client', 8080, true],
      ['client → server:7070 (cluster entity)', n1, 'client', 7070, true],
      ['client → server:9090 (client egress denies)', n1, 'client', 9090, false],
      ['intruder → server:8080 (server ingress denies the remote identity)', n1, 'intruder', 8080, false],
      ['intruder → server:7070 (cluster: every pod of every node)', n1, 'intruder', 7070, true],
      ['node1 host → server:9090 (fromNodes zone=a)', n1, '', 9090, true],
      ['node1 host → server:8080 (remote-node, not a client)', n1, '', 8080, false],
      ['node1 host → server:7070 (cluster includes remote-node)', n1, '', 7070, true],
      ['neighbour (same node) → server:8080', n2, 'neighbour', 8080, false],
    ];
    for (const [name, node, pod, port, want] of rows) {
      const ns = pod === '' ? node : nsOf(node, pod);
      const r = await probes.get(ns).connect('tcp', '10.61.2.20', port, 800);
      assert.equal(r.passed, want, `${name}: ${r.detail}`);
    }
  });

  it('a pod joining on node1 is allowed on node2 once its identity and address arrived', async () => {
    const t0 = performance.now();
    const applied = cluster.node(n2).kv.nextApplied();
    await cluster
      .node(n1)
      .kv.addPod({ name: 'client2', namespace: 'mn', labels: { app: 'client' }, ip: '10.61.1.12' });
    await applied;
    const ms = performance.now() - t0;
    const r = await probes.get(nsOf(n1, 'client2')).connect('tcp', '10.61.2.20', 8080, 800);
    assert.ok(r.passed, `client2 → server: ${r.detail} (join to applied on node2: ${ms.toFixed(0)} ms)`);
  });
});
