import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { golden } from '../core/testing/golden.ts';
import { KvstoreIdentityBackend } from '../kvstore/backend.ts';
import { KvstoreClient } from '../kvstore/client.ts';
import type { StoreView } from '../kvstore/read.ts';
import { etcdBinary, freePort, startEtcd, type TestEtcd } from '../kvstore/testing/etcd.ts';
import { LabelSet } from '../labels/label.ts';
import { formatStore, runStoreList, type StoreListKind } from './kvstore.ts';

const here = new URL('.', import.meta.url).pathname;

const VIEW: StoreView = {
  nodes: [
    {
      name: 'seawall-node1',
      cluster: 'default',
      ip: '172.31.254.1',
      podCIDRs: ['10.1.0.0/16'],
      labels: { zone: 'a' },
    },
    { name: 'seawall-node2', cluster: 'default', ip: '172.31.254.2', podCIDRs: [], labels: {} },
  ],
  identities: [
    {
      id: 256,
      labels: ['k8s:app=client', 'k8s:io.kubernetes.pod.namespace=shop'],
      referencedBy: ['seawall-node1'],
    },
    { id: 257, labels: ['k8s:app=server'], referencedBy: [] },
  ],
  ipcache: [{ ip: '10.1.0.10', id: 256, hostIP: '172.31.254.1' }],
  problems: [],
};

test('store tables (human and JSON)', () => {
  const rows: Array<[StoreListKind, string]> = [
    ['node', 'human'],
    ['identity', 'human'],
    ['ipcache', 'human'],
    ['identity', 'json'],
  ];
  for (const [kind, output] of rows)
    golden(
      join(here, 'testdata/kvstore', `${kind}-list.${output === 'json' ? 'json' : 'txt'}`),
      formatStore(kind, VIEW, output),
    );
});

function io(): { out: string; err: string; write(s: string): void; error(s: string): void } {
  const r = {
    out: '',
    err: '',
    write: (s: string) => {
      r.out += s;
    },
    error: (s: string) => {
      r.err += `${s}\n`;
    },
  };
  return r;
}

test('bad flags and an unreachable store exit 2 with the reason', async () => {
  const port = await freePort(); // nothing listens there
  const rows: Array<[string, { kvstore?: string; output: string }, RegExp]> = [
    ['no store', { output: 'human' }, /--kvstore etcd:\/\/HOST:PORT .* is required/],
    ['bad url', { kvstore: 'etcd:/x', output: 'human' }, /expected etcd:\/\/HOST:PORT/],
    [
      'bad format',
      { kvstore: `etcd://127.0.0.1:${port}`, output: 'yaml' },
      /-o yaml: expected human or json/,
    ],
    ['nothing there', { kvstore: `etcd://127.0.0.1:${port}`, output: 'human' }, /unreachable/],
  ];
  const saved = process.env.SEAWALL_KVSTORE;
  delete process.env.SEAWALL_KVSTORE;
  try {
    for (const [name, o, re] of rows) {
      const r = io();
      assert.equal(await runStoreList('node', o, r), 2, name);
      assert.match(r.err, re, name);
    }
  } finally {
    if (saved !== undefined) process.env.SEAWALL_KVSTORE = saved;
  }
});

const skip = etcdBinary() === undefined ? 'etcd not installed' : false;
let etcd: TestEtcd;
before(async () => {
  if (!skip) etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

test('the lists read what agents published', { skip }, async () => {
  const b = new KvstoreIdentityBackend(new KvstoreClient(etcd.endpoint), {
    node: 'seawall-node7',
    nodeIp: '172.31.254.7',
    podCIDRs: ['10.7.0.0/16'],
  });
  await b.start();
  try {
    const id = await b.allocateLabels(LabelSet.fromStrings(['k8s:app=db']));
    b.identities.allocate(LabelSet.fromStrings(['k8s:app=db']));
    b.ipcache.upsertEndpoint('10.7.0.3', id);
    await b.client.flushed();
    const rows: Array<[StoreListKind, RegExp]> = [
      ['node', /seawall-node7\s+172\.31\.254\.7\s+10\.7\.0\.0\/16/],
      ['identity', new RegExp(`${id}\\s+k8s:app=db\\s+seawall-node7`)],
      ['ipcache', new RegExp(`10\\.7\\.0\\.3/32\\s+${id}\\s+172\\.31\\.254\\.7`)],
    ];
    for (const [kind, re] of rows) {
      const r = io();
      assert.equal(await runStoreList(kind, { kvstore: etcd.endpoint, output: 'human' }, r), 0, r.err);
      assert.match(r.out, re, kind);
    }
  } finally {
    await b.close({ revoke: true });
  }
});
