// The engine on an identity backend and a DNS cache it is given: it builds neither itself, engines
// sharing a backend agree on identity numbers and hear each other's identities, one engine's
// removals never take what another still holds, and close() gives back what it held.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSeawallError } from '../core/errors.ts';
import { DNSCache } from '../fqdn/cache.ts';
import { MemoryIdentityBackend } from '../identity/backend.ts';
import { parsePrefix } from '../identity/cidr.ts';
import { ID } from '../identity/reserved.ts';
import { defaultEngineFactory } from './default-engine.ts';
import { PolicyEngine } from './engine.ts';
import { cnp, ext, flow, pod } from './testutil.ts';
import type { EndpointSpec, FlowRequest } from './types.ts';

const X = pod('shop/x', { app: 'x' }, '10.0.1.1');
const Y = pod('shop/y', { app: 'y' }, '10.0.1.2');
const Z = pod('shop/z', { app: 'z' }, '10.0.1.3');
const ref = (ep: EndpointSpec) => ({ kind: 'endpoint', name: ep.name, namespace: ep.namespace! }) as const;

/** y admits app=x on 80/TCP. */
const Y_FROM_X = cnp('shop', 'y-from-x', {
  endpointSelector: { matchLabels: { app: 'y' } },
  ingress: [
    {
      fromEndpoints: [{ matchLabels: { app: 'x' } }],
      toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
    },
  ],
});

test('backend: the engine works on the backend and DNS cache it is given', () => {
  const backend = new MemoryIdentityBackend();
  const dns = new DNSCache();
  const rows: Array<[string, PolicyEngine]> = [
    ['constructor', new PolicyEngine({}, { identity: backend, dns })],
    ['defaultEngineFactory', defaultEngineFactory({}, { identity: backend, dns }) as PolicyEngine],
  ];
  for (const [name, e] of rows) {
    assert.equal(e.backend, backend, name);
    assert.equal(e.identities, backend.identities, name);
    assert.equal(e.ipcache, backend.ipcache, name);
    assert.equal(e.dns, dns, name);
  }
  const e = rows[0]![1];
  e.upsertEndpoint(X);
  const id = e.identityOf(ref(X));
  assert.ok(backend.identities.get(id)?.labels.toStrings().includes('k8s:app=x'));
  assert.equal(backend.ipcache.lookup(X.ip), id);
  // Without deps: a backend and a DNS cache of its own.
  const own = new PolicyEngine();
  assert.notEqual(own.backend, backend);
  assert.notEqual(own.dns, dns);
});

test('backend: engines sharing one backend get the same numbers for the same labels', () => {
  const rows: Array<{ name: string; shared: boolean; a: EndpointSpec[]; b: EndpointSpec[]; same: boolean }> =
    [
      { name: 'shared, same order', shared: true, a: [X, Y, Z], b: [X, Y, Z], same: true },
      { name: 'shared, opposite order', shared: true, a: [X, Y, Z], b: [Z, Y, X], same: true },
      { name: 'shared, b knows fewer pods', shared: true, a: [X, Y, Z], b: [Z, X], same: true },
      {
        name: 'apart, opposite order: numbers differ',
        shared: false,
        a: [X, Y, Z],
        b: [Z, Y, X],
        same: false,
      },
    ];
  for (const row of rows) {
    const backend = row.shared ? new MemoryIdentityBackend() : undefined;
    const dns = new DNSCache();
    const deps = () => (backend === undefined ? {} : { identity: backend, dns });
    const a = new PolicyEngine({}, deps());
    const b = new PolicyEngine({}, deps());
    for (const ep of row.a) a.upsertEndpoint(ep);
    for (const ep of row.b) b.upsertEndpoint(ep);
    const ids = (e: PolicyEngine) => row.b.map((ep) => e.identityOf(ref(ep)));
    if (row.same) assert.deepEqual(ids(b), ids(a), row.name);
    else assert.notDeepEqual(ids(b), ids(a), row.name);
    for (const id of ids(b)) assert.ok(id >= 256, row.name);
  }
});

