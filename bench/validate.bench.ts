// Validation throughput: Seawall's loader (decode + validate + lint) against the bare cost of
// parsing the same YAML with the `yaml` package. Aim: at most 3x the parse alone.

import { parseAllDocuments, stringify } from 'yaml';
import { loadPolicyText } from '../src/policy-api/load.ts';
import { fmtBytes, fmtMs, fmtRatio, heapUsedBytes, interleaved, median, rng, table } from './lib.ts';

// SEAWALL_BENCH_POLICIES overrides the count for a quick look (a multiple of FILES).
const POLICIES = Number(process.env.SEAWALL_BENCH_POLICIES ?? 10_000);
const FILES = 100;
const RUNS = 5;

export default async function run(): Promise<void> {
  const docs = generatePolicies(POLICIES, 42);
  const oneText = docs.join('---\n');
  const perFile = POLICIES / FILES;
  const files = Array.from({ length: FILES }, (_, k) =>
    docs.slice(k * perFile, (k + 1) * perFile).join('---\n'),
  );

  const warnings = checkGenerated(oneText);

  const base = heapUsedBytes();
  const samples = await interleaved(
    {
      'yaml parse, 1 text': () => parseAllDocuments(oneText),
      'seawall load+lint, 1 text': () => loadPolicyText('bench.yaml', oneText, { lint: true }),
      'yaml parse, 100 files': () => files.map((t) => parseAllDocuments(t)),
      'seawall load+lint, 100 files': () =>
        files.map((t, k) => loadPolicyText(`bench-${k}.yaml`, t, { lint: true })),
    },
    RUNS,
  );

  const m = (name: string) => median(samples[name]!.ms);
  const rows: string[][] = [['case', 'median', 'runs', 'policies/s', 'ratio', 'allocated', 'retained']];
  for (const [name, s] of Object.entries(samples)) {
    const baseline = name.replace('seawall load+lint', 'yaml parse');
    rows.push([
      name,
      fmtMs(median(s.ms)),
      s.ms.map((x) => x.toFixed(0)).join('/'),
      Math.round(POLICIES / (median(s.ms) / 1000)).toString(),
      baseline === name ? '1.00x' : fmtRatio(median(s.ms) / m(baseline)),
      fmtBytes(s.allocatedBytes),
      fmtBytes(s.retainedBytes),
    ]);
  }
  console.log(
    `${POLICIES} policies, ${fmtBytes(oneText.length)} of YAML (${FILES} files of ${perFile}); ` +
      `${warnings} lint warnings; heap before: ${fmtBytes(base)}\n`,
  );
  console.log(table(rows));
  const r1 = m('seawall load+lint, 1 text') / m('yaml parse, 1 text');
  const r100 = m('seawall load+lint, 100 files') / m('yaml parse, 100 files');
  console.log(
    `\nratio to plain parse: ${fmtRatio(r1)} (1 text), ${fmtRatio(r100)} (100 files); aim ≤ 3x` +
      `${Math.max(r1, r100) > 3 ? '  ← above aim' : ''}`,
  );
}

/** The work must be real: every generated policy is accepted. Returns the lint warning count. */
function checkGenerated(text: string): number {
  const check = loadPolicyText('bench.yaml', text, { lint: true });
  const errors = check.issues.filter((i) => i.severity === 'error');
  if (check.policies.length !== POLICIES || errors.length > 0) {
    throw new Error(
      `generator produced ${check.policies.length} accepted policies of ${POLICIES} and ${errors.length} ` +
        `errors (first: ${errors[0]?.code ?? '-'} ${errors[0]?.message ?? ''}); fix the generator`,
    );
  }
  return check.issues.length - errors.length;
}

// ------------------------------------------------------------------ generator

const APPS = [
  'frontend',
  'backend',
  'api',
  'orders',
  'payments',
  'checkout',
  'search',
  'catalog',
  'db',
  'cache',
];
const TIERS = ['web', 'application', 'data'];
const NAMESPACES = ['production', 'staging', 'shop', 'data-processing', 'payments', 'monitoring'];
const DOMAINS = [
  'api.github.com',
  'api.stripe.com',
  'hooks.slack.com',
  'storage.googleapis.com',
  'sts.amazonaws.com',
];
const TOPICS = ['user-events', 'processed-events', 'orders', 'payments.v1', 'audit_log'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'GET|HEAD'];

