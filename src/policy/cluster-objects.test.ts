// Peers resolved through cluster objects: toServices (Services), cidrGroupRef/cidrGroupSelector
// (CiliumCIDRGroups) and fromNodes/toNodes (Nodes with per-node identities), incremental updates.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REMOTE_NODE_SCOPE } from '../identity/reserved.ts';
import type { PolicyObject } from '../policy-api/types.ts';
import { EndpointState } from './endpoint.ts';
import { PolicyEngine } from './engine.ts';
import { ccnp, cnp, engineWith, ext, flow, pod } from './testutil.ts';
import type { EndpointSpec } from './types.ts';

const EPS: EndpointSpec[] = [
  pod('web/client', { app: 'client' }, '10.0.1.1'),
  pod('web/other', { app: 'other' }, '10.0.1.2'),
  pod('shop/backend', { app: 'backend' }, '10.0.2.1'),
  pod('shop/admin', { app: 'admin' }, '10.0.2.2'),
  pod('stage/backend', { app: 'backend' }, '10.0.3.1'),
  ext('legacy-db', '192.168.50.7'),
  ext('office-host', '198.51.100.20'),
  ext('office-printer', '198.51.100.99'),
  ext('lab-host', '203.0.113.5'),
  ext('elsewhere', '8.8.8.8'),
];

interface Svc {
  ns: string;
  name: string;
  labels?: Record<string, string>;
  selector?: Record<string, string>;
  addresses?: string[];
}

const SVCS: Svc[] = [
  { ns: 'shop', name: 'backend-svc', labels: { tier: 'api' }, selector: { app: 'backend' } },
  { ns: 'shop', name: 'admin-svc', labels: { tier: 'admin' }, selector: { app: 'admin' } },
  { ns: 'stage', name: 'backend-svc', labels: { tier: 'api' }, selector: { app: 'backend' } },
  // Selector-less: backends from its EndpointSlice, one outside and one a pod address.
  { ns: 'shop', name: 'legacy', labels: { tier: 'legacy' }, addresses: ['192.168.50.7', '10.0.2.2'] },
];

function egressTo(peer: Record<string, unknown>, kind: 'cnp' | 'ccnp' = 'cnp'): PolicyObject {
  const spec = {
    endpointSelector: { matchLabels: { app: 'client' } },
    egress: [{ ...peer, toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }] }],
  };
  return kind === 'cnp' ? cnp('web', 'p', spec) : ccnp('p', spec);
}

function withServices(policy: PolicyObject, svcs: Svc[] = SVCS): PolicyEngine {
  const e = engineWith(EPS, [policy]);
  for (const s of svcs) e.upsertService(s.ns, s.name, s.labels ?? {}, s.selector, s.addresses ?? []);
  return e;
}

test('toServices: a Service stands for its pods (selector) or its backend addresses (selector-less)', () => {
  const rows: Array<{ name: string; policy: PolicyObject; allowed: string[]; denied: string[] }> = [
    {
      name: 'k8sService with namespace',
      policy: egressTo({ toServices: [{ k8sService: { serviceName: 'backend-svc', namespace: 'shop' } }] }),
      allowed: ['shop/backend'],
      denied: ['shop/admin', 'stage/backend', 'web/other'],
    },
    {
      // Cilium (pkg/policy/k8s/service.go): an omitted namespace matches every namespace.
      name: 'k8sService without namespace matches the name in every namespace',
      policy: egressTo({ toServices: [{ k8sService: { serviceName: 'backend-svc' } }] }),
      allowed: ['shop/backend', 'stage/backend'],
      denied: ['shop/admin'],
    },
    {
      name: 'k8sService naming no Service selects nothing',
      policy: egressTo({ toServices: [{ k8sService: { serviceName: 'nope', namespace: 'shop' } }] }),
      allowed: [],
      denied: ['shop/backend', 'stage/backend', 'elsewhere'],
    },
    {
      name: 'k8sServiceSelector with namespace',
      policy: egressTo({
        toServices: [
          { k8sServiceSelector: { selector: { matchLabels: { tier: 'api' } }, namespace: 'shop' } },
        ],
      }),
      allowed: ['shop/backend'],
      denied: ['stage/backend', 'shop/admin'],
    },
    {
      name: 'k8sServiceSelector without namespace in a CCNP: every namespace',
      policy: egressTo(
        {
          toServices: [
            {
              k8sServiceSelector: {
                selector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['api', 'admin'] }] },
              },
            },
          ],
        },
        'ccnp',
      ),
      allowed: ['shop/backend', 'stage/backend', 'shop/admin'],
      denied: ['web/other'],
    },
    {
      name: 'selector-less Service: its outside backend as a CIDR peer, never its pod backend',
      policy: egressTo({ toServices: [{ k8sService: { serviceName: 'legacy', namespace: 'shop' } }] }),
      allowed: ['legacy-db'],
      denied: ['shop/admin', 'elsewhere'],
    },
  ];
  for (const r of rows) {
    const e = withServices(r.policy);
    for (const to of r.allowed) {
      const v = e.decide(flow('web/client', to, '8080/TCP', EPS));
      assert.equal(v.allowed, true, `${r.name}: → ${to}\n  ${v.explanation.join('\n  ')}`);
    }
    for (const to of r.denied) {
      const v = e.decide(flow('web/client', to, '8080/TCP', EPS));
      assert.equal(v.allowed, false, `${r.name}: → ${to}\n  ${v.explanation.join('\n  ')}`);
    }
  }
});

