// The proxy's policy mirror: which rule sets and which direction a redirected connection gets.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MapStateEntry } from '../../policy/types.ts';
import type { SnapshotEndpoint } from '../ipc.ts';
import type { HTTPRuleSet } from './context.ts';
import { PolicyMirror } from './main.ts';

const pos = { file: 't', line: 1, column: 1 };
const redirect = (
  direction: 'INGRESS' | 'EGRESS',
  identity: number,
  port: number,
  path: string,
): MapStateEntry => ({
  key: { direction, identity, proto: 6, portLo: port, portHi: port },
  verdict: 'redirect',
  derivedFrom: [],
  l7: { parser: 'http', rules: [{ pos, path }] },
});
const ep = (ip: string, name: string, entries: MapStateEntry[]): SnapshotEndpoint => ({
  ip,
  endpoint: `ns/${name}`,
  namespace: 'ns',
  ingress: { enforced: entries.some((e) => e.key.direction === 'INGRESS'), defaultDeny: true },
  egress: { enforced: entries.some((e) => e.key.direction === 'EGRESS'), defaultDeny: false },
  entries,
});

describe('PolicyMirror.lookup', () => {
  const m = new PolicyMirror();
  const client = { identity: 1001, labels: ['k8s:app=client'] };
  const server = { identity: 1002, labels: ['k8s:app=server'] };
  m.load({
    version: 1,
    peers: [
      ['10.0.0.1', client],
      ['10.0.0.2', server],
    ],
    endpoints: [
      ep('10.0.0.1', 'client', [
        redirect('EGRESS', 1002, 8081, '/eg/.*'),
        redirect('EGRESS', 1002, 8082, '/both'),
      ]),
      ep('10.0.0.2', 'server', [
        redirect('INGRESS', 1001, 8080, '/in/.*'),
        redirect('INGRESS', 1001, 8082, '/both'),
        {
          key: { direction: 'INGRESS', identity: 1001, proto: 6, portLo: 8081, portHi: 8081 },
          verdict: 'allow',
          derivedFrom: [],
        },
      ]),
    ],
  });
  const conn = (port: number) => ({
    remote: { address: '10.0.0.1', port: 40000 },
    local: { address: '172.31.255.1', port: 15001 },
    originalDst: { address: '10.0.0.2', port },
  });
  const rows = [
    // the client has egress redirects on other ports: still the server's ingress proxy
    {
      name: 'ingress rules only, client redirects elsewhere',
      port: 8080,
      direction: 'INGRESS',
      sets: ['INGRESS'],
    },
    { name: 'egress rules only', port: 8081, direction: 'EGRESS', sets: ['EGRESS'] },
    { name: 'both sides: egress judged first', port: 8082, direction: 'EGRESS', sets: ['EGRESS', 'INGRESS'] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const ctx = m.lookup(conn(r.port));
      assert.ok(ctx);
      assert.equal(ctx.direction, r.direction);
      assert.equal(ctx.sourceIdentity, 1001);
      const sets = typeof ctx.ruleSets === 'function' ? ctx.ruleSets() : ctx.ruleSets;
      assert.deepEqual(
        sets.map((s: HTTPRuleSet) => s.direction),
        r.sets,
      );
    });
  }
  it('a port neither side redirects: refused', () => assert.equal(m.lookup(conn(9999)), undefined));
});

describe('PolicyMirror rule sets are reused until the next snapshot', () => {
  const snap = (version: number, path: string) => ({
    version,
    peers: [['10.0.0.1', { identity: 1001 }] as [string, { identity: number }]],
    endpoints: [ep('10.0.0.2', 'server', [redirect('INGRESS', 1001, 8080, path)])],
  });
  it('same objects per request (the judge caches by rule set), new ones after a snapshot', () => {
    const m = new PolicyMirror();
    m.load(snap(1, '/a'));
    const a = m.ruleSets('10.0.0.1', '10.0.0.2', 8080);
    assert.equal(m.ruleSets('10.0.0.1', '10.0.0.2', 8080), a);
    m.load(snap(2, '/b'));
    const b = m.ruleSets('10.0.0.1', '10.0.0.2', 8080);
    assert.notEqual(b, a);
    assert.equal(b[0]?.rules[0]?.path, '/b', 'the new snapshot’s rules, never the cached ones');
  });
});

describe('PolicyMirror: the world endpoint', () => {
  const snap = (version: number) => ({
    version,
    peers: [['10.0.0.1', { identity: 1001 }] as [string, { identity: number }]],
    endpoints: [ep('10.0.0.1', 'client', [redirect('EGRESS', 2, 80, '/.*')])],
  });
  const rows: Array<{ name: string; same: boolean; between?: (m: PolicyMirror) => void }> = [
    { name: 'two addresses outside the cluster, one snapshot: one object (one record shape)', same: true },
    { name: 'a new snapshot: a new object', same: false, between: (m) => m.load(snap(2)) },
    {
      name: 'a delta: a new object',
      same: false,
      between: (m) =>
        assert.ok(
          m.applyDelta({
            version: 2,
            peers: [],
            removedPeers: [],
            endpoints: [],
            removedEndpoints: [],
            patches: [],
          }),
        ),
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const m = new PolicyMirror();
      m.load(snap(1));
      const a = m.peer('1.1.1.1');
      r.between?.(m);
      const b = m.peer('8.8.8.8');
      assert.deepEqual(a, { identity: 2, labels: ['reserved:world'] });
      assert.deepEqual(b, a);
      assert.equal(a === b, r.same);
    });
  }
});
