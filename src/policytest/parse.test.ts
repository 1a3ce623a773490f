import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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
    name: 'inline objects policies refer to go to test.objects, as policyFiles objects do',
    text: doc(`  policies:
    - {apiVersion: cilium.io/v2alpha1, kind: CiliumCIDRGroup, metadata: {name: g}, spec: {externalCIDRs: [192.0.2.0/24]}}
    - {apiVersion: cilium.io/v2, kind: CiliumCIDRGroup, metadata: {name: g2}, spec: {externalCIDRs: []}}
    - {apiVersion: v1, kind: Service, metadata: {name: s, namespace: shop}, spec: {selector: {app: a}}}
    - {apiVersion: v1, kind: Endpoints, metadata: {name: s2, namespace: shop}, subsets: []}
    - {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: s2-1, namespace: shop}}
    - {apiVersion: v1, kind: Node, metadata: {name: node-2}, status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}}
    - apiVersion: v1
      kind: List
      items:
        - {apiVersion: v1, kind: Service, metadata: {name: in-list}}
    - {apiVersion: cilium.io/v2, kind: CiliumNetworkPolicy, metadata: {name: p, namespace: shop}, spec: {endpointSelector: {}, ingress: [{}]}}
  flows: []
`),
    issues: [],
    check: (r) => {
      const t = r.tests[0]!;
      assert.deepEqual(
        t.objects?.map((o) => `${o.kind}/${(o.value as { metadata: { name: string } }).metadata.name}`),
        [
          'CiliumCIDRGroup/g',
          'CiliumCIDRGroup/g2',
          'Service/s',
          'Endpoints/s2',
          'EndpointSlice/s2-1',
          'Node/node-2',
          'Service/in-list',
        ],
      );
      assert.deepEqual(
        t.policies.map((p) => p.metadata.name),
        ['p'],
      );
      // Positions are the PolicyTest file's.
      assert.deepEqual(t.objects?.[0]?.pos, { file: 't.yaml', line: 6, column: 7 });
    },
  },
  {
    name: 'an inline Namespace gives namespace labels, as spec.namespaces does',
    text: doc(`  policies:
    - {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {env: prod}}}
  endpoints:
    - {name: a, namespace: shop, labels: {app: a, io.cilium.k8s.namespace.labels.env: prod}}
  flows: []
`),
    issues: [],
    check: (r) => {
      const t = r.tests[0]!;
      assert.deepEqual(
        t.namespaces.map((n) => [n.name, n.labels, n.pos.line]),
        [['shop', { env: 'prod' }, 6]],
      );
      assert.equal(t.objects, undefined);
    },
  },
  {
    name: 'a namespace in spec.namespaces and as a Namespace: same labels agree, others are an error',
    text: doc(`  namespaces:
    - {name: shop, labels: {env: prod}}
    - {name: web, labels: {env: prod}}
  policies:
    - {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {env: prod}}}
    - {apiVersion: v1, kind: Namespace, metadata: {name: web, labels: {env: dev}}}
    - {apiVersion: v1, kind: Namespace, metadata: {name: lab}}
    - {apiVersion: v1, kind: Namespace, metadata: {name: lab, labels: {x: y}}}
  flows: []
`),
    issues: ['conflicting-namespace@10:58', 'conflicting-namespace@12:58'],
    check: (r) => {
      assert.deepEqual(
        r.tests[0]!.namespaces.map((n) => [n.name, n.labels]),
        [
          ['shop', { env: 'prod' }],
          ['web', { env: 'prod' }],
          ['lab', {}],
        ],
      );
      assert.match(
        r.issues[0]!.message,
        /Namespace web has labels \{"env":"dev"\} here but \{"env":"prod"\} at t\.yaml:7:7/,
      );
    },
  },
  {
    name: 'inline objects: other kinds, apiVersions and nameless ones refused; duplicates; left-out warned',
    text: doc(`  policies:
    - {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}
    - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
    - {apiVersion: apps/v1, kind: Service, metadata: {name: s}}
    - {apiVersion: cilium.io/v2alpha2, kind: CiliumCIDRGroup, metadata: {name: g}}
    - {apiVersion: v1, kind: Node, metadata: {labels: {a: b}}}
    - {apiVersion: v1, kind: Namespace}
    - {apiVersion: v1, kind: Namespace, metadata: {name: n, labels: {a: 1}}}
    - {kind: Service, metadata: {name: x}}
    - 42
    - {apiVersion: v1, kind: Node, metadata: {name: no-address}}
    - {apiVersion: v1, kind: Service, metadata: {name: twice}}
    - {apiVersion: v1, kind: Service, metadata: {name: twice, namespace: default}}
    - {apiVersion: v1, kind: Service, metadata: {name: twice, namespace: other}}
  flows: []
`),
    issues: [
      'not-a-policy@6:35',
      'not-a-policy@7:30',
      'unsupported-api-version@8:20',
      'unsupported-api-version@9:20',
      'missing-name@10:46',
      'missing-name@11:7',
      'wrong-type@12:73',
      'not-a-kubernetes-object@13:7',
      'not-a-kubernetes-object@14:7',
      // Taken, but the engine would leave it out: said, not silently dropped.
      'cluster-object-skipped@15:7',
      'duplicate-object@17:7',
    ],
    check: (r) => {
      assert.match(
        r.issues[0]!.message,
        /Deployment is neither; endpoints are listed under spec\.endpoints$/,
      );
      assert.match(r.issues[2]!.message, /use `apiVersion: v1`$/);
      assert.match(r.issues[3]!.message, /use `apiVersion: cilium\.io\/v2alpha1` or `cilium\.io\/v2`$/);
      assert.deepEqual(
        r.tests[0]!.objects?.map((o) => o.kind),
        ['Node', 'Service', 'Service', 'Service'],
      );
      assert.equal(r.issues.at(-2)!.severity, 'warning');
      assert.match(
        r.issues.at(-1)!.message,
        /^Service default\/twice is defined twice \(first at t\.yaml:16:7\)$/,
      );
    },
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
    // RFC 4343: DNS case folding is ASCII; Unicode folding would turn U+212A KELVIN SIGN into `k`.
    name: 'dns names fold ASCII only: KELVIN SIGN is no k',
    text: doc(`  dns:
    - {name: KUBE.Example., ips: [192.0.2.1]}
    - {name: "\u212Aube.other", ips: [192.0.2.2]}
  endpoints: [{name: a}]
  flows:
    - {from: a, to: kube.EXAMPLE, port: 443, expect: allowed}
    - {from: a, to: "\u212Aube.example", port: 443, expect: allowed}
`),
    issues: ['invalid-dns-name@7:14', 'unknown-peer@11:21'],
    check: (r) => {
      const t = r.tests[0]!;
      assert.deepEqual(
        t.dns.map((d) => d.name),
        ['kube.example'],
      );
      assert.deepEqual(t.flows[0]!.toFQDN, { name: 'kube.example', ip: '192.0.2.1' });
    },
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

test('parse: Namespace objects in policyFiles give namespace labels and agree with spec.namespaces', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-pt-'));
  writeFileSync(
    join(dir, 'ns.yaml'),
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: prod}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: web, labels: {env: dev}}\n',
  );
  const file = join(dir, 'test.yaml');
  const r = await parsePolicyTestText(
    file,
    doc(
      '  policyFiles: [ns.yaml]\n  namespaces: [{name: web, labels: {env: prod}}]\n  endpoints:\n    - {name: a, namespace: shop, labels: {io.cilium.k8s.namespace.labels.env: prod}}\n  flows: []\n',
    ),
  );
  assert.deepEqual(
    r.issues.map((i) => `${i.code}@${i.pos.file === file ? '' : 'ns.yaml:'}${i.pos.line}:${i.pos.column}`),
    ['conflicting-namespace@ns.yaml:5:1'],
  );
  assert.deepEqual(
    r.tests[0]!.namespaces.map((n) => [n.name, n.labels]),
    [
      ['web', { env: 'prod' }],
      ['shop', { env: 'prod' }],
    ],
  );
  assert.equal(r.tests[0]!.objects, undefined);
});

test('seawall test: inline CiliumCIDRGroup, Services and Namespace pass end to end', () => {
  const root = join(import.meta.dirname, '..', '..');
  const r = spawnSync(
    process.execPath,
    ['bin/seawall.js', 'test', 'src/policytest/testdata/inline-objects.policytest.yaml', '-o', 'json'],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0, r.stdout);
  const results = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { name: string; actual: string; pass: boolean });
  assert.deepEqual(
    results.map((x) => [x.name, x.actual, x.pass]),
    [
      ['service pods', 'allowed', true],
      ['not selected by the Service', 'denied', true],
      ['selector-less Service backend', 'allowed', true],
      ['CIDR group member', 'allowed', true],
      ['CIDR group except', 'denied', true],
      ['outside the CIDR group', 'denied', true],
    ],
  );
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