test('toServices: the explanation names the Service', () => {
  const e = withServices(
    egressTo({ toServices: [{ k8sService: { serviceName: 'backend-svc', namespace: 'shop' } }] }),
  );
  const v = e.decide(flow('web/client', 'shop/backend', '8080/TCP', EPS));
  assert.ok(
    v.explanation.some((l) => l.includes('toServices[0] selects shop/backend via Service shop/backend-svc')),
    v.explanation.join('\n'),
  );
});

/** Counts endpoint resolutions per endpoint key while `fn` runs. */
/** Endpoints updated while fn runs: re-resolved in full or by a policy's rule delta. */
function resolutions(fn: () => void): Map<string, number> {
  const counts = new Map<string, number>();
  const proto = EndpointState.prototype;
  const resolve = proto.resolve;
  const delta = proto.applyRuleDelta;
  const count = (s: EndpointState) => counts.set(s.key, (counts.get(s.key) ?? 0) + 1);
  proto.resolve = function (this: EndpointState, ...args) {
    count(this);
    return resolve.apply(this, args);
  };
  proto.applyRuleDelta = function (this: EndpointState, ...args) {
    const out = delta.apply(this, args);
    if (out !== undefined) count(this); // undefined: it falls back to resolve, counted there
    return out;
  };
  try {
    fn();
  } finally {
    proto.resolve = resolve;
    proto.applyRuleDelta = delta;
  }
  return counts;
}

test('toServices: adding, changing and removing a Service updates only the endpoints it concerns', () => {
  const svcPolicy = egressTo({
    toServices: [{ k8sService: { serviceName: 'backend-svc', namespace: 'shop' } }],
  });
  const unrelated = cnp('shop', 'admin-in', {
    endpointSelector: { matchLabels: { app: 'admin' } },
    ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'web' } }] }],
  });
  const e = engineWith(EPS, [svcPolicy, unrelated]);
  const to = (dst: string) => e.decide(flow('web/client', dst, '8080/TCP', EPS)).allowed;
  const steps: Array<{ name: string; act: () => void; backend: boolean; admin: boolean; touched: string[] }> =
    [
      { name: 'no Service yet', act: () => {}, backend: false, admin: false, touched: [] },
      {
        name: 'Service added',
        act: () => e.upsertService('shop', 'backend-svc', {}, { app: 'backend' }),
        backend: true,
        admin: false,
        touched: ['web/client'],
      },
      {
        name: 'unrelated Service added',
        act: () => e.upsertService('shop', 'admin-svc', {}, { app: 'admin' }),
        backend: true,
        admin: false,
        touched: [],
      },
      {
        name: 'selector changed',
        act: () => e.upsertService('shop', 'backend-svc', {}, { app: 'admin' }),
        backend: false,
        admin: true,
        touched: ['web/client'],
      },
      {
        name: 'Service removed',
        act: () => e.removeService('shop', 'backend-svc'),
        backend: false,
        admin: false,
        touched: ['web/client'],
      },
    ];
  for (const s of steps) {
    const counts = resolutions(s.act);
    assert.deepEqual([...counts.keys()].sort(), s.touched, `${s.name}: re-resolved endpoints`);
    assert.equal(to('shop/backend'), s.backend, `${s.name}: → shop/backend`);
    assert.equal(to('shop/admin'), s.admin, `${s.name}: → shop/admin`);
  }
});

// ---------------------------------------------------------------- CIDR groups

const GROUPS = [
  { name: 'office', labels: { site: 'hq' }, cidrs: ['198.51.100.0/24'] },
  { name: 'lab', labels: { site: 'lab' }, cidrs: ['203.0.113.0/28', '10.0.2.0/24'] },
];

