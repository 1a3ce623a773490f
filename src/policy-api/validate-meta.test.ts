// Item 10: what the Kubernetes API server (or Cilium) refuses, `validate` refuses: object names,
// namespaces, label keys and values, unknown YAML tags; each with a stable code at file:line:col.
// Also the wording of type errors for numbers YAML reads oddly (`1e400`, `0x1F`).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPolicyText } from './load.ts';

const CNP = 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy';
const CCNP = 'apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy';
const KNP = 'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy';

/** Line 3 is metadata, line 4 the spec: `{head}\nmetadata: {meta}\nspec: {spec}`. */
const cnp = (meta: string, spec = '{endpointSelector: {}, ingress: [{}]}', head = CNP) =>
  `${head}\nmetadata: ${meta}\nspec: ${spec}\n`;
const sel = (s: string) => `{endpointSelector: ${s}, ingress: [{}]}`;
const knp = (meta: string, podSelector = '{}') =>
  `${KNP}\nmetadata: ${meta}\nspec: {podSelector: ${podSelector}, policyTypes: [Ingress]}\n`;

interface Row {
  name: string;
  yaml: string;
  /** Expected errors as `code line:col`; [] = valid. */
  errors: string[];
  /** A fragment of the first error's message. */
  message?: RegExp;
}

const long = (n: number, c = 'a') => c.repeat(n);

