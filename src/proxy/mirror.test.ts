import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MapStateEntry } from '../policy/types.ts';
import { DNSPolicyMirror } from './dns/main.ts';
import type { EndpointPatch, PolicyDelta, PolicySnapshot, SnapshotEndpoint } from './ipc.ts';

const pos = { file: 't', line: 1, column: 1 };
const CLIENT = '10.0.0.1';
const SERVER = '10.0.0.53';
const LEARNT = '192.0.2.10';

function entry(identity: number, verdict: MapStateEntry['verdict'], parser?: 'dns' | 'http'): MapStateEntry {
  const e: MapStateEntry = {
    key: { direction: 'EGRESS', identity, proto: 17, portLo: 53, portHi: 53 },
    verdict,
    derivedFrom: [],
  };
  if (parser === 'dns') e.l7 = { parser, rules: [{ pos, matchName: 'a.example' }] };
  if (parser === 'http') e.l7 = { parser, rules: [{ pos, method: 'GET' }] };
  return e;
}

function client(entries: MapStateEntry[]): SnapshotEndpoint {
  return {
    ip: CLIENT,
    endpoint: 'ns/client',
    namespace: 'ns',
    ingress: { enforced: false, defaultDeny: false },
    egress: { enforced: true, defaultDeny: true },
    entries,
  };
}

const snapshot = (): PolicySnapshot => ({
  version: 1,
  peers: [
    [CLIENT, { identity: 1000 }],
    [SERVER, { identity: 1001 }],
  ],
  endpoints: [client([entry(1001, 'redirect', 'dns')])],
  fqdnRevision: 0,
});

const delta = (d: Partial<PolicyDelta>): PolicyDelta => ({
  version: 2,
  peers: [],
  removedPeers: [],
  endpoints: [],
  patches: [],
  removedEndpoints: [],
  ...d,
});

const patch = (p: Partial<EndpointPatch>): EndpointPatch => ({
  ip: CLIENT,
  ingress: { enforced: false, defaultDeny: false },
  egress: { enforced: true, defaultDeny: true },
  removed: [],
  added: [],
  ...p,
});

describe('SnapshotMirror.applyDelta (FQDN deltas on top of a snapshot)', () => {
  const rows: Array<{
    name: string;
    loaded?: boolean;
    delta: PolicyDelta;
    applied: boolean;
    check: (m: DNSPolicyMirror) => void;
  }> = [
    {
      name: 'before any snapshot: not applied, everything still refused',
      loaded: false,
      delta: delta({ peers: [[LEARNT, { identity: 1002 }]] }),
      applied: false,
      check: (m) => {
        assert.equal(m.loaded, false);
        assert.equal(m.identityOf(LEARNT), 2);
      },
    },
    {
      name: 'a learnt address gets its identity; the version follows the delta',
      delta: delta({ peers: [[LEARNT, { identity: 1002, labels: ['fqdn:a.example'] }]], fqdnRevision: 3 }),
      applied: true,
      check: (m) => {
        assert.equal(m.identityOf(LEARNT), 1002);
        assert.deepEqual(m.peer(LEARNT).labels, ['fqdn:a.example']);
        assert.equal(m.version, 2);
        assert.equal(m.fqdnRevision, 3);
      },
    },
    {
      name: 'a removed address is world again',
      delta: delta({ removedPeers: [SERVER] }),
      applied: true,
      check: (m) => assert.equal(m.identityOf(SERVER), 2),
    },
    {
      name: 'a patch removes by key, verdict and parser and adds whole entries',
      delta: delta({
        patches: [
          patch({
            removed: [{ key: entry(1001, 'redirect').key, verdict: 'redirect', parser: 'dns' }],
            added: [entry(1002, 'redirect', 'dns'), entry(1002, 'allow')],
          }),
        ],
      }),
      applied: true,
      check: (m) => {
        const es = m
          .endpointOf(CLIENT)!
          .entries.map((e) => `${e.key.identity} ${e.verdict} ${e.l7?.parser ?? ''}`);
        assert.deepEqual(es, ['1002 redirect dns', '1002 allow ']);
      },
    },
    {
      name: 'a removed entry of another parser stays',
      delta: delta({
        patches: [
          patch({ removed: [{ key: entry(1001, 'redirect').key, verdict: 'redirect', parser: 'http' }] }),
        ],
      }),
      applied: true,
      check: (m) => assert.equal(m.endpointOf(CLIENT)!.entries.length, 1),
    },
    {
      name: 'an endpoint that enters the mirror, and one that leaves it',
      delta: delta({
        endpoints: [{ ...client([entry(1001, 'redirect', 'dns')]), ip: '10.0.0.9', endpoint: 'ns/other' }],
        removedEndpoints: [CLIENT],
      }),
      applied: true,
      check: (m) => {
        assert.equal(m.endpointOf(CLIENT), undefined);
        assert.equal(m.endpointOf('10.0.0.9')?.endpoint, 'ns/other');
      },
    },
    {
      name: 'a patch for an endpoint the mirror lacks: the mirror is dropped (refuse all until a snapshot)',
      delta: delta({ peers: [[LEARNT, { identity: 1002 }]], patches: [patch({ ip: '10.0.0.99' })] }),
      applied: false,
      check: (m) => {
        assert.equal(m.loaded, false);
        assert.equal(m.rules(CLIENT, SERVER, 'udp', 53), null);
      },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const m = new DNSPolicyMirror();
      if (r.loaded !== false) m.load(snapshot());
      assert.equal(m.applyDelta(r.delta), r.applied);
      r.check(m);
    });
  }

  it('rule sets derived before the delta are recomputed after it', () => {
    const m = new DNSPolicyMirror();
    m.load(snapshot());
    assert.equal(m.rules(CLIENT, LEARNT, 'udp', 53), null, 'world: no redirect for the client');
    assert.notEqual(m.rules(CLIENT, SERVER, 'udp', 53), null);
    m.applyDelta(
      delta({
        peers: [[LEARNT, { identity: 1002 }]],
        patches: [patch({ added: [entry(1002, 'redirect', 'dns')] })],
      }),
    );
    assert.deepEqual(
      m.rules(CLIENT, LEARNT, 'udp', 53)?.map((r) => r.matchName),
      ['a.example'],
    );
  });
});