test('cidrGroupRef / cidrGroupSelector select the groups prefixes, excepts applied, never pods', () => {
  const rows: Array<{ name: string; peer: Record<string, unknown>; allowed: string[]; denied: string[] }> = [
    {
      name: 'cidrGroupRef',
      peer: { toCIDRSet: [{ cidrGroupRef: 'office' }] },
      allowed: ['office-host', 'office-printer'],
      denied: ['lab-host', 'elsewhere'],
    },
    {
      name: 'cidrGroupRef with except',
      peer: { toCIDRSet: [{ cidrGroupRef: 'office', except: ['198.51.100.96/27'] }] },
      allowed: ['office-host'],
      denied: ['office-printer'],
    },
    {
      name: 'cidrGroupSelector by group labels',
      peer: { toCIDRSet: [{ cidrGroupSelector: { matchLabels: { site: 'lab' } } }] },
      allowed: ['lab-host'],
      denied: ['office-host', 'shop/backend'],
    },
    {
      name: 'cidrGroupSelector with the cidrgroup: source',
      peer: {
        toCIDRSet: [
          { cidrGroupSelector: { matchExpressions: [{ key: 'cidrgroup:site', operator: 'Exists' }] } },
        ],
      },
      allowed: ['lab-host', 'office-host'],
      denied: ['elsewhere'],
    },
    {
      name: 'unknown group selects nothing',
      peer: { toCIDRSet: [{ cidrGroupRef: 'nope' }] },
      allowed: [],
      denied: ['office-host', 'elsewhere'],
    },
  ];
  for (const r of rows) {
    const e = engineWith(EPS, [egressTo(r.peer)]);
    for (const g of GROUPS) e.upsertCIDRGroup(g.name, g.labels, g.cidrs);
    for (const [list, want] of [
      [r.allowed, true],
      [r.denied, false],
    ] as const) {
      for (const to of list) {
        const v = e.decide(flow('web/client', to, '8080/TCP', EPS));
        assert.equal(v.allowed, want, `${r.name}: → ${to}\n  ${v.explanation.join('\n  ')}`);
      }
    }
  }
});

test('cidrGroupRef: fromCIDRSet, explanation and incremental group changes', () => {
  const ingress = cnp('shop', 'from-office', {
    endpointSelector: { matchLabels: { app: 'backend' } },
    ingress: [{ fromCIDRSet: [{ cidrGroupRef: 'office' }] }],
  });
  const e = engineWith(EPS, [ingress]);
  const from = (src: string) => e.decide(flow(src, 'shop/backend', '80/TCP', EPS));
  const steps: Array<{ name: string; act: () => void; host: boolean; lab: boolean }> = [
    { name: 'no group', act: () => {}, host: false, lab: false },
    {
      name: 'group added',
      act: () => e.upsertCIDRGroup('office', {}, ['198.51.100.0/24']),
      host: true,
      lab: false,
    },
    {
      name: 'group grows',
      act: () => e.upsertCIDRGroup('office', {}, ['198.51.100.0/24', '203.0.113.0/24']),
      host: true,
      lab: true,
    },
    {
      name: 'group shrinks',
      act: () => e.upsertCIDRGroup('office', {}, ['203.0.113.0/24']),
      host: false,
      lab: true,
    },
    { name: 'group removed', act: () => e.removeCIDRGroup('office'), host: false, lab: false },
  ];
  for (const s of steps) {
    s.act();
    assert.equal(from('office-host').allowed, s.host, `${s.name}: office-host`);
    assert.equal(from('lab-host').allowed, s.lab, `${s.name}: lab-host`);
  }
  e.upsertCIDRGroup('office', {}, ['198.51.100.0/24']);
  const v = from('office-host');
  assert.ok(
    v.explanation.some((l) => l.includes('fromCIDRSet[0] selects 198.51.100.20 via CiliumCIDRGroup office')),
    v.explanation.join('\n'),
  );
});

// ---------------------------------------------------------------- nodes

const NODES = [
  { name: 'node-1', labels: { role: 'control' }, ip: '172.18.0.1' },
  { name: 'node-2', labels: { role: 'worker', zone: 'a' }, ip: '172.18.0.2' },
  { name: 'node-3', labels: { role: 'worker', zone: 'b' }, ip: '172.18.0.3' },
  { name: 'node-4', labels: { role: 'storage' }, ip: '172.18.0.4' },
];

function withNodes(policy: PolicyObject): PolicyEngine {
  const e = engineWith(EPS, [policy]);
  for (const n of NODES) e.upsertNode(n.name, n.labels, n.ip);
  return e;
}

