import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointChanges, MapStateEntry, PeerRef, Verdict } from '../types.ts';
import { FakeEngine } from './fake-engine.ts';

const e1: MapStateEntry = {
  key: { direction: 'INGRESS', identity: 256, proto: 6, portLo: 80, portHi: 80 },
  verdict: 'allow',
  derivedFrom: [],
};
const e2: MapStateEntry = { ...e1, key: { ...e1.key, portLo: 81, portHi: 81 } };
const e3: MapStateEntry = { ...e1, key: { ...e1.key, portLo: 82, portHi: 82 } };
const on = { enforced: true, defaultDeny: true };

function summary(c: EndpointChanges): string {
  const port = (e: MapStateEntry) => e.key.portLo;
  return c.full ? 'full' : `+${c.added.map(port).join(',')} -${c.removed.map(port).join(',')}`;
}

test('fake engine: the change log follows setPolicy as the real one follows resolution', () => {
  const rows: Array<[string, (f: FakeEngine) => void, string]> = [
    ['first drain: full', () => {}, 'full'],
    [
      'enforced with entries: full',
      (f) => f.setPolicy('prod', 'a', { ingress: on, entries: [e1, e2] }),
      'full',
    ],
    ['nothing since', () => {}, '+ -'],
    ['one added, one removed', (f) => f.setPolicy('prod', 'a', { entries: [e1, e3] }), '+82 -81'],
    [
      'added then removed before a drain: nothing',
      (f) => {
        f.setPolicy('prod', 'a', { entries: [e1, e3, e2] });
        f.setPolicy('prod', 'a', { entries: [e1, e3] });
      },
      '+ -',
    ],
    ['a direction changes: full', (f) => f.setPolicy('prod', 'a', { egress: on }), 'full'],
  ];
  const f = new FakeEngine();
  f.upsertEndpoint({ name: 'a', namespace: 'prod', labels: {}, ip: '10.0.0.1' });
  for (const [name, act, want] of rows) {
    act(f);
    const c = f.drainEndpointChanges('prod', 'a');
    assert.equal(summary(c), want, name);
    assert.equal(c.identity, 256, name);
  }
});

test('fake engine: identities of peers, by default and given', () => {
  const f = new FakeEngine();
  f.upsertEndpoint({ name: 'a', namespace: 'prod', labels: {}, ip: '10.0.0.1' });
  f.upsertEndpoint({ name: 'b', namespace: 'prod', labels: {}, ip: '10.0.0.2' });
  f.upsertEndpoint({ name: 'a', namespace: 'prod', labels: { v: '2' }, ip: '10.0.0.1' });
  const rows: Array<[string, PeerRef, number]> = [
    ['first pod', { kind: 'endpoint', name: 'a', namespace: 'prod' }, 256],
    ['second pod', { kind: 'endpoint', name: 'b', namespace: 'prod' }, 257],
    ['unknown pod', { kind: 'endpoint', name: 'c', namespace: 'prod' }, 0],
    ['host', { kind: 'entity', entity: 'host' }, 1],
    ['world', { kind: 'entity', entity: 'world' }, 2],
    ['remote-node', { kind: 'entity', entity: 'remote-node' }, 6],
    ['kube-apiserver', { kind: 'entity', entity: 'kube-apiserver' }, 7],
    ['outside address: local scope', { kind: 'ip', ip: '192.0.2.1' }, 0x01000000 | 195],
  ];
  for (const [name, peer, want] of rows) assert.equal(f.identityOf(peer), want, name);
  const given = new FakeEngine({ identityOf: () => 42, labelsOf: (id) => [`id:${id}`] });
  assert.equal(given.identityOf({ kind: 'entity', entity: 'host' }), 42);
  assert.deepEqual(given.labelsOf(7), ['id:7']);
  assert.deepEqual(f.labelsOf(7), []);
});

test('fake engine: records its calls; decide answers only with a decide option', () => {
  const v: Verdict = { allowed: true, verdict: 'FORWARDED', srcIdentity: 1, dstIdentity: 2, explanation: [] };
  const f = new FakeEngine({ decide: () => v, config: { enforcementMode: 'always' } });
  const flow = {
    src: { kind: 'entity', entity: 'host' },
    dst: { kind: 'ip', ip: '1.2.3.4' },
    protocol: 'TCP',
  } as const;
  f.upsertNamespace('prod', { env: 'p' });
  assert.equal(f.decide(flow, 5), v);
  f.upsertNode('node-2', {}, '10.0.0.2');
  assert.deepEqual(f.upsertService('prod', 'svc', {}), []);
  assert.deepEqual(
    f.calls.map((c) => c.method),
    ['upsertNamespace', 'decide', 'upsertNode', 'upsertService'],
  );
  assert.deepEqual(f.calls[1]!.args, [flow, 5]);
  assert.equal(f.config.enforcementMode, 'always');
  assert.throws(() => new FakeEngine().decide(flow), /without a decide option/);
});