const rows: Row[] = [
  // metadata.name: DNS-1123 subdomain
  {
    name: 'item 10: name Foo_Bar',
    yaml: cnp('{name: Foo_Bar, namespace: n}'),
    errors: ['invalid-name 3:18'],
    message:
      /metadata\.name "Foo_Bar" is not a valid CiliumNetworkPolicy name: it must consist of lower-case/,
  },
  {
    name: 'item 10: name with a space',
    yaml: cnp('{name: "a b", namespace: n}'),
    errors: ['invalid-name 3:18'],
  },
  {
    name: 'item 10: name of 300 characters',
    yaml: cnp(`{name: ${long(300)}, namespace: n}`),
    errors: ['invalid-name 3:18'],
    message: /is 300 characters long; the maximum is 253/,
  },
  {
    name: 'item 10: name with a NUL',
    yaml: cnp('{name: "a\\0b", namespace: n}'),
    errors: ['invalid-name 3:18'],
    message: /"a\\u0000b"/,
  },
  {
    name: 'item 10: name with an empty label',
    yaml: cnp('{name: a..b, namespace: n}'),
    errors: ['invalid-name 3:18'],
  },
  {
    name: 'item 10: CCNP name upper case',
    yaml: cnp('{name: Allow}', '{endpointSelector: {}, ingress: [{}]}', CCNP),
    errors: ['invalid-name 3:18'],
  },
  {
    name: 'item 10: KNP name with underscore',
    yaml: knp('{name: a_b, namespace: n}'),
    errors: ['invalid-name 3:18'],
  },
  {
    name: 'name of 253 characters with dots',
    yaml: cnp(`{name: ${long(63)}.${long(63)}.${long(63)}.${long(61)}, namespace: n}`),
    errors: [],
  },
  // metadata.namespace: DNS-1123 label
  {
    name: 'item 10: namespace Shop NS',
    yaml: cnp('{name: a, namespace: Shop NS}'),
    errors: ['invalid-namespace 3:32'],
    message: /metadata\.namespace "Shop NS" is not a valid namespace/,
  },
  {
    name: 'item 10: namespace of 64 characters',
    yaml: cnp(`{name: a, namespace: ${long(64)}}`),
    errors: ['invalid-namespace 3:32'],
  },
  {
    name: 'item 10: namespace with a dot',
    yaml: knp('{name: a, namespace: a.b}'),
    errors: ['invalid-namespace 3:32'],
  },
  // metadata.labels
  {
    name: 'item 10: metadata.labels key bad key!',
    yaml: cnp('{name: a, namespace: n, labels: {"bad key!": x}}'),
    errors: ['invalid-label-key 3:44'],
    message: /metadata\.labels key "bad key!" must consist of/,
  },
  {
    name: 'item 10: metadata.labels value with a space',
    yaml: cnp('{name: a, namespace: n, labels: {team: "a b"}}'),
    errors: ['invalid-label-value 3:50'],
  },
  {
    name: 'item 10: metadata.labels prefixed key',
    yaml: cnp('{name: a, namespace: n, labels: {"app.kubernetes.io/name": web, "x/": y}}'),
    errors: ['invalid-label-key 3:75'],
    message: /"x\/" has an empty name/,
  },
  // selectors in CNP: source prefixes are fine, the rest is a Kubernetes label key
  {
    name: 'item 10: matchLabels key bad key!',
    yaml: cnp('{name: a, namespace: n}', sel('{matchLabels: {"bad key!": x}}')),
    errors: ['invalid-label-key 4:41'],
  },
  {
    name: 'item 10: matchLabels value bad value!',
    yaml: cnp('{name: a, namespace: n}', sel('{matchLabels: {app: "bad value!"}}')),
    errors: ['invalid-label-value 4:46'],
  },
  {
    name: 'item 10: matchLabels value of 64 characters',
    yaml: cnp('{name: a, namespace: n}', sel(`{matchLabels: {app: ${long(64)}}}`)),
    errors: ['invalid-label-value 4:46'],
  },
  {
    name: 'item 10: matchExpressions key bad key!',
    yaml: cnp('{name: a, namespace: n}', sel('{matchExpressions: [{key: "bad key!", operator: Exists}]}')),
    errors: ['invalid-label-key 4:52'],
  },
  {
    name: 'item 10: matchExpressions value bad value!',
    yaml: cnp(
      '{name: a, namespace: n}',
      sel('{matchExpressions: [{key: app, operator: In, values: [ok, "bad value!"]}]}'),
    ),
    errors: ['invalid-label-value 4:79'],
  },
  {
    name: 'item 10: fromEndpoints key with two slashes',
    yaml: cnp(
      '{name: a, namespace: n}',
      '{endpointSelector: {}, ingress: [{fromEndpoints: [{matchLabels: {"a/b/c": x}}]}]}',
    ),
    errors: ['invalid-label-key 4:72'],
  },
  {
    name: 'source prefixes and Cilium keys are valid',
    yaml: cnp(
      '{name: a, namespace: n}',
      sel(
        '{matchLabels: {"k8s:app": web, "reserved:host": "", "io.kubernetes.pod.namespace": n, "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name": n, "any:team": ""}}',
      ),
    ),
    errors: [],
  },
  {
    name: 'item 10: a key at 63 characters is too long once Cilium adds any.',
    yaml: cnp('{name: a, namespace: n}', sel(`{matchLabels: {${long(63)}: x}}`)),
    errors: ['invalid-label-key 4:41'],
    message: /Cilium checks it as "any\.a+"/,
  },
  // KNP selectors take plain Kubernetes keys: no source prefixes
  {
    name: 'item 10: KNP podSelector key bad key!',
    yaml: knp('{name: a, namespace: n}', '{matchLabels: {"bad key!": x}}'),
    errors: ['invalid-label-key 4:36'],
  },
  {
    name: 'item 10: KNP podSelector key with a source prefix',
    yaml: knp('{name: a, namespace: n}', '{matchLabels: {"k8s:app": x}}'),
    errors: ['invalid-label-key 4:36'],
  },
  // YAML tags
  {
    name: 'item 10: tag !!js/function',
    yaml: cnp('{name: a, namespace: !!js/function "n"}'),
    errors: ['unknown-yaml-tag 3:32'],
    message: /unknown YAML tag !!js\/function/,
  },
  {
    name: 'item 10: tag !foo',
    yaml: cnp('{name: !foo a, namespace: n}'),
    errors: ['unknown-yaml-tag 3:18'],
    message: /unknown YAML tag !foo/,
  },
  // policy.seawall.dev/audit-mode: "true" | "false", anything else refused where it is written
  {
    name: 'audit-mode "true"',
    yaml: cnp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: "true"}}'),
    errors: [],
  },
  {
    name: 'audit-mode "false"',
    yaml: cnp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: "false"}}'),
    errors: [],
  },
  {
    name: 'audit-mode "yes" on a CNP',
    yaml: cnp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: "yes"}}'),
    errors: ['invalid-audit-mode 3:80'],
    message:
      /metadata\.annotations policy\.seawall\.dev\/audit-mode is "yes": it must be "true" \(audit: denials pass, reported AUDIT\) or "false"/,
  },
  {
    name: 'audit-mode "True" (case matters, as Kubernetes booleans in strings do not fold)',
    yaml: cnp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: "True"}}'),
    errors: ['invalid-audit-mode 3:80'],
  },
  {
    name: 'audit-mode "" on a CCNP',
    yaml: cnp('{name: a, annotations: {policy.seawall.dev/audit-mode: ""}}', undefined, CCNP),
    errors: ['invalid-audit-mode 3:66'],
  },
  {
    name: 'audit-mode "on" on a KNP',
    yaml: knp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: "on"}}'),
    errors: ['invalid-audit-mode 3:80'],
  },
  {
    name: 'audit-mode unquoted true: annotations are strings',
    yaml: cnp('{name: a, namespace: n, annotations: {policy.seawall.dev/audit-mode: true}}'),
    errors: ['wrong-type 3:80'],
    message: /must be a string: YAML reads the unquoted true as a boolean/,
  },
  {
    name: 'standard tags !!str and !!map are fine',
    yaml: cnp('!!map {name: !!str a, namespace: !!str n}'),
    errors: [],
  },
];

