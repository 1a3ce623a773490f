import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSet } from '../labels/label.ts';
import { IdentityAllocator } from './allocator.ts';
import { MemoryIdentityBackend } from './backend.ts';
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

test('ipcache: each writer holds its own entry; an address resolves to the latest write still held', () => {
  const A = {};
  const B = {};
  const ip = '10.1.2.3';
  type Op = ['up', object | undefined, number] | ['del', object | undefined];
  const rows: Array<{ name: string; ops: Op[]; want: number }> = [
    {
      name: 'one writer: delete removes',
      ops: [
        ['up', A, 300],
        ['del', A],
      ],
      want: ID.world,
    },
    {
      name: 'two writers: the first delete leaves the second one’s',
      ops: [
        ['up', A, 300],
        ['up', B, 300],
        ['del', A],
      ],
      want: 300,
    },
    {
      name: 'latest write wins while both hold',
      ops: [
        ['up', A, 300],
        ['up', B, 301],
      ],
      want: 301,
    },
    {
      name: 'the latest writer leaves: the earlier one’s entry again',
      ops: [
        ['up', A, 300],
        ['up', B, 301],
        ['del', B],
      ],
      want: 300,
    },
    {
      name: 'a re-write by a writer counts as its latest',
      ops: [
        ['up', A, 300],
        ['up', B, 301],
        ['up', A, 302],
        ['del', A],
      ],
      want: 301,
    },
    {
      name: 'a writer holding nothing deletes nothing',
      ops: [
        ['up', A, 300],
        ['del', B],
      ],
      want: 300,
    },
    {
      name: 'no writer named: one writer for all such calls',
      ops: [
        ['up', undefined, 300],
        ['up', undefined, 301],
        ['del', undefined],
      ],
      want: ID.world,
    },
  ];
  for (const row of rows) {
    const c = new IPCache();
    for (const op of row.ops) {
      if (op[0] === 'up') c.upsertEndpoint(ip, op[2], op[1]);
      else c.deleteEndpoint(ip, op[1]);
    }
    assert.equal(c.lookup(ip), row.want, row.name);
    assert.equal(c.endpointIdentity(ip), row.want === ID.world ? undefined : row.want, row.name);
  }
});

test('ipcache: listeners hear what an address or prefix resolves to, until they unsubscribe', () => {
  const A = {};
  const B = {};
  const c = new IPCache();
  const heard: string[] = [];
  const off = c.addListener({
    ipcacheUpserted: (k, id) => heard.push(`+${k}=${id}`),
    ipcacheDeleted: (k) => heard.push(`-${k}`),
  });
  const p = parsePrefix('10.0.0.0/8')!;
  const rows: Array<[string, () => void, string[]]> = [
    ['new entry', () => c.upsertEndpoint('10.1.2.3', 300, A), ['+10.1.2.3=300']],
    ['a second writer, same identity: nothing changes', () => c.upsertEndpoint('10.1.2.3', 300, B), []],
    ['one writer leaves: still held', () => c.deleteEndpoint('10.1.2.3', A), []],
    ['a new identity', () => c.upsertEndpoint('10.1.2.3', 301, B), ['+10.1.2.3=301']],
    ['the last writer leaves', () => c.deleteEndpoint('10.1.2.3', B), ['-10.1.2.3']],
    ['a prefix', () => c.upsertPrefix(p, 100), ['+10.0.0.0/8=100']],
    ['the prefix again', () => c.upsertPrefix(p, 100), []],
    ['the prefix goes', () => c.deletePrefix(p), ['-10.0.0.0/8']],
    [
      'unsubscribed',
      () => {
        off();
        c.upsertEndpoint('10.1.2.4', 302, A);
      },
      [],
    ],
  ];
  for (const [name, act, want] of rows) {
    heard.length = 0;
    act();
    assert.deepEqual(heard, want, name);
  }
});

test('allocator: listeners hear additions, removals and relabels until they unsubscribe', () => {
  const a = new IdentityAllocator();
  const heard: string[] = [];
  const off = a.addListener({
    identityAdded: (i) => heard.push(`+${i.id}`),
    identityRemoved: (i) => heard.push(`-${i.id}`),
    identityUpdated: (i) => heard.push(`~${i.id}`),
  });
  const x = a.allocate(LabelSet.fromStrings(['k8s:app=a']));
  a.allocate(LabelSet.fromStrings(['k8s:app=a']));
  const c = a.allocateCIDR(parsePrefix('192.0.2.1/32')!);
  a.setFQDNNames(c, new Set(['a.example.']));
  a.release(x);
  a.release(x);
  off();
  a.allocate(LabelSet.fromStrings(['k8s:app=b']));
  assert.deepEqual(heard, ['+256', `+${c.id}`, `~${c.id}`, '-256']);
});

test('memory backend: the allocator and ipcache the engine always had', () => {
  const b = new MemoryIdentityBackend();
  assert.deepEqual(b.identities.get(ID.host)?.labels.toStrings(), ['reserved:host']);
  assert.equal(b.identities.allocate(LabelSet.fromStrings(['k8s:app=a'])).id, 256);
  assert.equal(b.ipcache.lookup('192.0.2.1'), ID.world);
});
