// Which cross-node flows `seawall test --live` replays: all but one shape, egress L7 at the
// source's node into a destination on another node that enforces ingress (the proxy's upstream
// leaves from its node address there).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { parsePolicyTestText } from '../policytest/parse.ts';
import { prepareEngine } from '../policytest/runner.ts';
import { isMultiNode, proxiedIntoIngress } from './live-multinode.ts';

const TEXT = `
apiVersion: seawall/v1
kind: PolicyTest
metadata: { name: multinode-skips }
spec:
  policies:
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: { name: client-l7, namespace: t }
      spec:
        endpointSelector: { matchLabels: { app: client } }
        egress:
          - toEndpoints: [{ matchLabels: {} }]
            toPorts:
              - ports: [{ port: "8080", protocol: TCP }]
                rules: { http: [{ method: GET }] }
          - toEndpoints: [{ matchLabels: {} }]
            toPorts: [{ ports: [{ port: "9090", protocol: TCP }] }]
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: { name: guarded-in, namespace: t }
      spec:
        endpointSelector: { matchLabels: { app: guarded } }
        ingress:
          - fromEndpoints: [{ matchLabels: { app: client } }]
  endpoints:
    - { name: client, namespace: t, labels: { app: client }, ip: 10.70.1.1, node: node-1 }
    - { name: near, namespace: t, labels: { app: guarded }, ip: 10.70.1.2, node: node-1 }
    - { name: guarded, namespace: t, labels: { app: guarded }, ip: 10.70.2.1, node: node-2 }
    - { name: open, namespace: t, labels: { app: open }, ip: 10.70.2.2, node: node-2 }
  flows:
    - { from: t/client, to: t/guarded, port: 8080, http: { method: GET, path: / }, expect: allowed }
    - { from: t/client, to: t/guarded, port: 8080, expect: allowed }
    - { from: t/client, to: t/open, port: 8080, http: { method: GET, path: / }, expect: allowed }
    - { from: t/client, to: t/near, port: 8080, http: { method: GET, path: / }, expect: allowed }
    - { from: t/client, to: t/guarded, port: 9090, expect: allowed }
    - { from: t/open, to: t/guarded, port: 8080, expect: denied }
    - { from: world, to: t/guarded, port: 8080, expect: denied }
`;

test('proxiedIntoIngress: only egress L7 into another node that enforces ingress (a 503 there is a denial)', async () => {
  const parsed = await parsePolicyTestText('multinode-skips.yaml', TEXT);
  assert.deepEqual(
    parsed.issues.filter((i) => i.severity === 'error'),
    [],
  );
  const t = parsed.tests[0]!;
  assert.equal(isMultiNode(t), true);
  const { engine } = prepareEngine(t, defaultEngineFactory);
  const rows: Array<{ name: string; flow: number; proxied: boolean }> = [
    { name: 'egress L7 into an enforcing endpoint on another node', flow: 0, proxied: true },
    { name: 'the same redirected connection without a request', flow: 1, proxied: true },
    { name: 'egress L7 into a node-2 endpoint without ingress policy', flow: 2, proxied: false },
    { name: 'egress L7 into an enforcing endpoint on the same node', flow: 3, proxied: false },
    { name: 'an L4 allow into an enforcing endpoint on another node', flow: 4, proxied: false },
    { name: 'a source without egress L7', flow: 5, proxied: false },
    { name: 'world into an enforcing endpoint', flow: 6, proxied: false },
  ];
  for (const r of rows) assert.equal(proxiedIntoIngress(t, engine, t.flows[r.flow]!), r.proxied, r.name);
});