test('toNodes/fromNodes select remote nodes by their labels', () => {
  const rows: Array<{ name: string; peer: Record<string, unknown>; allowed: string[]; denied: string[] }> = [
    {
      name: 'toNodes matchLabels',
      peer: { toNodes: [{ matchLabels: { role: 'worker' } }] },
      allowed: ['172.18.0.2', '172.18.0.3'],
      denied: ['172.18.0.4', 'remote-node', 'host', '172.18.0.1', 'elsewhere'],
    },
    {
      name: 'toNodes matchExpressions',
      peer: { toNodes: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }] },
      allowed: ['172.18.0.3'],
      denied: ['172.18.0.2'],
    },
    {
      name: 'toNodes with the node: source',
      peer: { toNodes: [{ matchLabels: { 'node:role': 'storage' } }] },
      allowed: ['172.18.0.4'],
      denied: ['172.18.0.2'],
    },
    {
      name: 'toNodes {} selects every remote node, not the local one',
      peer: { toNodes: [{}] },
      allowed: ['172.18.0.2', '172.18.0.4', 'remote-node'],
      denied: ['host', '172.18.0.1', 'shop/backend'],
    },
    {
      name: 'remote-node entity still selects every remote node',
      peer: { toEntities: ['remote-node'] },
      allowed: ['172.18.0.2', '172.18.0.4', 'remote-node'],
      denied: ['host', 'elsewhere'],
    },
    {
      name: 'cluster entity includes per-node identities',
      peer: { toEntities: ['cluster'] },
      allowed: ['172.18.0.3', 'remote-node', 'shop/backend'],
      denied: ['elsewhere'],
    },
    {
      name: 'CIDR rules do not select nodes',
      peer: { toCIDR: ['172.18.0.0/16'] },
      allowed: [],
      denied: ['172.18.0.2', 'remote-node'],
    },
  ];
  for (const r of rows) {
    const e = withNodes(egressTo(r.peer));
    for (const [list, want] of [
      [r.allowed, true],
      [r.denied, false],
    ] as const) {
      for (const to of list) {
        const v = e.decide(flow('web/client', to, '8080/TCP', EPS));
        assert.equal(v.allowed, want, `${r.name}: → ${to}\n  ${v.explanation.join('\n  ')}`);
      }
    }
  }
});

test('nodes: per-node identities, ingress fromNodes and incremental node changes', () => {
  const ingress = cnp('shop', 'from-workers', {
    endpointSelector: { matchLabels: { app: 'backend' } },
    ingress: [{ fromNodes: [{ matchLabels: { role: 'worker' } }] }],
  });
  const e = engineWith(EPS, [ingress]);
  const from = (ip: string) => e.decide(flow(ip, 'shop/backend', '80/TCP', EPS)).allowed;
  assert.equal(from('172.18.0.2'), false, 'unknown node address is world');
  e.upsertNode('node-2', { role: 'worker' }, '172.18.0.2');
  const id = e.identityOf({ kind: 'ip', ip: '172.18.0.2' });
  assert.ok((id & REMOTE_NODE_SCOPE) !== 0, `remote-node scope: ${id}`);
  assert.deepEqual(e.labelsOf(id), [
    'k8s:io.cilium.k8s.policy.cluster=default',
    'node:role=worker',
    'reserved:remote-node',
  ]);
  assert.equal(from('172.18.0.2'), true, 'worker node admitted');
  assert.equal(from('remote-node'), false, 'reserved remote-node (6) carries no node labels');
  e.upsertNode('node-2', { role: 'storage' }, '172.18.0.2');
  assert.equal(from('172.18.0.2'), false, 'relabelled node no longer selected');
  e.upsertNode('node-2', {}, '172.18.0.2');
  assert.equal(e.identityOf({ kind: 'ip', ip: '172.18.0.2' }), 6, 'a node without labels is remote-node');
  e.upsertNode('node-2', { role: 'worker' }, '172.18.0.2');
  e.removeNode('node-2');
  assert.equal(from('172.18.0.2'), false, 'removed node');
  assert.equal(e.identityOf({ kind: 'ip', ip: '172.18.0.2' }), 2, 'removed node address is world again');
  e.upsertNode('node-1', { role: 'control' }, '172.18.0.1');
  assert.equal(e.identityOf({ kind: 'ip', ip: '172.18.0.1' }), 1, 'local node address is the host');
});

test('nodes: engines without Node objects keep reserved remote-node', () => {
  const e = new PolicyEngine();
  assert.equal(e.identityOf({ kind: 'entity', entity: 'remote-node' }), 6);
});
