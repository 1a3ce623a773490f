import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPolicyTestFile, parsePolicyTestText } from './parse.ts';
import type { ParsedTestFile } from './types.ts';

/** Header on lines 1-4; the body starts on line 5. */
const doc = (body: string, name = 't') =>
  `apiVersion: seawall/v1\nkind: PolicyTest\nmetadata: {name: ${name}}\nspec:\n${body}`;

const EPS = `  endpoints:
    - {name: a, namespace: shop, labels: {app: a}}
    - {name: b, namespace: shop, labels: {app: b}, ip: 10.0.0.1}
    - {name: b, namespace: other}
    - {name: gh, ip: 140.82.112.5, external: true}
  dns:
    - {name: api.github.com, ips: [140.82.112.5], ttl: 60}
`; // lines 5-11; flows start on line 12

const flow = (f: string) => doc(`${EPS}  flows:\n    - ${f}\n`); // the flow is on line 13

interface Row {
  name: string;
  text: string;
  /** code@line:column of every issue, in order. */
  issues: string[];
  check?: (r: ParsedTestFile) => void;
}

const rows: Row[] = [
  {
    name: 'minimal valid test with defaults',
    text: flow('{from: a, to: shop/b, port: 80, expect: allowed}'),
    issues: [],
    check: (r) => {
      const t = r.tests[0]!;
      assert.equal(t.name, 't');
      assert.equal(t.enforcementMode, 'default');
      const a = t.endpoints[0]!;
      assert.equal(a.namespace, 'shop');
      assert.equal(a.node, 'node-1');
      // 10.0.0.1 is taken by b, so a gets the next address.
      assert.equal(a.ip, '10.0.0.2');
      assert.equal(a.ipAllocated, true);
      assert.equal(t.endpoints[2]!.namespace, 'other');
      assert.equal(t.endpoints[3]!.namespace, undefined);
      const f = t.flows[0]!;
      assert.deepEqual(f.request, {
        src: { kind: 'endpoint', name: 'a', namespace: 'shop' },
        dst: { kind: 'endpoint', name: 'b', namespace: 'shop' },
        protocol: 'TCP',
        dport: 80,
      });
    },
  },
  {
    name: 'every flow form: IP, entity, FQDN, external by name',
    text: doc(`${EPS}  flows:
    - {from: 10.0.0.1, to: world, port: 80, expect: denied}
    - {from: host, to: api.github.com., port: 443, expect: allowed}
    - {from: 192.0.2.7, to: gh, port: 443, protocol: UDP, expect: denied, expectReason: POLICY_DENY}
`),
    issues: [],
    check: (r) => {
      const [f0, f1, f2] = r.tests[0]!.flows;
      assert.deepEqual(f0!.request.src, { kind: 'endpoint', name: 'b', namespace: 'shop' });
      assert.deepEqual(f0!.request.dst, { kind: 'entity', entity: 'world' });
      assert.deepEqual(f1!.request.dst, { kind: 'ip', ip: '140.82.112.5' });
      assert.deepEqual(f1!.toFQDN, { name: 'api.github.com', ip: '140.82.112.5' });
      assert.deepEqual(f2!.request.src, { kind: 'ip', ip: '192.0.2.7' });
      assert.equal(f2!.request.protocol, 'UDP');
      assert.equal(f2!.expectReason, 'POLICY_DENY');
    },
  },
  {
    name: 'L7 requests: http, grpc, kafka by name and number, dns',
    text: doc(`${EPS}  flows:
    - {from: a, to: shop/b, port: 80, http: {method: POST, path: /x, host: h, headers: {X-A: "1"}}, expect: allowed}
    - {from: a, to: shop/b, port: 80, grpc: {service: pkg.Svc, method: Get}, expect: allowed}
    - {from: a, to: shop/b, port: 9092, kafka: {apiKey: Fetch, apiVersion: 3, clientID: c, topics: [x, y]}, expect: allowed}
    - {from: a, to: shop/b, port: 9092, kafka: {apiKey: 0, topic: t}, expect: denied, expectReason: L7_DENIED}
    - {from: a, to: shop/b, port: 53, protocol: UDP, dns: {query: api.github.com, type: aaaa}, expect: allowed}
    - {from: a, to: shop/b, protocol: ICMP, icmp: {type: 0, family: IPv4}, expect: denied}
    - {from: a, to: shop/b, port: 0, protocol: ICMPv6, expect: denied}
`),
    issues: [],
    check: (r) => {
      const fl = r.tests[0]!.flows;
      assert.deepEqual(fl[0]!.request.l7, {
        kind: 'http',
        method: 'POST',
        path: '/x',
        host: 'h',
        headers: { 'X-A': '1' },
      });
      assert.deepEqual(fl[1]!.request.l7, { kind: 'http', method: 'POST', path: '/pkg.Svc/Get', grpc: true });
      assert.deepEqual(fl[2]!.request.l7, {
        kind: 'kafka',
        apiKey: 1,
        apiVersion: 3,
        clientID: 'c',
        topics: ['x', 'y'],
      });
      assert.deepEqual(fl[3]!.request.l7, {
        kind: 'kafka',
        apiKey: 0,
        apiVersion: 0,
        clientID: '',
        topics: ['t'],
      });
      assert.deepEqual(fl[4]!.request.l7, { kind: 'dns', query: 'api.github.com', qtype: 'AAAA' });
      assert.deepEqual(fl[5]!.request.icmp, { type: 0, family: 'IPv4' });
      assert.equal(fl[5]!.request.dport, undefined);
      assert.deepEqual(fl[6]!.request.icmp, { type: 128, family: 'IPv6' });
    },
  },
  {
    name: 'config, namespaces, ports, serviceAccount, node, description',
    text: `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: t, description: hello}
spec:
  config: {enforcementMode: always}
  namespaces:
    - {name: shop, labels: {env: prod}}
  endpoints:
    - name: a
      namespace: shop
      serviceAccount: sa-a
      node: node-2
      labels: {app: a, io.kubernetes.pod.namespace: shop, k8s:io.cilium.k8s.namespace.labels.env: prod, io.cilium.k8s.policy.serviceaccount: sa-a}
      ports: [{name: http, port: 8080, protocol: TCP}, {port: 53, protocol: UDP}]
  flows: []
`,
    issues: [],
    check: (r) => {
      const t = r.tests[0]!;
      assert.equal(t.description, 'hello');
      assert.equal(t.enforcementMode, 'always');
      assert.deepEqual(
        t.namespaces.map((n) => [n.name, n.labels]),
        [['shop', { env: 'prod' }]],
      );
      const a = t.endpoints[0]!;
      assert.deepEqual(a.labels, { app: 'a' });
      assert.equal(a.serviceAccount, 'sa-a');
      assert.equal(a.node, 'node-2');
      assert.deepEqual(a.ports, [
        { name: 'http', port: 8080, protocol: 'TCP' },
        { port: 53, protocol: 'UDP' },
      ]);
    },
  },
  {
    name: 'inline policy decoded with the test file positions',
    text: `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: t}
spec:
  policies:
    - apiVersion: cilium.io/v2
      kind: CiliumNetworkPolicy
      metadata: {name: p, namespace: shop}
      spec:
        endpointSelector: {matchLabels: {app: a}}
        ingress:
          - fromEndpoint: [{}]
  flows: []
`,
    issues: ['unknown-field@12:13'],
  },
  {
    name: 'unknown fields at every level',
    text: `apiVersion: seawall/v1
kind: PolicyTest
metadata: {name: t, labels: {}}
spec:
  config: {enforcement: always}
  endpoint: []
  endpoints:
    - {name: a, label: {}, ports: [{port: 1, proto: TCP}]}
  namespaces: [{name: n, lables: {}}]
  dns: [{name: x.com, ips: [1.2.3.4], tll: 1}]
  flows:
    - {from: a, to: a, port: 1, expect: allowed, expected: denied, http: {verb: GET}}
    - {from: a, to: a, protocol: ICMP, icmp: {code: 1}, kafka: {apikey: 1}, expect: allowed}
`,
    issues: [
      'unknown-field@3:21',
      'unknown-field@5:12',
      'unknown-field@6:3',
      'unknown-field@8:17',
      'unknown-field@8:46',
      'unknown-field@9:26',
      'unknown-field@10:39',
      'unknown-field@12:50',
      'unknown-field@12:75',
      'unknown-field@13:47',
      'l7-not-tcp@13:57',
    ],
    check: (r) => {
      // A PolicyTest is no CRD: the policy decoder's note about the API server does not apply.
      const hit = r.issues.find((i) => i.path === 'spec.flows[0].expected');
      assert.match(hit?.message ?? '', /Did you mean "expect"\?$/);
    },
  },
  {
    name: 'missing required fields',
    text: `apiVersion: seawall/v1
kind: PolicyTest
metadata: {description: x}
spec:
  endpoints:
    - {namespace: shop}
    - {name: g, external: true}
  dns: [{name: x.com}]
  flows:
    - {to: g, port: 1}
`,
    issues: [
      'missing-field@3:11',
      'missing-field@6:7',
      'missing-field@7:7',
      'missing-field@8:9',
      'missing-field@10:7',
      'missing-field@10:7',
      'unknown-peer@10:12',
    ],
  },
  {
    name: 'wrong types and values',
    text: doc(`  config: {enforcementMode: Always}
  endpoints:
    - {name: a, ip: 300.1.1.1, labels: {app: 1}, ports: [{name: HTTP, port: 70000}], external: yes}
  dns: [{name: "bad name", ips: [x], ttl: -1}]
  flows:
    - {from: a, to: a, port: "80", protocol: tcp, expect: maybe, expectReason: DENIED}
`),
    issues: [
      'invalid-value@5:29',
      'invalid-ip@7:21',
      'wrong-type@7:46',
      'out-of-range@7:77',
      'wrong-type@7:96',
      'invalid-dns-name@8:16',
      'invalid-ip@8:34',
      'out-of-range@8:43',
      'unknown-peer@10:14',
      'unknown-peer@10:21',
      'wrong-type@10:30',
      'invalid-value@10:46',
      'invalid-value@10:59',
      'invalid-value@10:80',
    ],
  },
  {
    name: 'label keys named like Object.prototype members are plain keys',
    text: doc(`  endpoints:
    - {name: a, labels: {__proto__: x, io.cilium.k8s.namespace.labels.constructor: y}}
  flows: []
`),
    issues: ['identity-label-mismatch@6:40'],
    check: (r) => {
      assert.deepEqual(r.tests[0]!.endpoints[0]!.labels, JSON.parse('{"__proto__": "x"}'));
      assert.match(r.issues[0]!.message, /\(no such label\)/);
    },
  },
  {
    name: 'bad flow references',
    text: doc(`${EPS}  flows:
    - {from: b, to: shop/c, port: 80, expect: allowed}
    - {from: api.github.com, to: nowhere.example, port: 80, expect: allowed}
    - {from: shop/aa, to: a, port: 80, expect: allowed}
    - {from: a, to: shop/b/extra, port: 80, expect: allowed}
`),
    issues: [
      'ambiguous-endpoint@13:14',
      'unknown-endpoint@13:21',
      'fqdn-as-source@14:14',
      'unknown-peer@14:34',
      'unknown-endpoint@15:14',
      // NAMESPACE/NAME has one slash: the rest is not silently dropped.
      'unknown-endpoint@16:21',
    ],
  },
  {
    name: 'flow consistency errors',
    text: doc(`${EPS}  flows:
    - {from: a, to: a, expect: allowed}
    - {from: a, to: a, port: 80, protocol: ICMP, expect: allowed}
    - {from: a, to: a, port: 80, icmp: {type: 8}, expect: allowed}
    - {from: a, to: a, port: 80, http: {}, dns: {query: x}, expect: allowed}
    - {from: a, to: a, port: 80, protocol: UDP, http: {}, expect: allowed}
    - {from: a, to: a, port: 80, expect: allowed, expectReason: POLICY_DENIED}
    - {from: a, to: a, port: 9092, kafka: {apiKey: createtopic, topic: a, topics: [b]}, expect: denied}
    - {from: a, to: a, protocol: ICMP, icmp: {type: 300, family: IPv6}, expect: denied}
`),
    issues: [
      'missing-field@13:7',
      'port-with-icmp@14:30',
      'icmp-without-icmp-protocol@15:40',
      'multiple-l7@16:44',
      'l7-not-tcp@17:49',
      'reason-without-deny@18:65',
      'invalid-kafka-api-key@19:52',
      'topic-and-topics@19:75',
      'out-of-range@20:53',
      'icmp-family-mismatch@20:66',
    ],
  },
  {
    name: 'duplicates: test names, endpoints, IPs, namespaces, dns names',
    text: `${doc(`  namespaces: [{name: n}, {name: n}]
  dns: [{name: x.com, ips: [1.1.1.1]}, {name: X.com., ips: [1.1.1.2]}]
  endpoints:
    - {name: a, ip: 10.1.1.1}
    - {name: a}
    - {name: b, ip: 10.1.1.1}
  flows: []
`)}---\n${doc('  flows: []\n')}`,
    issues: [
      'duplicate-namespace@5:34',
      'duplicate-dns-name@6:47',
      'duplicate-endpoint@9:14',
      'duplicate-ip@10:21',
      'duplicate-test-name@15:18',
    ],
  },
  {
    name: 'identity labels must agree with derived ones',
    text: doc(`  namespaces: [{name: shop, labels: {env: prod}}]
  endpoints:
    - name: a
      namespace: shop
      labels:
        io.kubernetes.pod.namespace: other
        io.cilium.k8s.namespace.labels.env: dev
        io.cilium.k8s.policy.serviceaccount: x
        io.cilium.k8s.policy.cluster: default
        reserved:host: ""
  flows: []
`),
    issues: [
      'identity-label-mismatch@10:9',
      'identity-label-mismatch@11:9',
      'identity-label-mismatch@12:9',
      'invalid-label-key@14:9',
    ],
  },
  {
    name: 'external endpoints: no namespace, no service account, need an ip',
    text: doc(`  endpoints:
    - {name: g, namespace: x, serviceAccount: s, ip: 1.2.3.4, external: true}
  flows: []
`),
    issues: ['external-with-namespace@6:28', 'external-with-field@6:47'],
  },
  {
    name: 'wrong kind and apiVersion',
    text: 'apiVersion: v1\nkind: PolicyTest\nmetadata: {name: t}\nspec: {flows: []}\n---\napiVersion: seawall/v1\nkind: Pod\nmetadata: {name: p}\n',
    issues: ['wrong-api-version@1:13', 'wrong-kind@7:7'],
  },
  {
    name: 'YAML syntax error',
    text: 'apiVersion: seawall/v1\nkind: PolicyTest\nmetadata: {name: t\n',
    issues: ['yaml-syntax@4:1'],
  },
  {
    name: 'JSON is accepted',
    text: '{"apiVersion": "seawall/v1", "kind": "PolicyTest", "metadata": {"name": "j"},\n "spec": {"endpoints": [{"name": "a"}], "flows": [{"from": "a", "to": "world", "port": 1, "expect": "denied"}]}}\n',
    issues: [],
    check: (r) => assert.equal(r.tests[0]!.flows.length, 1),
  },
];

