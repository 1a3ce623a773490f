import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyEngine } from './engine.ts';
import { explainEndpointPolicy } from './explain.ts';
import { cnp, engineWith, ext, flow, pod, snapshot } from './testutil.ts';
import type { EndpointSpec } from './types.ts';

const EPS: EndpointSpec[] = [
  pod('shop/web', { app: 'web' }, '10.0.1.1'),
  pod('shop/api', { app: 'api' }, '10.0.1.2'),
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

test('FQDN: learnt IPs become selectable until they expire', () => {
  const rows: Array<[string, (e: PolicyEngine) => void, number, boolean]> = [
    ['before any lookup', () => {}, 0, false],
    [
      'after learning a matching name',
      (e) => e.learnDNS('api.partner.example', ['203.0.113.10'], 30, 0),
      1000,
      true,
    ],
    [
      'non-matching name teaches nothing',
      (e) => e.learnDNS('partner.example', ['203.0.113.10'], 30, 0),
      1000,
      false,
    ],
    ['after expiry', (e) => e.learnDNS('api.partner.example', ['203.0.113.10'], 30, 0), 31_000, false],
    [
      'unlearnt IP keeps its plain CIDR identity',
      (e) => e.learnDNS('api.partner.example', ['203.0.113.11'], 30, 0),
      1000,
      false,
    ],
  ];
  for (const [name, setup, at, want] of rows) {
    const e = engineWith(EPS, [FQDN]);
    setup(e);
    const v = e.decide(flow('shop/web', 'partner', '443/TCP', EPS), at);
    assert.equal(v.allowed, want, `${name}\n  ${v.explanation.join('\n  ')}`);
  }
});

test('FQDN: the learnt identity carries fqdn: and cidr: labels', () => {
  const e = engineWith(EPS, [FQDN]);
  e.learnDNS('api.partner.example', ['203.0.113.10'], 30, 0);
  const id = e.identityOf({ kind: 'ip', ip: '203.0.113.10' });
  const labels = e.labelsOf(id);
  assert.ok(labels.includes('fqdn:api.partner.example'), labels.join(' '));
  assert.ok(labels.includes('cidr:203.0.113.10/32'));
  assert.ok(labels.includes('reserved:world'));
  assert.ok(id >= 0x01000000);
});

test('verdict fields: match type, rule refs, explanation', () => {
  const p = cnp('shop', 'api-in', {
    endpointSelector: { matchLabels: { app: 'api' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'web' } }],
        toPorts: [{ ports: [{ port: '8080', protocol: 'TCP' }] }],
      },
      { toPorts: [{ ports: [{ port: '9000', protocol: 'TCP' }] }] },
      { fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system' } }] },
    ],
  });
  const e = engineWith(EPS, [p]);
  const rows: Array<[string, string, string, string, number]> = [
    ['L3+L4', 'shop/web', '8080/TCP', 'L3_L4', 0],
    ['L4 only', 'shop/web', '9000/TCP', 'L4_ONLY', 1],
    ['L3 only', 'kube-system/dns', '1234/UDP', 'L3_ONLY', 2],
  ];
  for (const [name, from, what, mt, idx] of rows) {
    const v = e.decide(flow(from, 'shop/api', what, EPS));
    assert.equal(v.ingress?.matchType, mt, name);
    assert.equal(v.ingress?.allowedBy[0]?.entryIndex, idx, name);
    assert.equal(v.decidedBy, 'INGRESS');
  }
  const v = e.decide(flow('shop/web', 'shop/api', '8080/TCP', EPS));
  assert.equal(
    v.ingress?.explanation[0],
    'ingress of shop/api: allowed by CiliumNetworkPolicy shop/api-in (test.yaml:1:1) ingress[0]: fromEndpoints[0] selects shop/web; toPorts[0] 8080/TCP',
  );
  assert.equal(v.egress?.explanation[0], 'no policy selects shop/web in egress: default allow');
  const d = e.decide(flow('shop/web', 'shop/api', '81/TCP', EPS));
  assert.equal(d.reason, 'POLICY_DENIED');
  assert.match(
    d.ingress!.explanation[0]!,
    /^ingress of shop\/api is default-deny \(selected by CiliumNetworkPolicy shop\/api-in .*\) and no rule allows identity \d+ \(k8s:app=web k8s:io.kubernetes.pod.namespace=shop\) on 81\/TCP$/,
  );
});

test('conflicting L7 parsers for the same selector and port', () => {
  const base = cnp('shop', 'a', {
    endpointSelector: { matchLabels: { app: 'api' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'web' } }],
        toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ path: '/a' }] } }],
      },
    ],
  });
  const clash = cnp('shop', 'b', {
    endpointSelector: { matchLabels: { app: 'api' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'web' } }],
        toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { kafka: [{ topic: 't' }] } }],
      },
    ],
  });
  const e = engineWith(EPS, [base]);
  const before = e.endpointPolicy('shop', 'api');
  const issues = e.upsertPolicy(clash);
  assert.equal(issues.length, 1);
  assert.equal(issues[0]!.code, 'conflicting-l7-parsers');
  assert.deepEqual(e.endpointPolicy('shop', 'api'), before, 'endpoint keeps its previous policy');
  e.removePolicy('CiliumNetworkPolicy', 'shop', 'b');
  assert.equal(e.endpointFailed('shop/api'), false);
});