/** `count` policy documents (YAML text each), varied but all valid, the same for a given seed. */
export function generatePolicies(count: number, seed: number): string[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  /** Labels of a subject, or of a peer (which may name another namespace). */
  const labels = (peer = false) => {
    const l: Record<string, string> = { app: pick(APPS) };
    if (r() < 0.4) l.tier = pick(TIERS);
    if (peer && r() < 0.2) l['k8s:io.kubernetes.pod.namespace'] = pick(NAMESPACES);
    return l;
  };
  const selector = (peer = false) =>
    r() < 0.25
      ? {
          matchLabels: { app: pick(APPS) },
          matchExpressions: [
            { key: 'tier', operator: r() < 0.5 ? 'In' : 'NotIn', values: ['web', pick(TIERS.slice(1))] },
          ],
        }
      : { matchLabels: labels(peer) };
  const tcp = (port: number) => ({ port: String(port), protocol: 'TCP' });
  const cidr = () => `10.${int(0, 255)}.${int(0, 255)}.0/24`;
  const dnsRule = () => ({
    toEndpoints: [
      { matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'kube-system', 'k8s:k8s-app': 'kube-dns' } },
    ],
    toPorts: [{ ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } }],
  });

  const kinds: Array<(name: string, ns: string) => unknown> = [
    // L3/L4 ingress
    (name, ns) =>
      cnp(name, ns, {
        endpointSelector: selector(),
        ingress: [
          {
            fromEndpoints: [selector(true), selector(true)],
            toPorts: [{ ports: [tcp(int(1, 9) * 1000), tcp(443)] }],
          },
        ],
      }),
    // HTTP
    (name, ns) =>
      cnp(name, ns, {
        endpointSelector: { matchLabels: labels() },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: labels(true) }],
            toPorts: [
              {
                ports: [tcp(8080)],
                rules: {
                  http: [
                    { method: pick(METHODS), path: `/api/v${int(1, 3)}/${pick(APPS)}/.*` },
                    { method: 'GET', path: '/healthz', headers: ['X-Request-ID'] },
                    {
                      method: 'POST',
                      path: '/api/v1/orders',
                      headerMatches: [{ name: 'X-Tenant', value: pick(NAMESPACES) }],
                    },
                  ],
                },
              },
            ],
          },
        ],
      }),
    // FQDN egress with its DNS rule
    (name, ns) =>
      cnp(name, ns, {
        endpointSelector: { matchLabels: labels() },
        egress: [
          dnsRule(),
          {
            toFQDNs: [{ matchName: pick(DOMAINS) }, { matchPattern: `*.${pick(DOMAINS)}` }],
            toPorts: [{ ports: [tcp(443)] }],
          },
        ],
      }),
    // CIDR egress
    (name, ns) =>
      cnp(name, ns, {
        endpointSelector: { matchLabels: labels() },
        egress: [
          {
            toCIDRSet: [{ cidr: '10.0.0.0/8', except: [cidr(), cidr()] }],
            toPorts: [{ ports: [tcp(5432)] }],
          },
          { toCIDR: [`192.168.${int(0, 255)}.${int(1, 254)}/32`] },
          {
            toEntities: ['world'],
            toPorts: [{ ports: [tcp(443), { port: '8000', endPort: 8100, protocol: 'TCP' }] }],
          },
        ],
      }),
    // Kafka (deprecated in 1.18, still common in real repositories)
    (name, ns) =>
      cnp(name, ns, {
        endpointSelector: { matchLabels: { app: 'kafka-client', team: pick(APPS) } },
        egress: [
          {
            toEndpoints: [{ matchLabels: { app: 'kafka-broker' } }],
            toPorts: [
              {
                ports: [tcp(9092)],
                rules: {
                  kafka: [
                    { role: 'consume', topic: pick(TOPICS) },
                    { role: 'produce', topic: pick(TOPICS) },
                  ],
                },
              },
            ],
          },
        ],
      }),
    // Cluster-wide with entities and deny
    (name) => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumClusterwideNetworkPolicy',
      metadata: { name },
      spec: {
        endpointSelector: { matchLabels: { 'k8s:io.kubernetes.pod.namespace': pick(NAMESPACES) } },
        ingress: [{ fromEntities: ['cluster', 'host'] }],
        ingressDeny: [
          { fromEntities: ['world'], toPorts: [{ ports: [tcp(22), { port: '23', protocol: 'TCP' }] }] },
        ],
      },
    }),
    // Kubernetes NetworkPolicy
    (name, ns) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace: ns },
      spec: {
        podSelector: { matchLabels: { app: pick(APPS) } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { podSelector: { matchLabels: { app: pick(APPS) } } },
              { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': pick(NAMESPACES) } } },
            ],
            ports: [{ protocol: 'TCP', port: int(1, 60) * 100 }],
          },
        ],
        egress: [
          { to: [{ ipBlock: { cidr: '172.16.0.0/12', except: ['172.16.1.0/24'] } }], ports: [{ port: 443 }] },
        ],
      },
    }),
    // Several rules in `specs`, ICMP and egress deny
    (name, ns) => ({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name, namespace: ns, labels: { team: pick(APPS) } },
      specs: [
        {
          endpointSelector: selector(),
          ingress: [{ fromEntities: ['cluster'], icmps: [{ fields: [{ type: 8, family: 'IPv4' }] }] }],
        },
        {
          endpointSelector: selector(),
          egressDeny: [{ toCIDR: [cidr()] }],
          egress: [
            { toEndpoints: [{ matchLabels: { app: pick(APPS) } }], toPorts: [{ ports: [tcp(6379)] }] },
          ],
        },
      ],
    }),
  ];

  const out: string[] = [];
  for (let k = 0; k < count; k++) {
    const make = kinds[k % kinds.length]!;
    out.push(stringify(make(`policy-${k}`, pick(NAMESPACES)), { lineWidth: 0 }));
  }
  return out;
}

function cnp(name: string, namespace: string, spec: unknown) {
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace }, spec };
}
