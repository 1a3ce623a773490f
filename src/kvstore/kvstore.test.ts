// The etcd backend against a real etcd (a private one per file: src/kvstore/testing/etcd.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LabelSet } from '../labels/label.ts';
import { PolicyEngine } from '../policy/engine.ts';
import { KvstoreIdentityBackend } from './backend.ts';
import { KvstoreClient } from './client.ts';
import { idKey, labelsKey, valueKey } from './layout.ts';
import { readStore } from './read.ts';
import { etcdBinary, startEtcd, type TestEtcd } from './testing/etcd.ts';

const skip = etcdBinary() === undefined ? 'etcd not installed (apt-get install etcd-server)' : false;
let etcd: TestEtcd;
const open: KvstoreIdentityBackend[] = [];

before(async () => {
  if (!skip) etcd = await startEtcd();
});
after(async () => {
  for (const b of open.splice(0)) await b.close().catch(() => {});
  await etcd?.stop();
});

let nodeSeq = 0;
async function backend(
  opts: { ttl?: number; node?: string; nodeIp?: string } = {},
): Promise<KvstoreIdentityBackend> {
  nodeSeq++;
  const c = new KvstoreClient(etcd.endpoint, { leaseTtlSeconds: opts.ttl ?? 30, retryMs: 100 });
  const b = new KvstoreIdentityBackend(c, {
    node: opts.node ?? `sw-n${nodeSeq}`,
    nodeIp: opts.nodeIp ?? `172.31.254.${nodeSeq}`,
  });
  await b.start();
  open.push(b);
  return b;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const L = (...s: string[]): LabelSet => LabelSet.fromStrings(s);

test('same labels get the same identity on every node; concurrent allocators never share a number', {
  skip,
}, async () => {
  const [a, b] = await Promise.all([backend(), backend()]);
  const tag = `t${Date.now()}`;
  // the same 10 label sets from both nodes at once, plus 10 sets each node alone
  const shared = Array.from({ length: 10 }, (_, i) => L(`k8s:app=${tag}-s${i}`));
  const onlyA = Array.from({ length: 10 }, (_, i) => L(`k8s:app=${tag}-a${i}`));
  const onlyB = Array.from({ length: 10 }, (_, i) => L(`k8s:app=${tag}-b${i}`));
  const [sa, sb, oa, ob] = await Promise.all([
    Promise.all(shared.map((l) => a.allocateLabels(l))),
    Promise.all(shared.map((l) => b.allocateLabels(l))),
    Promise.all(onlyA.map((l) => a.allocateLabels(l))),
    Promise.all(onlyB.map((l) => b.allocateLabels(l))),
  ]);
  assert.deepEqual(sa, sb, 'one number per label set');
  const all = [...sa, ...oa, ...ob];
  assert.equal(new Set(all).size, 30, `30 distinct numbers: ${all.join(',')}`);
  for (const id of all) assert.ok(id >= 256 && id <= 65535, `${id} in the cluster range`);
  // each node learns the other's through the watch
  await waitFor('b learns a-only identities', () => oa.every((id) => b.identities.get(id) !== undefined));
  assert.equal(b.identities.get(oa[0]!)!.labels.key, onlyA[0]!.key);
});

test('references: engine allocate/release write and remove the node key; GC collects the unreferenced only', {
  skip,
}, async () => {
  const [a, b] = await Promise.all([backend(), backend()]);
  const tag = `r${Date.now()}`;
  const keep = L(`k8s:app=${tag}-keep`);
  const drop = L(`k8s:app=${tag}-drop`);
  const idKeep = await a.allocateLabels(keep);
  const idDrop = await a.allocateLabels(drop);
  const ik = a.identities.allocate(keep);
  const idr = a.identities.allocate(drop);
  a.identities.release(idr);
  await a.client.flushed();
  let view = await readStore(a.client);
  const row = (id: number) => view.identities.find((r) => r.id === id);
  assert.deepEqual(row(idKeep)?.referencedBy, [a.node]);
  assert.deepEqual(row(idDrop)?.referencedBy, [], 'released: no reference left');
  const collected = await b.gc();
  assert.ok(collected.includes(idDrop), `collected ${collected.join(',')}`);
  assert.ok(!collected.includes(idKeep));
  view = await readStore(a.client);
  assert.equal(row(idDrop), undefined);
  await waitFor('a forgets the collected identity', () => a.identities.get(idDrop) === undefined);
  assert.equal(a.identities.get(ik.id), ik);
  // The labels come back: a new allocation (the old number may or may not be reused).
  const again = await a.allocateLabels(drop);
  assert.ok(again >= 256);
  assert.equal((await a.client.list(idKey(again))).entries.get(idKey(again)), labelsKey(drop));
});

test('an engine on the etcd backend: a new label set is allocated at the edge, remote endpoints resolve', {
  skip,
}, async () => {
  const [a, b] = await Promise.all([backend(), backend()]);
  const tag = `e${Date.now()}`;
  const ea = new PolicyEngine({ localNode: a.node }, { identity: a });
  const eb = new PolicyEngine({ localNode: b.node }, { identity: b });
  const spec = { name: 'web', namespace: tag, ip: '10.9.0.5', labels: { app: 'web' } };
  assert.throws(() => ea.upsertEndpoint(spec), /no cluster identity yet/);
  assert.equal(ea.identityOf({ kind: 'ip', ip: '10.9.0.5' }), 2, 'nothing changed: world');
  await a.withIdentities(() => ea.upsertEndpoint(spec));
  const id = ea.identityOf({ kind: 'ip', ip: '10.9.0.5' });
  assert.ok(id >= 256);
  await waitFor('b resolves the remote pod', () => eb.identityOf({ kind: 'ip', ip: '10.9.0.5' }) === id);
  assert.equal(b.remoteEndpoints().next().value?.hostIP, a.nodeIp);
  await a.client.flushed();
  assert.ok(
    (await a.client.list(valueKey(labelsKey(a.identities.get(id)!.labels), a.node))).entries.size === 1,
  );
  ea.removeEndpoint(tag, 'web');
  await waitFor('b drops it', () => eb.identityOf({ kind: 'ip', ip: '10.9.0.5' }) === 2);
});

test('a dead agent: its keys stay until its lease expires; a pod that moved keeps its new node key', {
  skip,
}, async () => {
  const a = await backend({ ttl: 2 });
  const b = await backend();
  const c = await backend();
  const tag = `d${Date.now()}`;
  const id = await a.allocateLabels(L(`k8s:app=${tag}`));
  a.identities.allocate(L(`k8s:app=${tag}`));
  a.ipcache.upsertEndpoint('10.9.1.1', id, {});
  a.ipcache.upsertEndpoint('10.9.1.2', id, {});
  await a.client.flushed();
  await waitFor(
    'b sees both',
    () => b.ipcache.lookup('10.9.1.1') === id && b.ipcache.lookup('10.9.1.2') === id,
  );
  // 10.9.1.2 moves to c (another identity) before a dies: c's key wins and a's delete is a no-op
  const id2 = await c.allocateLabels(L(`k8s:app=${tag}-2`));
  c.ipcache.upsertEndpoint('10.9.1.2', id2, {});
  await c.client.flushed();
  a.ipcache.deleteEndpoint('10.9.1.2', {}); // another owner: nothing
  await waitFor('b sees the move', () => b.ipcache.lookup('10.9.1.2') === id2);
  // a dies without revoking: its entries live until the lease (2 s) expires
  await a.client.close();
  open.splice(open.indexOf(a), 1);
  assert.equal(b.ipcache.lookup('10.9.1.1'), id, 'still there right after the death');
  await waitFor(
    "lease expiry removes a dead agent's endpoint",
    () => b.ipcache.lookup('10.9.1.1') === 2,
    15_000,
  );
  assert.equal(b.ipcache.lookup('10.9.1.2'), id2, 'the moved pod is untouched');
  assert.ok(!b.nodes.has(a.node), 'its node record expired too');
});

test('etcd stopped and started: mirrors are kept, writes wait, the watch resyncs', { skip }, async () => {
  const [a, b] = await Promise.all([backend(), backend()]);
  const tag = `o${Date.now()}`;
  const id = await a.allocateLabels(L(`k8s:app=${tag}`));
  const owner = {};
  a.ipcache.upsertEndpoint('10.9.2.1', id, owner);
  await a.client.flushed();
  await waitFor('b sees it', () => b.ipcache.lookup('10.9.2.1') === id);
  await etcd.pause();
  await waitFor('b reports the store unreachable', () => !b.client.status.reachable);
  assert.equal(b.ipcache.lookup('10.9.2.1'), id, 'last state kept');
  // a known label set still gets its identity while the store is away; the writes wait
  a.identities.allocate(L(`k8s:app=${tag}`));
  a.ipcache.upsertEndpoint('10.9.2.2', id, owner);
  a.ipcache.deleteEndpoint('10.9.2.1', owner);
  assert.equal(a.ipcache.lookup('10.9.2.2'), id);
  await etcd.resume();
  await waitFor(
    'b resyncs',
    () => b.ipcache.lookup('10.9.2.2') === id && b.ipcache.lookup('10.9.2.1') === 2,
    20_000,
  );
  await waitFor('reachable again', () => a.client.status.reachable && b.client.status.reachable, 20_000);
});

test("a local entry shadows another node's for the same address; the remote one returns when it goes", {
  skip,
}, async () => {
  const [a, b] = await Promise.all([backend(), backend()]);
  const tag = `s${Date.now()}`;
  const idA = await a.allocateLabels(L(`k8s:app=${tag}-a`));
  const idB = await b.allocateLabels(L(`k8s:app=${tag}-b`));
  a.ipcache.upsertEndpoint('10.9.3.1', idA, {});
  await a.client.flushed();
  await waitFor("b sees a's entry", () => b.ipcache.lookup('10.9.3.1') === idA);
  const owner = {};
  b.ipcache.upsertEndpoint('10.9.3.1', idB, owner);
  assert.equal(b.ipcache.lookup('10.9.3.1'), idB, 'local wins');
  b.ipcache.deleteEndpoint('10.9.3.1', owner);
  assert.equal(b.ipcache.lookup('10.9.3.1'), idA, 'the remote entry is back');
});

test('fences: every other node confirms, or is named after the timeout', { skip }, async () => {
  const [a, b, c] = await Promise.all([backend(), backend(), backend()]);
  await waitFor('a knows both nodes', () => a.nodes.has(b.node) && a.nodes.has(c.node));
  b.onFence((ip, req) => b.ackFence(ip, req));
  c.onFence((ip, req) => c.ackFence(ip, req));
  // (the nodes of earlier tests in this file are still up and never confirm)
  const silent = [...a.nodes.keys()].filter((n) => n !== a.node && n !== b.node && n !== c.node).sort();
  const t0 = Date.now();
  assert.deepEqual((await a.fence('10.9.4.1', 1000)).sort(), silent, 'b and c confirmed');
  if (silent.length > 0) assert.ok(Date.now() - t0 >= 900, 'waited for the silent ones');
  const d = await backend(); // a node that never confirms
  await waitFor('a knows d', () => a.nodes.has(d.node));
  assert.ok((await a.fence('10.9.4.2', 600)).includes(d.node));
  await a.client.flushed();
  assert.equal((await a.client.list('cilium/state/seawall/v1/fence/')).entries.size, 0, 'fence keys removed');
});