test('incremental updates give the same policy as a fresh engine', () => {
  const policies = [
    cnp('shop', 'p1', {
      endpointSelector: {},
      ingress: [{ fromEndpoints: [{}] }, { fromCIDR: ['203.0.113.0/24'] }],
    }),
    cnp('shop', 'p2', {
      endpointSelector: { matchLabels: { app: 'api' } },
      egress: [
        {
          toEndpoints: [{ matchLabels: { app: 'web' } }],
          toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
        },
      ],
      ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'new' } }] }],
    }),
  ];
  const extra = pod('shop/new', { app: 'new' }, '10.0.1.9');
  const rows: Array<[string, (e: PolicyEngine) => void, EndpointSpec[], number[]]> = [
    ['add a pod after policies', (e) => e.upsertEndpoint(extra), [...EPS, extra], [0, 1]],
    ['add a policy after pods', (e) => e.upsertPolicy(policies[1]!), EPS, [0, 1]],
    [
      'remove a pod',
      (e) => {
        e.upsertEndpoint(extra);
        e.removeEndpoint('shop', 'new');
      },
      EPS,
      [0, 1],
    ],
    [
      'remove a policy',
      (e) => {
        e.upsertPolicy(policies[1]!);
        e.removePolicy('CiliumNetworkPolicy', 'shop', 'p2');
      },
      EPS,
      [0],
    ],
    [
      'relabel a pod',
      (e) => e.upsertEndpoint({ ...EPS[0]!, labels: { app: 'new' } }),
      [{ ...EPS[0]!, labels: { app: 'new' } }, ...EPS.slice(1)],
      [0, 1],
    ],
  ];
  for (const [name, change, finalEps, finalPolicies] of rows) {
    const inc = engineWith(EPS, [policies[0]!]);
    if (name !== 'add a policy after pods' && name !== 'remove a policy') inc.upsertPolicy(policies[1]!);
    change(inc);
    const fresh = engineWith(
      finalEps,
      finalPolicies.map((i) => policies[i]!),
    );
    assert.equal(snapshot(inc), snapshot(fresh), name);
  }
});

test('explainEndpointPolicy lists enforcement and entries by peer', () => {
  const e = engineWith(EPS, [
    cnp('shop', 'api-in', {
      endpointSelector: { matchLabels: { app: 'api' } },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: 'web' } }],
          toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }],
        },
      ],
    }),
  ]);
  const lines = explainEndpointPolicy(e.endpointPolicy('shop', 'api'), e);
  assert.equal(
    lines[0],
    `endpoint shop/api identity ${e.identityOf({ kind: 'endpoint', namespace: 'shop', name: 'api' })}`,
  );
  assert.ok(lines.includes('ingress: enforced, default-deny'));
  assert.ok(lines.includes('egress: not enforced (everything allowed)'));
  assert.ok(
    lines.some((l) => l.includes('80/TCP') && l.includes('REDIRECT → http proxy: {"method":"GET"}')),
    lines.join('\n'),
  );
  assert.ok(lines.some((l) => l.includes('identity 1 (reserved:host)')));
});

test('FQDN: an address that is (or stops being) a pod follows the DNS answers', () => {
  const podAt = pod('shop/late', { app: 'late' }, '203.0.113.10');
  // [name, changes after learning at t=0, expect web → 203.0.113.10:443 allowed, fqdn-selected entries]
  const rows: Array<[string, (e: PolicyEngine) => void, boolean, number]> = [
    ['no pod there', () => {}, true, 1],
    ['a pod takes the address after the answer', (e) => e.upsertEndpoint(podAt), false, 0],
    [
      'the pod leaves while the answer lives',
      (e) => {
        e.upsertEndpoint(podAt);
        e.learnDNS('api.partner.example', ['203.0.113.10'], 30, 1000);
        e.removeEndpoint('shop', 'late');
      },
      true,
      1,
    ],
  ];
  for (const [name, change, want, fqdnEntries] of rows) {
    const e = engineWith(EPS, [FQDN]);
    e.learnDNS('api.partner.example', ['203.0.113.10'], 30, 0);
    change(e);
    const f = flow('shop/web', 'partner', '443/TCP', EPS);
    assert.equal(e.decide(f, 2000).allowed, want, name);
    const held = e
      .endpointPolicy('shop', 'web')
      .entries.filter((x) => e.labelsOf(x.key.identity).includes('fqdn:api.partner.example'));
    assert.equal(held.length, fqdnEntries, `${name}: entries for the fqdn identity`);
  }
});

test('FQDN: expiry is checked without scanning past answers', () => {
  const e = engineWith(EPS, [FQDN]);
  for (let i = 0; i < 5; i++) e.learnDNS('api.partner.example', ['203.0.113.10'], 30, i * 1000);
  const f = flow('shop/web', 'partner', '443/TCP', EPS);
  assert.equal(e.decide(f, 34_000).allowed, true, 'the last answer lives until 34 s');
  assert.equal(e.decide(f, 34_001).allowed, false, 'and expires after');
  assert.equal(e.dns.nextExpiry(), Number.POSITIVE_INFINITY);
});