for (const row of rows) {
  test(`validate metadata: ${row.name}`, () => {
    const res = loadPolicyText('p.yaml', row.yaml);
    const errors = res.issues.filter((i) => i.severity === 'error');
    assert.deepEqual(
      errors.map((i) => `${i.code} ${i.pos.line}:${i.pos.column}`),
      row.errors,
      JSON.stringify(errors.map((i) => i.message)),
    );
    if (row.message) assert.match(errors[0]!.message, row.message);
    assert.equal(res.policies.length, row.errors.length === 0 ? 1 : 0);
  });
}

// wording: a type error quotes what was written, and says what is wrong with it.
const PORT = (v: string) =>
  cnp(
    '{name: a, namespace: n}',
    `{endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: ${v}, protocol: TCP}]}]}]}`,
  );
const wordingRows: Array<{ name: string; yaml: string; message: string }> = [
  {
    name: 'wording: port 1e400 is out of range, not "Infinity"',
    yaml: PORT('1e400'),
    message:
      'spec.ingress[0].toPorts[0].ports[0].port: 1e400 is not a number Kubernetes accepts: it is beyond the range of every JSON number type, whose largest is about 1.8e308; this field takes a string',
  },
  {
    name: 'wording: port .inf',
    yaml: PORT('.inf'),
    message:
      'spec.ingress[0].toPorts[0].ports[0].port: .inf is not a number Kubernetes accepts: YAML reads it as infinity, which JSON has no number for; this field takes a string',
  },
  {
    name: 'wording: port 0x1F is quoted as written, not as 31',
    yaml: PORT('0x1F'),
    message:
      'spec.ingress[0].toPorts[0].ports[0].port must be a string: YAML reads the unquoted 0x1F as a number; write it in quotes: "0x1F"',
  },
  {
    name: 'wording: port 80',
    yaml: PORT('80'),
    message:
      'spec.ingress[0].toPorts[0].ports[0].port must be a string: YAML reads the unquoted 80 as a number; write it in quotes: "80"',
  },
  {
    name: 'wording: a label value of 20 digits keeps its digits',
    yaml: cnp('{name: a, namespace: n, labels: {id: 12345678901234567890}}'),
    message:
      'metadata.labels.id: 12345678901234567890 is not a number Kubernetes accepts: it has more digits than a number keeps exactly and would read as 12345678901234567000; this field takes a string',
  },
  {
    name: 'wording: endPort 1e400',
    yaml: cnp(
      '{name: a, namespace: n}',
      '{endpointSelector: {}, ingress: [{toPorts: [{ports: [{port: "80", endPort: 1e400, protocol: TCP}]}]}]}',
    ),
    message:
      'spec.ingress[0].toPorts[0].ports[0].endPort must be an integer, not the number 1e400, which is not a number Kubernetes accepts: it is beyond the range of every JSON number type, whose largest is about 1.8e308',
  },
];
for (const row of wordingRows) {
  test(`validate ${row.name}`, () => {
    const res = loadPolicyText('p.yaml', row.yaml);
    assert.deepEqual(
      res.issues.filter((i) => i.code === 'wrong-type').map((i) => i.message),
      [row.message],
    );
  });
}
