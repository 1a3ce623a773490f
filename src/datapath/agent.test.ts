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
