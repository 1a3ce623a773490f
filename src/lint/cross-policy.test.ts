import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseAllDocuments } from 'yaml';
import type { PolicyObject } from '../policy-api/types.ts';
import { crossPolicyLint } from './cross-policy.ts';

/** YAML → API-shaped objects with `pos` on every map (enough for the lint, no loader needed). */
function policies(text: string): PolicyObject[] {
  const lc = new LineCounter();
  const toJS = (n: Node | null, plain = false): unknown => {
    if (isMap(n)) {
      const { line, col } = lc.linePos(n.range?.[0] ?? 0);
      // String maps (matchLabels) carry no position in the API types.
      const o: Record<string, unknown> = plain ? {} : { pos: { file: 't.yaml', line, column: col } };
      for (const p of n.items) {
        const k = String((p.key as { value: unknown }).value);
        o[k] = toJS(p.value as Node, k === 'matchLabels');
      }
      return o;
    }
    if (isSeq(n)) return n.items.map((i) => toJS(i as Node));
    if (isScalar(n)) return n.value;
    return null;
  };
  return parseAllDocuments(text, { lineCounter: lc }).flatMap((d) =>
    d.contents ? [toJS(d.contents as Node) as PolicyObject] : [],
  );
}

const DNS_EGRESS = `
    - toEndpoints: [{matchLabels: {k8s-app: kube-dns, io.kubernetes.pod.namespace: kube-system}}]
      toPorts: [{ports: [{port: "53", protocol: ANY}], rules: {dns: [{matchPattern: "*"}]}}]`;

const cnp = (name: string, sel: string, body: string, ns = 'shop') => `---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec:
  endpointSelector: {matchLabels: ${sel}}
${body}
`;

interface Row {
  name: string;
  yaml: string;
  /** code@line:severity */
  want: string[];
}

const rows: Row[] = [
  {
    name: 'toFQDNs with DNS rule in the same rule: clean',
    yaml: cnp('a', '{app: a}', `  egress:${DNS_EGRESS}\n    - toFQDNs: [{matchName: x.example}]`),
    want: [],
  },
  {
    name: 'toFQDNs without any DNS rule',
    yaml: cnp('a', '{app: a}', '  egress:\n    - toFQDNs: [{matchName: x.example}]'),
    want: ['fqdn-without-dns-rule@8:warning'],
  },
  {
    name: 'DNS rule in another policy selecting overlapping pods',
    yaml:
      cnp('a', '{app: a}', '  egress:\n    - toFQDNs: [{matchName: x.example}]') +
      cnp('dns', '{tier: web}', `  egress:${DNS_EGRESS}`),
    want: [],
  },
  {
    name: 'DNS rule only for disjoint pods (app: b)',
    yaml:
      cnp('a', '{app: a}', '  egress:\n    - toFQDNs: [{matchName: x.example}]') +
      cnp('dns', '{app: b}', `  egress:${DNS_EGRESS}`),
    want: ['fqdn-without-dns-rule@8:warning'],
  },
  {
    name: 'DNS rule in another namespace does not count',
    yaml:
      cnp('a', '{app: a}', '  egress:\n    - toFQDNs: [{matchName: x.example}]') +
      cnp('dns', '{}', `  egress:${DNS_EGRESS}`, 'other'),
    want: ['fqdn-without-dns-rule@8:warning'],
  },
  {
    name: 'L4 allow for the same peer and port voids HTTP rules',
    yaml: cnp(
      'a',
      '{app: orders}',
      `  ingress:
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
    ),
    want: ['l7-voided-by-l4-allow@13:warning'],
  },
  {
    name: 'L4 allow for a different peer leaves HTTP rules in force',
    yaml: cnp(
      'a',
      '{app: orders}',
      `  ingress:
    - fromEndpoints: [{matchLabels: {app: other}}]
      toPorts: [{ports: [{port: "80", protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
    ),
    want: [],
  },
  {
    name: 'L4 allow on another port leaves HTTP rules in force',
    yaml: cnp(
      'a',
      '{app: orders}',
      `  ingress:
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts: [{ports: [{port: "81", protocol: TCP}]}]
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
    ),
    want: [],
  },
  {
    name: 'peerless toPorts allow (any peer) in another policy voids HTTP rules',
    yaml:
      cnp(
        'a',
        '{app: orders}',
        `  ingress:
    - fromEndpoints: [{matchLabels: {app: checkout}}]
      toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
      ) + cnp('b', '{app: orders}', '  ingress:\n    - toPorts: [{ports: [{port: "80"}]}]'),
    want: ['l7-voided-by-l4-allow@11:warning'],
  },
  {
    name: 'UDP allow does not void TCP HTTP rules',
    yaml:
      cnp(
        'a',
        '{app: orders}',
        `  ingress:
    - toPorts:
        - ports: [{port: "80", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
      ) + cnp('b', '{app: orders}', '  ingress:\n    - toPorts: [{ports: [{port: "80", protocol: UDP}]}]'),
    want: [],
  },
  {
    name: 'HTTP and Kafka on the same selector and port: error',
    yaml: cnp(
      'a',
      '{app: broker}',
      `  ingress:
    - fromEndpoints: [{matchLabels: {app: c}}]
      toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {http: [{method: GET}]}
    - fromEndpoints: [{matchLabels: {app: c}}]
      toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {kafka: [{topic: t}]}`,
    ),
    want: ['conflicting-l7-parsers@15:error'],
  },
  {
    name: 'HTTP and Kafka for different peers: fine',
    yaml: cnp(
      'a',
      '{app: broker}',
      `  ingress:
    - fromEndpoints: [{matchLabels: {app: c}}]
      toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {http: [{method: GET}]}
    - fromEndpoints: [{matchLabels: {app: d}}]
      toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {kafka: [{topic: t}]}`,
    ),
    want: [],
  },
  {
    name: 'HTTP and Kafka, overlapping but different subjects: warning',
    yaml:
      cnp(
        'a',
        '{app: broker}',
        `  ingress:
    - toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {http: [{method: GET}]}`,
      ) +
      cnp(
        'b',
        '{tier: data}',
        `  ingress:
    - toPorts:
        - ports: [{port: "9092", protocol: TCP}]
          rules: {kafka: [{topic: t}]}`,
      ),
    want: ['conflicting-l7-parsers@20:warning'],
  },
];

for (const row of rows) {
  test(`crossPolicyLint: ${row.name}`, () => {
    const got = crossPolicyLint(policies(row.yaml)).map((i) => `${i.code}@${i.pos.line}:${i.severity}`);
    assert.deepEqual(got, row.want);
  });
}