for (const row of rows) {
  test(`parse: ${row.name}`, async () => {
    const r = await parsePolicyTestText('t.yaml', row.text);
    const got = r.issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.column}`);
    assert.deepEqual(
      got,
      row.issues,
      r.issues.map((i) => `${i.pos.line}:${i.pos.column} ${i.message}`).join('\n'),
    );
    row.check?.(r);
  });
}

test('parse: policyFiles relative to the test file, directories recursive, missing ones reported', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-pt-'));
  mkdirSync(join(dir, 'pol', 'sub'), { recursive: true });
  const cnp = (n: string) =>
    `apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ${n}, namespace: shop}\nspec:\n  endpointSelector: {}\n  ingress: [{}]\n`;
  writeFileSync(join(dir, 'pol', 'a.yaml'), cnp('a'));
  writeFileSync(join(dir, 'pol', 'sub', 'b.yml'), cnp('b'));
  writeFileSync(join(dir, 'one.yaml'), cnp('c'));
  const file = join(dir, 'test.yaml');
  const r = await parsePolicyTestText(file, doc('  policyFiles: [pol/, one.yaml, nope/]\n  flows: []\n'));
  assert.deepEqual(
    r.issues.map((i) => `${i.code}@${i.pos.line}:${i.pos.column}`),
    ['missing-policy-file@5:33'],
  );
  assert.deepEqual(r.tests[0]!.policies.map((p) => p.metadata.name).sort(), ['a', 'b', 'c']);
});

test('loadPolicyTestFile: item 5: a FIFO or device named on the command line is an issue', async () => {
  for (const f of ['/dev/zero', '/dev/null']) {
    const got = await loadPolicyTestFile(f);
    assert.deepEqual(
      got.issues.map((i) => [i.code, i.message]),
      [['not-regular-file', `${f}: is a character device, not a regular file`]],
    );
  }
});
