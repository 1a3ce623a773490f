import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPolicyText } from './load.ts';

function doc(spec: string, kind = 'CiliumNetworkPolicy', ns = 'ns'): string {
  return `apiVersion: cilium.io/v2\nkind: ${kind}\nmetadata: {name: t, namespace: ${ns}}\nspec: ${spec}\n`;
}
const EP = 'endpointSelector: {matchLabels: {app: a}}';
const http = (rule: string) =>
  doc(`{${EP}, ingress: [{toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [${rule}]}}]}]}`);
const kafka = (rules: string, port = '"9092"') =>
  doc(
    `{${EP}, egress: [{toPorts: [{ports: [{port: ${port}, protocol: TCP}], rules: {kafka: [${rules}]}}]}]}`,
  );
const ports = (p: string) => doc(`{${EP}, ingress: [{toPorts: [{ports: [${p}]}]}]}`);

interface Row {
  name: string;
  yaml: string;
  code: string;
  /** false: the warning must NOT appear. */
  expect: boolean;
}

const rows: Row[] = [
  {
    name: 'quoted header value',
    yaml: http(`{headers: ['X-User-ID: ".*"']}`),
    code: 'header-value-looks-like-regex',
    expect: true,
  },
  {
    name: 'regex header value',
    yaml: http(`{headers: ['X-Ver: v[0-9]+']}`),
    code: 'header-value-looks-like-regex',
    expect: true,
  },
  {
    name: 'plain header value',
    yaml: http(`{headers: ['X-Ver: 2']}`),
    code: 'header-value-looks-like-regex',
    expect: false,
  },
  {
    name: 'header presence',
    yaml: http(`{headers: ['X-User-ID']}`),
    code: 'header-value-looks-like-regex',
    expect: false,
  },
  { name: 'path without slash', yaml: http('{path: "api/v1"}'), code: 'path-cannot-match', expect: true },
  {
    name: 'anchored path without slash',
    yaml: http('{path: "^api"}'),
    code: 'path-cannot-match',
    expect: true,
  },
  { name: 'path with slash', yaml: http('{path: "/api/.*"}'), code: 'path-cannot-match', expect: false },
  {
    name: 'path starting with wildcard',
    yaml: http('{path: ".*/health"}'),
    code: 'path-cannot-match',
    expect: false,
  },
  { name: 'path alternation', yaml: http('{path: "a|/b"}'), code: 'path-cannot-match', expect: false },
  {
    name: 'host unescaped dot',
    yaml: http('{host: "api.example.com"}'),
    code: 'host-unescaped-dot',
    expect: true,
  },
  {
    name: 'host escaped dots',
    yaml: http('{host: "api\\\\.example\\\\.com"}'),
    code: 'host-unescaped-dot',
    expect: false,
  },
  {
    name: 'host wildcard prefix',
    yaml: http('{host: ".*\\\\.example\\\\.com"}'),
    code: 'host-unescaped-dot',
    expect: false,
  },
  {
    name: 'kafka apiKey only',
    yaml: kafka('{apiKey: fetch, topic: t}'),
    code: 'kafka-missing-bootstrap-keys',
    expect: true,
  },
  {
    name: 'kafka apiKey with bootstrap keys',
    yaml: kafka('{apiKey: fetch}, {apiKey: apiversions}, {apiKey: metadata}'),
    code: 'kafka-missing-bootstrap-keys',
    expect: false,
  },
  { name: 'kafka role', yaml: kafka('{role: consume}'), code: 'kafka-missing-bootstrap-keys', expect: false },
  { name: 'kafka is deprecated', yaml: kafka('{role: consume}'), code: 'kafka-deprecated', expect: true },
  {
    name: 'endpointSelector other namespace',
    yaml: doc('{endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: other}}, ingress: [{}]}'),
    code: 'endpoint-selector-namespace-overwritten',
    expect: true,
  },
  {
    name: 'endpointSelector own namespace',
    yaml: doc('{endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: ns}}, ingress: [{}]}'),
    code: 'endpoint-selector-namespace-overwritten',
    expect: false,
  },
  {
    name: 'CCNP may select namespaces',
    yaml: doc(
      '{endpointSelector: {matchLabels: {k8s:io.kubernetes.pod.namespace: other}}, ingress: [{}]}',
      'CiliumClusterwideNetworkPolicy',
    ),
    code: 'endpoint-selector-namespace-overwritten',
    expect: false,
  },
  {
    name: 'fromEndpoints empty selector',
    yaml: doc(`{${EP}, ingress: [{fromEndpoints: [{}]}]}`),
    code: 'from-endpoints-empty-selector',
    expect: true,
  },
  {
    name: 'toEndpoints empty selector',
    yaml: doc(`{${EP}, egress: [{toEndpoints: [{}]}]}`),
    code: 'from-endpoints-empty-selector',
    expect: true,
  },
  {
    name: 'fromGroups cannot be resolved offline',
    yaml: doc(`{${EP}, ingress: [{fromGroups: [{aws: {securityGroupsIds: [sg-1]}}]}]}`),
    code: 'peer-not-resolvable-offline',
    expect: true,
  },
  {
    name: 'toGroups cannot be resolved offline',
    yaml: doc(`{${EP}, egress: [{toGroups: [{aws: {securityGroupsNames: [web]}}]}]}`),
    code: 'peer-not-resolvable-offline',
    expect: true,
  },
  {
    name: 'toCIDRSet resolves offline',
    yaml: doc(`{${EP}, egress: [{toCIDRSet: [{cidrGroupRef: office}]}]}`),
    code: 'peer-not-resolvable-offline',
    expect: false,
  },
  {
    name: 'fromEndpoints empty selector in CCNP',
    yaml: doc(`{${EP}, ingress: [{fromEndpoints: [{}]}]}`, 'CiliumClusterwideNetworkPolicy'),
    code: 'from-endpoints-empty-selector',
    expect: false,
  },
  {
    name: 'endPort below port',
    yaml: ports('{port: "8000", endPort: 7000}'),
    code: 'endport-ignored',
    expect: true,
  },
  {
    name: 'endPort with port 0',
    yaml: ports('{port: "0", endPort: 100}'),
    code: 'endport-ignored',
    expect: true,
  },
  {
    name: 'endPort with named port',
    yaml: ports('{port: http, endPort: 100}'),
    code: 'endport-ignored',
    expect: true,
  },
  {
    name: 'real range',
    yaml: ports('{port: "8000", endPort: 8080}'),
    code: 'endport-ignored',
    expect: false,
  },
  {
    name: 'empty section beside a real one',
    yaml: doc(`{${EP}, ingress: [{}], egress: []}`),
    code: 'empty-section-list',
    expect: true,
  },
  {
    name: 'no empty section',
    yaml: doc(`{${EP}, ingress: [{}]}`),
    code: 'empty-section-list',
    expect: false,
  },
];

