// Issue 9, live gRPC: real @grpc/grpc-js calls from a client pod to a grpc-js server pod through
// the node's redirect and proxy. Each stream is judged as POST /pkg.Service/Method: an allowed
// unary call and an allowed bidirectional stream get their answers; a denied method gets
// PERMISSION_DENIED (7) and never reaches the server. Then `seawall test --live` on a PolicyTest
// with gRPC flows: every flow sent (none skipped) and passed.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ProxyComponent } from '../../src/agent/proxy.ts';
import { NodeRuntime } from '../../src/agent/runtime.ts';
import { delNetns, netnsExists } from '../../src/datapath/netns.ts';
import { FakeEngine } from '../../src/policy/testing/fake-engine.ts';
import type { L7RuleSet, MapStateEntry } from '../../src/policy/types.ts';
import { ADDON_PATH } from '../../src/proxy/origdst.ts';
import { grpcCall } from '../../src/testbed/grpc-probe.ts';
import { GRPCServers } from '../../src/testbed/grpc-server.ts';
import { type LiveFlowResult, runLive } from '../../src/testbed/live-test.ts';
import { entry, liveSkipReason, testNode } from './helpers.ts';

const skip =
  liveSkipReason() ??
  (existsSync(ADDON_PATH) ? undefined : `addon not built (${ADDON_PATH}); run scripts/build-addon.sh`);

const pos = { file: 'live', line: 1, column: 1 };
const grpcRules = (...paths: string[]): L7RuleSet => ({
  parser: 'http',
  rules: paths.map((path) => ({ pos, method: 'POST', path })),
});
const redirect = (identity: number, port: number, l7: L7RuleSet): MapStateEntry => ({
  ...entry('INGRESS', identity, 6, port, port, 'redirect'),
  l7,
});

describe('gRPC through the node proxy (issue 9)', { skip, timeout: 180_000 }, () => {
  const net = 100 + (process.pid % 100);
  const clientIP = `10.${net}.11.1`;
  const serverIP = `10.${net}.11.2`;
  const engine = new FakeEngine();
  const logs: string[] = [];
  const rt = new NodeRuntime({
    engine,
    node: testNode('grpc'),
    flows: false,
    components: [new ProxyComponent({ parser: 'http', log: (l) => logs.push(l) })],
    log: (l) => logs.push(l),
  });
  const servers = new GRPCServers();
  let clientNs = '';
  let serverNs = '';

  before(async () => {
    engine.upsertEndpoint({ name: 'client', namespace: 'g', labels: { app: 'client' }, ip: clientIP });
    engine.upsertEndpoint({ name: 'server', namespace: 'g', labels: { app: 'server' }, ip: serverIP });
    const clientId = engine.identityOf({ kind: 'endpoint', namespace: 'g', name: 'client' });
    engine.setPolicy('g', 'server', {
      ingress: { enforced: true, defaultDeny: true },
      entries: [redirect(clientId, 50051, grpcRules('/shop.Cart/Get', '/shop.Cart/Chat'))],
    });
    await rt.start({
      pods: [
        { name: 'client', namespace: 'g', labels: { app: 'client' }, ip: clientIP },
        { name: 'server', namespace: 'g', labels: { app: 'server' }, ip: serverIP },
      ],
    });
    clientNs = rt.datapath.live({ kind: 'endpoint', namespace: 'g', name: 'client' })!.ns;
    serverNs = rt.datapath.live({ kind: 'endpoint', namespace: 'g', name: 'server' })!.ns;
    await servers.start(
      serverNs,
      new Map([
        [
          50051,
          [
            { path: 'shop.Cart/Get', kind: 'unary' as const },
            { path: 'shop.Cart/Remove', kind: 'unary' as const },
            { path: 'shop.Cart/Chat', kind: 'bidi' as const },
          ],
        ],
      ]),
    );
  });

  after(async () => {
    await servers.closeAll();
    await rt.stop().catch(() => {});
    for (const h of rt.datapath.topo.records) await delNetns(h.ns);
    if (netnsExists(rt.node)) await delNetns(rt.node);
  });

  it('an allowed unary call is answered through the proxy', async () => {
    const r = await grpcCall(clientNs, serverIP, 50051, { path: 'shop.Cart/Get', kind: 'unary' }, 5000);
    assert.deepEqual(r, { code: 0, details: '', messages: ['ok /shop.Cart/Get probe'] }, logs.join('\n'));
  });

  it('an allowed bidirectional stream carries every message both ways', async () => {
    const r = await grpcCall(clientNs, serverIP, 50051, { path: 'shop.Cart/Chat', kind: 'bidi' }, 5000);
    assert.equal(r.code, 0, r.details);
    assert.deepEqual(r.messages, ['echo a', 'echo b', 'echo c']);
  });

  it('a denied method gets PERMISSION_DENIED and never reaches the server', async () => {
    const n = servers.hits.length;
    const r = await grpcCall(clientNs, serverIP, 50051, { path: 'shop.Cart/Remove', kind: 'unary' }, 5000);
    assert.equal(r.code, 7, r.details);
    // a call the proxy let through would have been served by now (the allowed ones were)
    await new Promise((res) => setTimeout(res, 200));
    assert.deepEqual(servers.hits.slice(n), []);
    assert.ok(
      servers.hits.includes(`${serverNs} 50051 /shop.Cart/Get`),
      'the allowed calls were served (the hit log works)',
    );
  });
});

describe('seawall test --live with gRPC flows', { skip, timeout: 180_000 }, () => {
  it('sends every gRPC flow with a real client and agrees with offline', async () => {
    const lines: string[] = [];
    const code = await runLive([join(import.meta.dirname, 'testdata', 'grpc', 'grpc.test.yaml')], {
      output: 'json',
      write: (l) => lines.push(l),
    });
    const results = lines.map((l) => JSON.parse(l) as LiveFlowResult);
    assert.deepEqual(
      results.map((r) => `${r.flow} ${r.outcome} live=${r.live} ${r.records?.join(',')}`),
      [
        '0 pass live=allowed gRPC status 0 OK',
        '1 pass live=denied gRPC status 7 PERMISSION_DENIED',
        // not selected at L3: the SYN is dropped, the client's deadline ends the call
        '2 pass live=denied gRPC status 4 DEADLINE_EXCEEDED',
        '3 pass live=allowed gRPC status 0 OK',
        // the kernel's records of a proxied connection, as Cilium emits them
        '4 pass live=allowed INGRESS REDIRECTED',
      ],
    );
    assert.equal(code, 0);
  });
});