test('backend: identities and addresses another engine adds reach this engine’s policy', () => {
  const backend = new MemoryIdentityBackend();
  const dns = new DNSCache();
  const a = new PolicyEngine({}, { identity: backend, dns });
  const b = new PolicyEngine({}, { identity: backend, dns });
  b.upsertEndpoint(Y);
  b.upsertPolicy(Y_FROM_X);
  // b knows no pod x: a flow from x's address is decided on what the shared ipcache says.
  const fromX: FlowRequest = { src: { kind: 'ip', ip: X.ip }, dst: ref(Y), protocol: 'TCP', dport: 80 };
  let xId = 0; // the identity x has or last had
  const selectsX = () => b.endpointPolicy('shop', 'y').entries.some((e) => e.key.identity === xId);
  const rows: Array<[string, () => void, boolean]> = [
    ['before x exists anywhere', () => {}, false],
    ['a adds x: b selects its identity and resolves its address', () => a.upsertEndpoint(X), true],
    ['a removes x: gone from b too', () => a.removeEndpoint('shop', 'x'), false],
  ];
  for (const [name, act, want] of rows) {
    act();
    xId = a.identityOf(ref(X)) || xId;
    const v = b.decide(fromX);
    assert.equal(v.allowed, want, `${name}\n  ${v.explanation.join('\n  ')}`);
    assert.equal(selectsX(), want, name);
  }
  assert.ok(xId >= 256);
});

test('backend: one engine’s removal leaves the ipcache entries another still holds', () => {
  const rows: Array<{
    name: string;
    act: (a: PolicyEngine, b: PolicyEngine) => void;
    ip: string;
    want: number;
  }> = [
    {
      name: 'a node both know, removed by one',
      act: (a, b) => {
        a.upsertNode('node-2', {}, '10.0.0.2');
        b.upsertNode('node-2', {}, '10.0.0.2');
        a.removeNode('node-2');
      },
      ip: '10.0.0.2',
      want: ID.remoteNode,
    },
    {
      name: 'a node both know, removed by both',
      act: (a, b) => {
        a.upsertNode('node-2', {}, '10.0.0.2');
        b.upsertNode('node-2', {}, '10.0.0.2');
        a.removeNode('node-2');
        b.removeNode('node-2');
      },
      ip: '10.0.0.2',
      want: ID.world,
    },
    {
      name: 'a pod both know, removed by one',
      act: (a, b) => {
        a.upsertEndpoint(X);
        b.upsertEndpoint(X);
        a.removeEndpoint('shop', 'x');
      },
      ip: X.ip,
      want: 256,
    },
  ];
  for (const row of rows) {
    const backend = new MemoryIdentityBackend();
    const dns = new DNSCache();
    const a = new PolicyEngine({}, { identity: backend, dns });
    const b = new PolicyEngine({}, { identity: backend, dns });
    row.act(a, b);
    // A third engine on the backend knows nothing itself: it sees the shared ipcache.
    const c = new PolicyEngine({}, { identity: backend, dns });
    assert.equal(c.identityOf({ kind: 'ip', ip: row.ip }), row.want, row.name);
  }
});

const DNS_EPS: EndpointSpec[] = [
  pod('shop/web', { app: 'web' }, '10.0.1.1'),
  pod('kube-system/dns', { 'k8s-app': 'kube-dns' }, '10.0.9.10'),
  ext('partner', '203.0.113.10'),
];
const FQDN = cnp('shop', 'fqdn', {
  endpointSelector: { matchLabels: { app: 'web' } },
  egress: [
    {
      toEndpoints: [
        { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s-app': 'kube-dns' } },
      ],
      toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }],
    },
    {
      toFQDNs: [{ matchPattern: '*.partner.example' }],
      toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }],
    },
  ],
});

test('backend: the node’s DNS cache is given; answers learnt into it reach every engine on it', () => {
  const backend = new MemoryIdentityBackend();
  const dns = new DNSCache();
  const engines = [0, 1].map(() => new PolicyEngine({}, { identity: backend, dns }));
  for (const e of engines) {
    for (const ep of DNS_EPS) e.upsertEndpoint(ep);
    e.upsertPolicy(FQDN);
  }
  const toPartner = flow('shop/web', 'partner', '443/TCP', DNS_EPS);
  const rows: Array<[string, () => void, number, boolean]> = [
    ['before any answer', () => {}, 1000, false],
    // As the DNS proxy would: straight into the node's cache, not through an engine.
    [
      'an answer learnt into the cache',
      () => dns.learn('api.partner.example', ['203.0.113.10'], 30, 1000),
      2000,
      true,
    ],
    ['the answer expired', () => {}, 40_000, false],
  ];
  for (const [name, act, at, want] of rows) {
    act();
    engines.forEach((e, i) => {
      const v = e.decide(toPartner, at);
      assert.equal(v.allowed, want, `${name} (engine ${i})\n  ${v.explanation.join('\n  ')}`);
    });
  }
});