for (const row of rows) {
  test(`lint: ${row.name}`, () => {
    const res = loadPolicyText('t.yaml', row.yaml);
    assert.deepEqual(
      res.issues.filter((i) => i.severity === 'error'),
      [],
      'lint rows must be valid policies',
    );
    const hit = res.issues.find((i) => i.code === row.code);
    if (row.expect) {
      assert.ok(hit, `expected ${row.code}, got ${JSON.stringify(res.issues.map((i) => i.code))}`);
      assert.equal(hit.severity, 'warning');
      assert.ok(hit.path.startsWith('spec'));
    } else {
      assert.equal(hit, undefined, hit?.message);
    }
    // Warnings do not keep a policy out.
    assert.equal(res.policies.length, 1);
  });
}

test('lint: the guide header example names the fix', () => {
  const res = loadPolicyText('t.yaml', http(`{method: GET, headers: ['X-User-ID: ".*"']}`));
  const hit = res.issues.find((i) => i.code === 'header-value-looks-like-regex');
  assert.ok(hit);
  assert.match(hit.message, /literal text ".*"/);
  assert.match(hit.message, /quotes included/);
  assert.match(hit.message, /headers: \["X-User-ID"\]/);
  assert.match(hit.message, /headerMatches/);
});

test('lint: off with lint=false', () => {
  const res = loadPolicyText('t.yaml', http('{host: "a.b"}'), { lint: false });
  assert.deepEqual(res.issues, []);
});
