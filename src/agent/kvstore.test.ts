import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointSpec } from '../policy/types.ts';
import { agentKvstoreOptions, endpointsOfNode } from './kvstore.ts';

test('agent kvstore flags: converted, or an error naming the flag', () => {
  const ok: Array<[string, Parameters<typeof agentKvstoreOptions>[0], Record<string, unknown>]> = [
    ['node index', { kvstore: 'etcd://127.0.0.1:2379', nodeIndex: '2' }, { nodeIp: '172.31.254.2' }],
    ['node ip', { kvstore: 'etcd://127.0.0.1:2379', nodeIp: '10.9.9.9' }, { nodeIp: '10.9.9.9' }],
    [
      'everything',
      {
        kvstore: 'etcd://e:1',
        nodeIndex: '1',
        underlay: 'sw-ul',
        podCidr: ['10.1.0.0/16'],
        nodeLabel: ['zone=a', 'rack=r1=x'],
        k8sNode: 'node-1',
        leaseTtl: '5',
      },
      {
        underlay: 'sw-ul',
        podCIDRs: ['10.1.0.0/16'],
        nodeLabels: { zone: 'a', rack: 'r1=x' },
        k8sNode: 'node-1',
        leaseTtlSeconds: 5,
      },
    ],
  ];
  for (const [name, o, want] of ok) {
    const got = agentKvstoreOptions(o) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${name}: ${k}`);
  }
  const bad: Array<[string, Parameters<typeof agentKvstoreOptions>[0], RegExp]> = [
    ['no address', { kvstore: 'etcd://127.0.0.1:2379' }, /needs --node-index K or --node-ip IP/],
    ['bad url', { kvstore: 'etcd:/x', nodeIndex: '1' }, /expected etcd:\/\/HOST:PORT/],
    ['index 0', { kvstore: 'etcd://a:1', nodeIndex: '0' }, /node index 0: 1\.\.250/],
    ['index text', { kvstore: 'etcd://a:1', nodeIndex: 'x' }, /--node-index x: not a number/],
    ['bad ip', { kvstore: 'etcd://a:1', nodeIp: '10.1' }, /--node-ip 10\.1: not an IPv4 address/],
    [
      'bad cidr',
      { kvstore: 'etcd://a:1', nodeIndex: '1', podCidr: ['10.0.0.0/33'] },
      /--pod-cidr 10\.0\.0\.0\/33/,
    ],
    [
      'bad label',
      { kvstore: 'etcd://a:1', nodeIndex: '1', nodeLabel: ['zone'] },
      /--node-label zone: expected key=value/,
    ],
    [
      'short lease',
      { kvstore: 'etcd://a:1', nodeIndex: '1', leaseTtl: '1' },
      /--lease-ttl 1: seconds, at least 2/,
    ],
  ];
  for (const [name, o, re] of bad) assert.throws(() => agentKvstoreOptions(o), re, name);
});

test('an agent takes the endpoints of its node (node: defaults to node-1)', () => {
  const ep = (name: string, node?: string): EndpointSpec => ({
    name,
    namespace: 'x',
    labels: {},
    ip: '10.0.0.1',
    ...(node !== undefined ? { node } : {}),
  });
  const eps = [ep('a'), ep('b', 'node-1'), ep('c', 'node-2'), ep('d', 'seawall-node3')];
  const rows: Array<[string, string[]]> = [
    ['node-1', ['a', 'b']],
    ['node-2', ['c']],
    ['seawall-node3', ['d']],
    ['node-9', []],
  ];
  for (const [node, want] of rows)
    assert.deepEqual(
      endpointsOfNode(eps, node).map((e) => e.name),
      want,
      node,
    );
});
