import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPolicyText } from './load.ts';

/** A CNP (or CCNP/KNP) document around a spec written as a YAML flow mapping. */
function doc(spec: string, kind = 'CiliumNetworkPolicy'): string {
  const api = kind === 'NetworkPolicy' ? 'networking.k8s.io/v1' : 'cilium.io/v2';
  return `apiVersion: ${api}\nkind: ${kind}\nmetadata: {name: t, namespace: ns}\nspec: ${spec}\n`;
}
const EP = 'endpointSelector: {matchLabels: {app: a}}';
const ingressPorts = (ports: string, extra = '') =>
  `{${EP}, ingress: [{toPorts: [{ports: [${ports}]${extra}}]}]}`;
const egressRule = (rule: string) => `{${EP}, egress: [${rule}]}`;
const http = (rules: string, proto = 'TCP', port = '"80"') =>
  ingressPorts(`{port: ${port}, protocol: ${proto}}`, `, rules: {http: [${rules}]}`);
const kafka = (rules: string) =>
  ingressPorts('{port: "9092", protocol: TCP}', `, rules: {kafka: [${rules}]}`);
const dnsEgress = (ports: string, dns = '{matchPattern: "*"}') =>
  egressRule(`{toPorts: [{ports: [${ports}], rules: {dns: [${dns}]}}]}`);

interface Row {
  name: string;
  yaml: string;
  /** Expected error code; undefined = no errors at all. */
  code?: string;
  severity?: 'error' | 'warning';
}