test('backend: engines sharing a backend must share its DNS cache (fqdn labels live on it)', () => {
  const backend = new MemoryIdentityBackend();
  const dns = new DNSCache();
  new PolicyEngine({}, { identity: backend, dns });
  const rows: Array<[string, () => unknown, boolean]> = [
    ['same backend, same cache', () => new PolicyEngine({}, { identity: backend, dns }), true],
    [
      'same backend, another cache',
      () => new PolicyEngine({}, { identity: backend, dns: new DNSCache() }),
      false,
    ],
    ['same backend, a cache of its own', () => new PolicyEngine({}, { identity: backend }), false],
    [
      'another backend, the same cache',
      () => new PolicyEngine({}, { identity: new MemoryIdentityBackend(), dns }),
      true,
    ],
  ];
  for (const [name, make, ok] of rows) {
    if (ok) assert.doesNotThrow(make, name);
    else assert.throws(make, (e) => isSeawallError(e, 'engine-dns-not-shared'), name);
  }
});

test('backend: close() gives back what the engine held and stops listening', () => {
  const backend = new MemoryIdentityBackend();
  const dns = new DNSCache();
  const a = new PolicyEngine({}, { identity: backend, dns });
  const b = new PolicyEngine({}, { identity: backend, dns });
  const toCIDR = cnp('shop', 'to-cidr', {
    endpointSelector: { matchLabels: { app: 'x' } },
    egress: [{ toCIDR: ['192.0.2.0/24'] }],
  });
  for (const ep of [...DNS_EPS, X]) a.upsertEndpoint(ep);
  a.upsertPolicy(toCIDR);
  a.upsertPolicy(FQDN);
  a.upsertNode('node-2', { zone: 'b' }, '10.0.0.2');
  a.learnDNS('api.partner.example', ['198.51.100.7'], 30, 0);
  b.upsertEndpoint(Y);
  const xId = a.identityOf(ref(X));
  const nodeId = backend.ipcache.lookup('10.0.0.2');
  const learnt = parsePrefix('198.51.100.7/32')!;
  assert.ok(backend.identities.cidrIdentity(parsePrefix('192.0.2.0/24')!));
  assert.ok(backend.identities.cidrIdentity(learnt));
  a.close();
  const rows: Array<[string, unknown, unknown]> = [
    ['x’s identity', backend.identities.get(xId), undefined],
    ['x’s address', backend.ipcache.lookup(X.ip), ID.world],
    ['the node’s identity', backend.identities.get(nodeId), undefined],
    ['the node’s address', backend.ipcache.lookup('10.0.0.2'), ID.world],
    ['the policy’s CIDR identity', backend.identities.cidrIdentity(parsePrefix('192.0.2.0/24')!), undefined],
    [
      'the outside endpoint’s CIDR identity',
      backend.identities.cidrIdentity(parsePrefix('203.0.113.10/32')!),
      undefined,
    ],
    ['y (b’s) stays', backend.ipcache.lookup(Y.ip), b.identityOf(ref(Y))],
  ];
  for (const [name, got, want] of rows) assert.equal(got, want, name);
  // b follows the same DNS cache, so it holds the learnt address too, until it closes.
  assert.ok(backend.identities.cidrIdentity(learnt));
  b.close();
  assert.equal(backend.identities.cidrIdentity(learnt), undefined);
  assert.equal(backend.ipcache.lookup(Y.ip), ID.world);
  // Neither follows the cache any more: a later answer holds nothing.
  dns.learn('api.partner.example', ['198.51.100.8'], 30, 0);
  assert.equal(backend.identities.cidrIdentity(parsePrefix('198.51.100.8/32')!), undefined);
});
