import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSet } from '../labels/label.ts';
import { IdentityAllocator } from './allocator.ts';
import { formatPrefix, parsePrefix, prefixContains } from './cidr.ts';
import { IPCache } from './ipcache.ts';
import { ID, LOCAL_SCOPE } from './reserved.ts';

test('reserved identities have Cilium numbers', () => {
  const a = new IdentityAllocator();
  const rows: Array<[number, string]> = [
    [1, 'reserved:host'],
    [2, 'reserved:world'],
    [3, 'reserved:unmanaged'],
    [4, 'reserved:health'],
    [5, 'reserved:init'],
    [6, 'reserved:remote-node'],
    [7, 'reserved:kube-apiserver'],
    [8, 'reserved:ingress'],
    [9, 'reserved:world-ipv4'],
    [10, 'reserved:world-ipv6'],
  ];
  for (const [id, label] of rows) assert.deepEqual(a.get(id)?.labels.toStrings(), [label], label);
});

test('cluster identities from 256, shared per label set, released at zero refs', () => {
  const a = new IdentityAllocator();
  const x = a.allocate(LabelSet.fromStrings(['k8s:app=a']));
  const y = a.allocate(LabelSet.fromStrings(['k8s:app=b']));
  const x2 = a.allocate(LabelSet.fromStrings(['k8s:app=a']));
  assert.equal(x.id, 256);
  assert.equal(y.id, 257);
  assert.equal(x2, x);
  a.release(x);
  assert.ok(a.get(256));
  a.release(x);
  assert.equal(a.get(256), undefined);
});

test('CIDR identities: local scope, covering cidr labels plus world', () => {
  const a = new IdentityAllocator();
  const id = a.allocateCIDR(parsePrefix('10.1.0.0/16')!);
  assert.equal(id.id, (LOCAL_SCOPE | 1) >>> 0);
  const labels = id.labels.toStrings();
  assert.equal(labels.filter((l) => l.startsWith('cidr:')).length, 17);
  assert.ok(labels.includes('cidr:0.0.0.0/0'));
  assert.ok(labels.includes('cidr:10.0.0.0/8'));
  assert.ok(labels.includes('reserved:world'));
  assert.equal(a.allocateCIDR(parsePrefix('0.0.0.0/0')!).id, ID.world);
});

test('prefixes', () => {
  const rows: Array<[string, string, string, boolean]> = [
    ['inside', '10.0.0.0/8', '10.1.2.3/32', true],
    ['outside', '10.0.0.0/8', '11.0.0.1/32', false],
    ['shorter is not inside', '10.0.0.0/16', '10.0.0.0/8', false],
    ['equal', '192.168.0.0/16', '192.168.0.0/16', true],
    ['world contains all', '0.0.0.0/0', '1.2.3.4', true],
  ];
  for (const [name, o, i, want] of rows)
    assert.equal(prefixContains(parsePrefix(o)!, parsePrefix(i)!), want, name);
  assert.equal(formatPrefix(parsePrefix('10.1.2.3/8')!), '10.0.0.0/8');
  assert.equal(parsePrefix('10.0.0.0/33'), undefined);
});

test('ipcache: endpoints exact, others longest prefix, else world', () => {
  const c = new IPCache();
  c.upsertPrefix(parsePrefix('10.0.0.0/8')!, 100);
  c.upsertPrefix(parsePrefix('10.1.0.0/16')!, 101);
  c.upsertEndpoint('10.1.2.3', 300);
  const rows: Array<[string, string, number]> = [
    ['pod', '10.1.2.3', 300],
    ['longest prefix', '10.1.9.9', 101],
    ['shorter prefix', '10.9.9.9', 100],
    ['world', '8.8.8.8', ID.world],
  ];
  for (const [name, ip, want] of rows) assert.equal(c.lookup(ip), want, name);
});