const rows: Row[] = [
  // subject and sections
  { name: 'valid minimal rule', yaml: doc(`{${EP}, ingress: [{}]}`) },
  { name: 'no subject selector', yaml: doc('{ingress: [{}]}'), code: 'missing-subject-selector' },
  {
    name: 'both selectors',
    yaml: doc('{endpointSelector: {}, nodeSelector: {}, ingress: [{}]}', 'CiliumClusterwideNetworkPolicy'),
    code: 'both-subject-selectors',
  },
  {
    name: 'nodeSelector in a CNP',
    yaml: doc('{nodeSelector: {}, ingress: [{}]}'),
    code: 'node-selector-in-cnp',
  },
  {
    name: 'nodeSelector in a CCNP is fine',
    yaml: doc('{nodeSelector: {}, ingress: [{fromEntities: [world]}]}', 'CiliumClusterwideNetworkPolicy'),
  },
  { name: 'no sections', yaml: doc(`{${EP}}`), code: 'no-rule-sections' },
  { name: 'all sections empty', yaml: doc(`{${EP}, ingress: [], egress: []}`), code: 'empty-rule-sections' },
  { name: 'one empty section beside a real one', yaml: doc(`{${EP}, ingress: [], egress: [{}]}`) },
  {
    name: 'no spec and no specs',
    yaml: 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: t}\n',
    code: 'empty-policy',
  },
  {
    name: 'every rule of specs is validated',
    yaml: doc(`{${EP}, ingress: [{}]}`).replace('spec: {', `specs: [{${EP}}, {`) + ']',
    code: 'no-rule-sections',
  },
  // peers
  {
    name: 'two peer kinds',
    yaml: doc(`{${EP}, ingress: [{fromEndpoints: [{}], fromCIDR: [10.0.0.0/8]}]}`),
    code: 'combined-peer-kinds',
  },
  {
    name: 'toFQDNs with toEndpoints',
    yaml: doc(egressRule('{toFQDNs: [{matchName: a.com}], toEndpoints: [{}]}')),
    code: 'combined-peer-kinds',
  },
  {
    name: 'empty peer list does not count',
    yaml: doc(egressRule('{toEndpoints: [], toCIDR: [10.0.0.0/8]}')),
  },
  {
    name: 'unknown entity',
    yaml: doc(`{${EP}, ingress: [{fromEntities: [internet]}]}`),
    code: 'unsupported-entity',
  },
  {
    name: 'world-ipv4 entity',
    yaml: doc(`{${EP}, ingress: [{fromEntities: [world-ipv4]}]}`),
    code: 'unsupported-entity',
  },
  // selectors
  {
    name: 'bad operator',
    yaml: doc(
      `{${EP}, ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: Equals, values: [b]}]}]}]}`,
    ),
    code: 'invalid-selector-operator',
  },
  {
    name: 'In without values',
    yaml: doc(`{${EP}, ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: In}]}]}]}`),
    code: 'selector-values-required',
  },
  {
    name: 'Exists with values',
    yaml: doc(
      `{${EP}, ingress: [{fromEndpoints: [{matchExpressions: [{key: a, operator: Exists, values: [x]}]}]}]}`,
    ),
    code: 'selector-values-forbidden',
  },
  {
    name: 'label value too long',
    yaml: doc(`{endpointSelector: {matchLabels: {app: ${'a'.repeat(64)}}}, ingress: [{}]}`),
    code: 'invalid-label-value',
  },
  {
    name: 'label value bad chars',
    yaml: doc(`{endpointSelector: {matchLabels: {app: "a b"}}, ingress: [{}]}`),
    code: 'invalid-label-value',
  },
  // CIDR
  { name: 'bad CIDR', yaml: doc(egressRule('{toCIDR: [10.0.0.300/8]}')), code: 'invalid-cidr' },
  { name: 'bare IP in toCIDR', yaml: doc(egressRule('{toCIDR: [10.0.0.1]}')), code: 'invalid-cidr' },
  {
    name: 'non-contiguous mask',
    yaml: doc(egressRule('{toCIDR: [10.0.0.0/255.0.255.0]}')),
    code: 'invalid-cidr',
  },
  { name: 'prefix too long', yaml: doc(egressRule('{toCIDR: [10.0.0.0/33]}')), code: 'invalid-cidr' },
  { name: 'IPv6 prefix ok', yaml: doc(egressRule('{toCIDR: ["2001:db8::/32"]}')) },
  {
    name: 'except outside cidr',
    yaml: doc(egressRule('{toCIDRSet: [{cidr: 10.10.0.0/24, except: [10.10.0.0/16]}]}')),
    code: 'cidr-except-outside',
  },
  {
    name: 'except other family',
    yaml: doc(egressRule('{toCIDRSet: [{cidr: 10.10.0.0/16, except: ["2001:db8::/64"]}]}')),
    code: 'cidr-except-family-mismatch',
  },
  {
    name: 'except inside cidr',
    yaml: doc(egressRule('{toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]}')),
  },
  {
    name: 'cidrSet with none',
    yaml: doc(egressRule('{toCIDRSet: [{except: [10.1.0.0/16]}]}')),
    code: 'cidrset-source-count',
  },
  {
    name: 'cidrSet with two',
    yaml: doc(egressRule('{toCIDRSet: [{cidr: 10.0.0.0/8, cidrGroupRef: g}]}')),
    code: 'cidrset-source-count',
  },
  // ports
  { name: 'port missing', yaml: doc(ingressPorts('{protocol: TCP}')), code: 'port-missing' },
  { name: 'port empty', yaml: doc(ingressPorts('{port: "", protocol: TCP}')), code: 'port-missing' },
  { name: 'port garbage', yaml: doc(ingressPorts('{port: "8_0x", protocol: TCP}')), code: 'invalid-port' },
  {
    name: 'port out of range',
    yaml: doc(ingressPorts('{port: "70000", protocol: TCP}')),
    code: 'invalid-port',
  },
  { name: 'port bad octal', yaml: doc(ingressPorts('{port: "08080", protocol: TCP}')), code: 'invalid-port' },
  {
    name: 'port octal is a warning',
    yaml: doc(ingressPorts('{port: "010", protocol: TCP}')),
    code: 'port-not-decimal',
    severity: 'warning',
  },
  { name: 'named port', yaml: doc(ingressPorts('{port: http-alt, protocol: TCP}')) },
  { name: 'port 0x10 is a service name', yaml: doc(ingressPorts('{port: "0x10", protocol: TCP}')) },
  { name: 'port name too long', yaml: doc(ingressPorts('{port: abcdefghijklmnop}')), code: 'invalid-port' },
  { name: 'port name double hyphen', yaml: doc(ingressPorts('{port: a--b}')), code: 'invalid-port' },
  { name: 'unquoted port number', yaml: doc(ingressPorts('{port: 80}')), code: 'wrong-type' },
  {
    name: 'too many ports',
    yaml: doc(ingressPorts(Array.from({ length: 41 }, (_, i) => `{port: "${i + 1}"}`).join(', '))),
    code: 'too-many-ports',
  },
  {
    name: 'lower-case protocol',
    yaml: doc(ingressPorts('{port: "80", protocol: tcp}')),
    code: 'invalid-protocol',
  },
  { name: 'ICMP protocol', yaml: doc(ingressPorts('{port: "0", protocol: ICMP}')), code: 'invalid-protocol' },
  {
    name: 'endPort out of range',
    yaml: doc(ingressPorts('{port: "80", endPort: 70000}')),
    code: 'invalid-end-port',
  },
  // L7
  { name: 'http on UDP', yaml: doc(http('{method: GET}', 'UDP')), code: 'l7-requires-tcp' },
  {
    name: 'http with protocol omitted',
    yaml: doc(ingressPorts('{port: "80"}', ', rules: {http: [{}]}')),
    code: 'l7-requires-tcp',
  },
  { name: 'http on port 0', yaml: doc(http('{}', 'TCP', '"0"')), code: 'l7-port-zero' },
  {
    name: 'two L7 types',
    yaml: doc(ingressPorts('{port: "80", protocol: TCP}', ', rules: {http: [{}], kafka: [{role: produce}]}')),
    code: 'multiple-l7-types',
  },
  { name: 'bad path regex', yaml: doc(http('{path: "*"}')), code: 'invalid-regex' },
  { name: 'bad method regex', yaml: doc(http('{method: "GET("}')), code: 'invalid-regex' },
  { name: 'bad host regex', yaml: doc(http('{host: "[a"}')), code: 'invalid-regex' },
  { name: 'good http', yaml: doc(http('{path: "/api/.*", method: "GET|POST", host: "a\\\\.b"}')) },
  {
    name: 'headerMatches without name',
    yaml: doc(http('{headerMatches: [{value: x}]}')),
    code: 'header-name-missing',
  },
  {
    name: 'headerMatches bad mismatch',
    yaml: doc(http('{headerMatches: [{name: a, mismatch: DROP}]}')),
    code: 'invalid-header-mismatch',
  },
  {
    name: 'headerMatches secret without name',
    yaml: doc(http('{headerMatches: [{name: a, secret: {namespace: x}}]}')),
    code: 'header-secret-name-missing',
  },
  {
    name: 'DNS on ingress',
    yaml: doc(ingressPorts('{port: "53", protocol: UDP}', ', rules: {dns: [{matchPattern: "*"}]}')),
    code: 'dns-rules-on-ingress',
  },
  {
    name: 'DNS without ports',
    yaml: doc(egressRule('{toPorts: [{rules: {dns: [{matchPattern: "*"}]}}]}')),
    code: 'dns-rules-without-ports',
  },
  {
    name: 'DNS with endPort',
    yaml: doc(dnsEgress('{port: "53", endPort: 54}')),
    code: 'dns-rules-port-range',
  },
  { name: 'DNS on UDP is fine', yaml: doc(dnsEgress('{port: "53", protocol: UDP}')) },
  {
    name: 'matchName with star',
    yaml: doc(dnsEgress('{port: "53"}', '{matchName: "*.a.com"}')),
    code: 'invalid-match-name',
  },
  {
    name: 'matchPattern with port',
    yaml: doc(egressRule('{toFQDNs: [{matchPattern: "*.a.com:443"}]}')),
    code: 'invalid-match-pattern',
  },
  {
    name: 'matchName and matchPattern',
    yaml: doc(egressRule('{toFQDNs: [{matchName: a.com, matchPattern: "*.a.com"}]}')),
    code: 'fqdn-both-match-fields',
  },
  {
    name: 'FQDN too long',
    yaml: doc(egressRule(`{toFQDNs: [{matchName: ${'a.'.repeat(128)}com}]}`)),
    code: 'fqdn-too-long',
  },
  {
    name: 'matchName with an empty label',
    yaml: doc(egressRule('{toFQDNs: [{matchName: "api..a.com"}]}')),
    code: 'invalid-match-name',
  },
  {
    name: 'matchPattern with a leading dot',
    yaml: doc(egressRule('{toFQDNs: [{matchPattern: ".a.com"}]}')),
    code: 'invalid-match-pattern',
  },
  {
    name: 'matchName with a trailing dot is fine',
    yaml: doc(egressRule('{toFQDNs: [{matchName: "a.com."}]}')),
  },
  {
    name: 'kafka role and apiKey',
    yaml: doc(kafka('{role: produce, apiKey: produce}')),
    code: 'kafka-role-and-apikey',
  },
  { name: 'kafka unknown role', yaml: doc(kafka('{role: admin}')), code: 'invalid-kafka-role' },
  { name: 'kafka createtopic', yaml: doc(kafka('{apiKey: createtopic}')), code: 'invalid-kafka-apikey' },
  { name: 'kafka createtopics is fine', yaml: doc(kafka('{apiKey: CreateTopics}')) },
  {
    name: 'kafka apiVersion',
    yaml: doc(kafka('{role: produce, apiVersion: "x1"}')),
    code: 'invalid-kafka-apiversion',
  },
  {
    name: 'kafka topic chars',
    yaml: doc(kafka('{role: produce, topic: "a b"}')),
    code: 'invalid-kafka-topic',
  },
  {
    name: 'kafka topic length',
    yaml: doc(kafka(`{role: produce, topic: ${'t'.repeat(256)}}`)),
    code: 'kafka-topic-too-long',
  },
  // ICMP
  {
    name: 'icmps with toPorts',
    yaml: doc(`{${EP}, ingress: [{icmps: [{fields: [{type: 8}]}], toPorts: [{ports: [{port: "80"}]}]}]}`),
    code: 'icmps-with-toports',
  },
  { name: 'icmp type name', yaml: doc(`{${EP}, ingress: [{icmps: [{fields: [{type: EchoRequest}]}]}]}`) },
  {
    name: 'icmp type out of range',
    yaml: doc(`{${EP}, ingress: [{icmps: [{fields: [{type: 300}]}]}]}`),
    code: 'invalid-icmp-type',
  },
  {
    name: 'icmp v6 name with v4 family',
    yaml: doc(`{${EP}, ingress: [{icmps: [{fields: [{type: NeighborSolicitation}]}]}]}`),
    code: 'invalid-icmp-type',
  },
  {
    name: 'icmp bad family',
    yaml: doc(`{${EP}, ingress: [{icmps: [{fields: [{type: 8, family: ipv4}]}]}]}`),
    code: 'invalid-icmp-family',
  },
  // TLS, listener, host policy
  {
    name: 'serverNames with L7 without TLS',
    yaml: doc(
      egressRule(
        '{toPorts: [{ports: [{port: "443", protocol: TCP}], serverNames: [a.com], rules: {http: [{}]}}]}',
      ),
    ),
    code: 'servernames-l7-without-tls',
  },
  {
    name: 'empty serverName',
    yaml: doc(egressRule('{toPorts: [{ports: [{port: "443", protocol: TCP}], serverNames: [""]}]}')),
    code: 'empty-server-name',
  },
  {
    name: 'listener on ingress',
    yaml: doc(
      ingressPorts(
        '{port: "80", protocol: TCP}',
        ', listener: {envoyConfig: {kind: CiliumEnvoyConfig, name: e}, name: l}',
      ),
    ),
    code: 'listener-on-ingress',
  },
  {
    name: 'listener with rules',
    yaml: doc(
      egressRule(
        '{toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{}]}, listener: {envoyConfig: {name: e}, name: l}}]}',
      ),
    ),
    code: 'listener-with-rules',
  },
  {
    name: 'L7 in host policy',
    yaml: doc(
      '{nodeSelector: {}, ingress: [{toPorts: [{ports: [{port: "80", protocol: TCP}], rules: {http: [{}]}}]}]}',
      'CiliumClusterwideNetworkPolicy',
    ),
    code: 'l7-in-host-policy',
  },
  {
    name: 'DNS egress in host policy is fine',
    yaml: doc(
      '{nodeSelector: {}, egress: [{toPorts: [{ports: [{port: "53"}], rules: {dns: [{matchPattern: "*"}]}}]}]}',
      'CiliumClusterwideNetworkPolicy',
    ),
  },
  // misc
  {
    name: 'fromRequires is deprecated',
    yaml: doc(`{${EP}, ingress: [{fromRequires: [{matchLabels: {env: prod}}]}]}`),
    code: 'requires-deprecated',
    severity: 'warning',
  },
  {
    name: 'log value too long',
    yaml: doc(`{${EP}, ingress: [{}], log: {value: ${'x'.repeat(33)}}}`),
    code: 'invalid-log-value',
  },
  {
    name: 'log value non-printable',
    yaml: doc(`{${EP}, ingress: [{}], log: {value: "a\\tb"}}`),
    code: 'invalid-log-value',
  },
  {
    name: 'authentication mode',
    yaml: doc(`{${EP}, ingress: [{fromEntities: [all], authentication: {mode: strict}}]}`),
    code: 'invalid-authentication-mode',
  },
  // Kubernetes NetworkPolicy
  {
    name: 'KNP valid',
    yaml: doc(
      '{podSelector: {}, ingress: [{from: [{podSelector: {}}], ports: [{port: 80}]}]}',
      'NetworkPolicy',
    ),
  },
  {
    name: 'KNP without podSelector',
    yaml: doc('{ingress: [{}]}', 'NetworkPolicy'),
    code: 'missing-pod-selector',
  },
  {
    name: 'KNP bad policyType',
    yaml: doc('{podSelector: {}, policyTypes: [ingress]}', 'NetworkPolicy'),
    code: 'invalid-policy-type',
  },
  {
    name: 'KNP ipBlock bad cidr',
    yaml: doc('{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0}}]}]}', 'NetworkPolicy'),
    code: 'invalid-cidr',
  },
  {
    name: 'KNP ipBlock except outside',
    yaml: doc(
      '{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.0/8]}}]}]}',
      'NetworkPolicy',
    ),
    code: 'cidr-except-outside',
  },
  {
    name: 'KNP ipBlock with selector',
    yaml: doc(
      '{podSelector: {}, ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]}',
      'NetworkPolicy',
    ),
    code: 'knp-ipblock-with-selector',
  },
  {
    name: 'KNP protocol enum',
    yaml: doc('{podSelector: {}, ingress: [{ports: [{protocol: tcp, port: 80}]}]}', 'NetworkPolicy'),
    code: 'invalid-protocol',
  },
  {
    name: 'KNP endPort below port',
    yaml: doc('{podSelector: {}, ingress: [{ports: [{port: 80, endPort: 70}]}]}', 'NetworkPolicy'),
    code: 'invalid-end-port',
  },
  {
    name: 'KNP endPort with named port',
    yaml: doc('{podSelector: {}, ingress: [{ports: [{port: http, endPort: 90}]}]}', 'NetworkPolicy'),
    code: 'invalid-end-port',
  },
  {
    name: 'KNP quoted numeric port',
    yaml: doc('{podSelector: {}, ingress: [{ports: [{port: "80"}]}]}', 'NetworkPolicy'),
    code: 'invalid-port',
  },
];

