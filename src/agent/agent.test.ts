// The agent's endpoint sources: Kubernetes manifests give one endpoint per workload, with the
// pod template's labels, service account and named ports, and Namespace labels.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadEndpoints } from './agent.ts';

test('loadEndpoints reads Deployments, Pods and Namespaces', async () => {
  const src = await loadEndpoints(join(import.meta.dirname, 'testdata', 'manifests'));
  assert.deepEqual(src.issues, []);
  assert.deepEqual(src.namespaces.get('shop'), { team: 'payments' });
  const byName = new Map(src.endpoints.map((e) => [`${e.namespace}/${e.name}`, e]));
  const ledger = byName.get('shop/ledger');
  assert.ok(ledger, 'a Deployment becomes an endpoint');
  assert.deepEqual(ledger.labels, { app: 'ledger' });
  assert.equal(ledger.serviceAccount, 'ledger-sa');
  assert.deepEqual(
    ledger.ports?.map((p) => [p.name, p.port]),
    [['http-api', 8080]],
  );
  assert.equal(byName.get('shop/client')?.ip, '10.0.7.10', 'a Pod keeps its status.podIP');
  assert.notEqual(ledger.ip, '10.0.7.10', 'allocated addresses avoid the ones in use');
});

test('the status API answers 500 instead of crashing; a failed reload does not stop later ones', async () => {
  const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { request } = await import('node:http');
  const { Agent } = await import('./agent.ts');
  const dir = mkdtempSync(join(tmpdir(), 'seawall-agent-unit-'));
  const socket = join(dir, 'agent.sock');
  mkdirSync(join(dir, 'policies'));
  const logs: string[] = [];
  // never started: no engine, no node, so status() and reload() throw inside
  const a = new Agent({ policies: join(dir, 'policies'), endpoints: dir, socket, log: (l) => logs.push(l) });
  const get = (path: string, method = 'GET'): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: socket, path, method }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
  await (a as unknown as { serve(): Promise<void> }).serve();
  try {
    const rows: Array<[string, string, string, number]> = [
      ['status throws', '/status', 'GET', 500],
      ['reload fails', '/reload', 'POST', 200],
      ['reload fails again (the chain is not stuck)', '/reload', 'POST', 200],
      ['unknown path', '/nope', 'GET', 404],
    ];
    for (const [name, path, method, want] of rows) assert.equal(await get(path, method), want, name);
    assert.equal(logs.filter((l) => l.startsWith('apply failed')).length, 2);
    // a policy store that cannot be read keeps the last good state (nothing removed)
    rmSync(join(dir, 'policies'), { recursive: true });
    await a.reload();
    assert.ok(logs.some((l) => l.includes('the last good state stays')));
  } finally {
    await a.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the status socket defaults to one per node, so agents of two nodes never share one', async () => {
  const { defaultSocket } = await import('./agent.ts');
  const rows: Array<[string, string | undefined, string]> = [
    ['the default node', undefined, '/run/seawall/seawall-node1/agent.sock'],
    ['another node', 'sw-b', '/run/seawall/sw-b/agent.sock'],
  ];
  for (const [name, node, want] of rows) assert.equal(defaultSocket(node), want, name);
});
