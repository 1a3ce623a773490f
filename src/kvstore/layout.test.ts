import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSet } from '../labels/label.ts';
import { parseEndpoint, prefixEnd } from './client.ts';
import {
  decodeIPPair,
  decodeNode,
  encodeNode,
  idKey,
  ipKey,
  labelsKey,
  maskLen,
  maskOf,
  nodeKey,
  parseIdKey,
  parseLabelsKey,
  parseValueKey,
  valueKey,
} from './layout.ts';

test('keys follow Cilium layout', () => {
  const ls = LabelSet.fromStrings(['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=default']);
  const rows: Array<[string, string, string]> = [
    ['labels key', labelsKey(ls), 'k8s:app=web;k8s:io.kubernetes.pod.namespace=default;'],
    ['id key', idKey(256), 'cilium/state/identities/v1/id/256'],
    [
      'reference key',
      valueKey(labelsKey(ls), 'seawall-node1'),
      'cilium/state/identities/v1/value/k8s:app=web;k8s:io.kubernetes.pod.namespace=default;/seawall-node1',
    ],
    ['ip key', ipKey('default', '10.1.0.5'), 'cilium/state/ip/v1/default/10.1.0.5'],
    ['node key', nodeKey('default', 'seawall-node2'), 'cilium/state/nodes/v1/default/seawall-node2'],
  ];
  for (const [name, got, want] of rows) assert.equal(got, want, name);
  assert.equal(parseLabelsKey(labelsKey(ls)).key, ls.key);
});

test('key parsing rejects what is not ours', () => {
  const rows: Array<[string, string, unknown]> = [
    ['id', 'cilium/state/identities/v1/id/300', 300],
    ['id with leading zero', 'cilium/state/identities/v1/id/0300', undefined],
    ['id not a number', 'cilium/state/identities/v1/id/abc', undefined],
    ['another prefix', 'cilium/state/ip/v1/default/1.2.3.4', undefined],
  ];
  for (const [name, key, want] of rows) assert.equal(parseIdKey(key), want, name);
  // labels may hold slashes (app.kubernetes.io/name): the node is the last segment
  assert.deepEqual(parseValueKey('cilium/state/identities/v1/value/k8s:app.kubernetes.io/name=x;/n1'), {
    labels: 'k8s:app.kubernetes.io/name=x;',
    node: 'n1',
  });
  assert.equal(parseValueKey('cilium/state/identities/v1/value/k8s:a=b;/'), undefined);
});

test('endpoints: etcd:// and http:// with a port, nothing else', () => {
  const rows: Array<[string, string | undefined]> = [
    ['etcd://127.0.0.1:2379', 'http://127.0.0.1:2379'],
    ['http://localhost:23790/', 'http://localhost:23790'],
    ['etcd://127.0.0.1', undefined],
    ['https://127.0.0.1:2379', undefined],
    ['etcd://127.0.0.1:0', undefined],
    ['127.0.0.1:2379', undefined],
  ];
  for (const [raw, want] of rows) {
    if (want === undefined) assert.throws(() => parseEndpoint(raw), /expected etcd:\/\/HOST:PORT/, raw);
    else assert.equal(parseEndpoint(raw), want, raw);
  }
  assert.deepEqual(prefixEnd('a/'), Buffer.from('a0'));
});

test('node records round-trip with Go-style masks', () => {
  for (const len of [0, 8, 16, 24, 32]) assert.equal(maskLen(maskOf(len)), len, `/${len}`);
  assert.equal(maskLen(Buffer.from([255, 0, 255, 0]).toString('base64')), undefined, 'not a prefix');
  const n = {
    name: 'seawall-node2',
    cluster: 'default',
    ip: '172.31.254.2',
    podCIDRs: ['10.2.0.0/16', '10.20.0.0/24'],
    labels: { zone: 'b' },
  };
  const raw = encodeNode(n);
  assert.match(raw, /"IPv4AllocCIDR":\{"IP":"10.2.0.0","Mask":"\/\/8AAA=="\}/);
  assert.deepEqual(decodeNode('k', raw), n);
});

test('bad values say where and why', () => {
  const rows: Array<[string, () => unknown, RegExp]> = [
    [
      'ip pair not JSON',
      () => decodeIPPair('cilium/state/ip/v1/default/1.1.1.1', '{'),
      /1\.1\.1\.1: not JSON/,
    ],
    ['ip pair without ID', () => decodeIPPair('k', '{"IP":"1.1.1.1"}'), /k: ID undefined/],
    ['ip pair negative ID', () => decodeIPPair('k', '{"IP":"1.1.1.1","ID":-1}'), /k: ID -1/],
    ['node without name', () => decodeNode('k', '{}'), /k: not a node/],
    ['node without address', () => decodeNode('k', '{"Name":"n"}'), /node n has no address/],
  ];
  for (const [name, f, re] of rows) assert.throws(f, re, name);
});