for (const row of rows) {
  test(`validate: ${row.name}`, () => {
    const res = loadPolicyText('t.yaml', row.yaml, { lint: false });
    const errors = res.issues.filter((i) => i.severity === 'error');
    if (row.code === undefined) {
      assert.deepEqual(errors, [], 'expected no errors');
      assert.equal(res.policies.length, 1);
      return;
    }
    const hit = res.issues.find((i) => i.code === row.code && i.severity === (row.severity ?? 'error'));
    assert.ok(hit, `expected ${row.code}, got ${JSON.stringify(res.issues.map((i) => i.code))}`);
    assert.ok(hit.pos.line >= 1 && hit.message.length > 0);
    assert.equal(
      hit.object,
      row.yaml.includes('CiliumClusterwide') ? 'CiliumClusterwideNetworkPolicy t' : hit.object,
    );
    if ((row.severity ?? 'error') === 'error')
      assert.equal(res.policies.length, 0, 'invalid policies are left out');
  });
}

test('validate: an unquoted port number is one error, not also "port must be specified"', () => {
  const res = loadPolicyText('t.yaml', doc(ingressPorts('{port: 80, protocol: TCP}')));
  assert.deepEqual(
    res.issues.map((i) => i.code),
    ['wrong-type'],
  );
});

test('validate: empty-rule-sections message names the fix', () => {
  const res = loadPolicyText('t.yaml', doc(`{${EP}, ingress: [], egress: []}`));
  const hit = res.issues.find((i) => i.code === 'empty-rule-sections');
  assert.ok(hit);
  assert.match(hit.message, /empty list/);
  assert.match(hit.message, /ingress: \[\{\}\]/);
  assert.match(hit.message, /egress: \[\{\}\]/);
  assert.match(hit.message, /1\.18/);
  assert.equal(hit.path, 'spec.ingress');
  assert.equal(hit.pos.line, 4);
});

test('validate: positions point at the offending field', () => {
  const yaml = [
    'apiVersion: cilium.io/v2',
    'kind: CiliumNetworkPolicy',
    'metadata: {name: p, namespace: n}',
    'spec:',
    '  endpointSelector: {}',
    '  egress:',
    '    - toCIDR:',
    '        - 10.0.0.0/8',
    '        - nope',
  ].join('\n');
  const res = loadPolicyText('f.yaml', yaml);
  const hit = res.issues.find((i) => i.code === 'invalid-cidr');
  assert.ok(hit);
  assert.deepEqual(hit.pos, { file: 'f.yaml', line: 9, column: 11 });
  assert.equal(hit.path, 'spec.egress[0].toCIDR[1]');
  assert.equal(hit.object, 'CiliumNetworkPolicy n/p');
});
