import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyObject } from '../policy-api/types.ts';
import { ccnp, cnp, engineWith, ext, flow, get, knp, pod } from './testutil.ts';
import type { EndpointSpec, EngineConfig, L7Request } from './types.ts';

type Expect = 'allow' | 'POLICY_DENIED' | 'POLICY_DENY' | 'L7_DENIED';
type FlowRow = [from: string, to: string, what: string, expect: Expect, l7?: L7Request];

interface Scenario {
  name: string;
  eps?: EndpointSpec[];
  policies: PolicyObject[];
  config?: Partial<EngineConfig>;
  namespaces?: Record<string, Record<string, string>>;
  flows: FlowRow[];
}

const EPS: EndpointSpec[] = [
  pod('shop/web', { app: 'web' }, '10.0.1.1', { ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }),
  pod('shop/api', { app: 'api' }, '10.0.1.2', { ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] }),
  pod('shop/db', { app: 'db' }, '10.0.1.3'),
  pod('billing/web', { app: 'web' }, '10.0.2.1'),
  pod('billing/pay', { app: 'pay' }, '10.0.2.2'),
  ext('github', '140.82.112.5'),
  ext('corp', '192.168.5.5'),
  ext('secret', '192.168.100.7'),
];

const toApi = (spec: Record<string, unknown>) =>
  cnp('shop', 'api-in', { endpointSelector: { matchLabels: { app: 'api' } }, ...spec });

const SCENARIOS: Scenario[] = [
  // ---------------------------------------------------------------- namespace scoping
  {
    name: 'CNP fromEndpoints {} means own namespace only',
    policies: [toApi({ ingress: [{ fromEndpoints: [{}] }] })],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow'],
      ['billing/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['github', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'CNP endpointSelector naming another namespace is overwritten',
    policies: [
      cnp('shop', 'x', {
        endpointSelector: { matchLabels: { app: 'web', 'k8s:io.kubernetes.pod.namespace': 'billing' } },
        ingress: [{}],
      }),
    ],
    flows: [
      ['shop/db', 'shop/web', '80/TCP', 'POLICY_DENIED'],
      ['shop/db', 'billing/web', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'CNP peer naming the namespace key crosses namespaces',
    policies: [
      toApi({
        ingress: [{ fromEndpoints: [{ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'billing' } }] }],
      }),
    ],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'CCNP fromEndpoints {} means all pods of all namespaces, not world',
    policies: [
      ccnp('all-pods', {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [{ fromEndpoints: [{}] }],
      }),
    ],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['github', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['host', 'shop/api', '80/TCP', 'allow'], // allow-localhost, not the selector
      ['remote-node', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'CCNP endpointSelector {} selects every namespace',
    policies: [ccnp('lock', { endpointSelector: {}, ingress: [{}] })],
    flows: [
      ['shop/web', 'billing/pay', '80/TCP', 'POLICY_DENIED'],
      ['billing/pay', 'shop/web', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'namespace-label selector in a CNP is not namespace-scoped',
    namespaces: { billing: { team: 'money' } },
    policies: [
      toApi({
        ingress: [
          { fromEndpoints: [{ matchLabels: { 'k8s:io.cilium.k8s.namespace.labels.team': 'money' } }] },
        ],
      }),
    ],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- KNP
  {
    name: 'KNP namespaceSelector AND podSelector',
    namespaces: { billing: { team: 'money' }, shop: { team: 'retail' } },
    policies: [
      knp('shop', 'k', {
        podSelector: { matchLabels: { app: 'api' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { team: 'money' } },
                podSelector: { matchLabels: { app: 'web' } },
              },
            ],
          },
        ],
      }),
    ],
    flows: [
      ['billing/web', 'shop/api', '80/TCP', 'allow'],
      ['billing/pay', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'KNP namespaceSelector {} selects all pods',
    policies: [
      knp('shop', 'k', {
        podSelector: { matchLabels: { app: 'api' } },
        ingress: [{ from: [{ namespaceSelector: {} }] }],
      }),
    ],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['github', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'KNP ingress [{}] allows everything, ICMP and world included',
    policies: [knp('shop', 'k', { podSelector: {}, ingress: [{}] })],
    flows: [
      ['github', 'shop/api', '443/TCP', 'allow'],
      ['billing/pay', 'shop/api', 'ICMP', 'allow'],
    ],
  },
  {
    name: 'KNP without ingress rules denies all ingress',
    policies: [knp('shop', 'k', { podSelector: { matchLabels: { app: 'api' } } })],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['shop/api', 'shop/web', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'KNP policyTypes Egress only: egress deny-all, ingress untouched',
    policies: [knp('shop', 'k', { podSelector: { matchLabels: { app: 'api' } }, policyTypes: ['Egress'] })],
    flows: [
      ['shop/api', 'shop/web', '80/TCP', 'POLICY_DENIED'],
      ['shop/web', 'shop/api', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'KNP ports default to TCP; endPort; ipBlock except',
    policies: [
      knp('shop', 'k', {
        podSelector: { matchLabels: { app: 'api' } },
        policyTypes: ['Egress'],
        egress: [
          {
            to: [{ ipBlock: { cidr: '192.168.0.0/16', except: ['192.168.100.0/24'] } }],
            ports: [{ port: 5432, endPort: 5440 }],
          },
        ],
      }),
    ],
    flows: [
      ['shop/api', 'corp', '5432/TCP', 'allow'],
      ['shop/api', 'corp', '5440/TCP', 'allow'],
      ['shop/api', 'corp', '5441/TCP', 'POLICY_DENIED'],
      ['shop/api', 'corp', '5432/UDP', 'POLICY_DENIED'],
      ['shop/api', 'secret', '5432/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- entities
  {
    name: 'entity cluster: pods of every namespace and node identities, not world',
    policies: [toApi({ ingress: [{ fromEntities: ['cluster'] }] })],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['remote-node', 'shop/api', '80/TCP', 'allow'],
      ['kube-apiserver', 'shop/api', '80/TCP', 'allow'],
      ['github', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'entity world: outside addresses only',
    policies: [toApi({ ingress: [{ fromEntities: ['world'] }] })],
    flows: [
      ['github', 'shop/api', '80/TCP', 'allow'],
      ['8.8.8.8', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'entity all: everything; remote-node only remote nodes',
    policies: [
      toApi({
        ingress: [{ fromEntities: ['all'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
      }),
      cnp('shop', 'w', {
        endpointSelector: { matchLabels: { app: 'web' } },
        egress: [{ toEntities: ['remote-node'] }],
      }),
    ],
    flows: [
      ['github', 'shop/api', '80/TCP', 'allow'],
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['billing/pay', 'shop/api', '81/TCP', 'POLICY_DENIED'],
      ['shop/web', 'remote-node', '10250/TCP', 'allow'],
      ['shop/web', 'host', '10250/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- CIDR
  {
    name: 'CIDR never selects pods even inside the prefix',
    policies: [toApi({ ingress: [{ fromCIDR: ['10.0.0.0/8'] }] })],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['10.9.9.9', 'shop/api', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'CIDRSet except carves out; another entry may allow the hole',
    policies: [
      cnp('shop', 'e', {
        endpointSelector: { matchLabels: { app: 'db' } },
        egress: [
          { toCIDRSet: [{ cidr: '192.168.0.0/16', except: ['192.168.100.0/24'] }] },
          { toCIDR: ['192.168.100.7/32'], toPorts: [{ ports: [{ port: '22', protocol: 'TCP' }] }] },
        ],
      }),
    ],
    flows: [
      ['shop/db', 'corp', '5432/TCP', 'allow'],
      ['shop/db', 'secret', '5432/TCP', 'POLICY_DENIED'],
      ['shop/db', 'secret', '22/TCP', 'allow'],
      ['shop/db', '192.168.100.8', '22/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'deny with except: excepted addresses are not denied (allow decides)',
    policies: [
      cnp('shop', 'e', {
        endpointSelector: { matchLabels: { app: 'db' } },
        egress: [{ toEntities: ['world'] }],
        egressDeny: [{ toCIDRSet: [{ cidr: '192.168.0.0/16', except: ['192.168.100.0/24'] }] }],
      }),
    ],
    flows: [
      ['shop/db', 'corp', '80/TCP', 'POLICY_DENY'],
      ['shop/db', 'secret', '80/TCP', 'allow'],
      ['shop/db', 'github', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'CIDR 0.0.0.0/0 equals world',
    policies: [toApi({ ingress: [{ fromCIDR: ['0.0.0.0/0'] }] })],
    flows: [
      ['8.8.8.8', 'shop/api', '80/TCP', 'allow'],
      ['github', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- ports
  {
    name: 'ports: ranges, port 0, ANY, named, ICMP',
    policies: [
      toApi({
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [{ ports: [{ port: '8000', endPort: 8010, protocol: 'TCP' }] }],
          },
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [{ ports: [{ port: '0', protocol: 'UDP' }] }],
          },
          { fromEndpoints: [{ matchLabels: { app: 'db' } }], toPorts: [{ ports: [{ port: '53' }] }] },
          {
            fromEndpoints: [{ matchLabels: { app: 'db' } }],
            toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }],
          },
          { fromEndpoints: [{ matchLabels: { app: 'db' } }], icmps: [{ fields: [{ type: 'EchoRequest' }] }] },
          {
            fromEndpoints: [{ matchLabels: { app: 'db' } }],
            toPorts: [{ ports: [{ port: '7000', endPort: 6000, protocol: 'TCP' }] }],
          },
        ],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '8000/TCP', 'allow'],
      ['shop/web', 'shop/api', '8010/TCP', 'allow'],
      ['shop/web', 'shop/api', '8011/TCP', 'POLICY_DENIED'],
      ['shop/web', 'shop/api', '31337/UDP', 'allow'],
      ['shop/web', 'shop/api', 'ICMP', 'POLICY_DENIED'],
      ['shop/db', 'shop/api', '53/UDP', 'allow'],
      ['shop/db', 'shop/api', '53/TCP', 'allow'],
      ['shop/db', 'shop/api', '53/SCTP', 'allow'],
      ['shop/db', 'shop/api', '9090/TCP', 'allow'],
      ['shop/db', 'shop/api', '8080/TCP', 'POLICY_DENIED'],
      ['shop/db', 'shop/api', 'ICMP', 'allow'],
      ['shop/db', 'shop/api', 'ICMP:0', 'POLICY_DENIED'],
      ['shop/db', 'shop/api', '7000/TCP', 'allow'],
      ['shop/db', 'shop/api', '6500/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'L3-only allow admits ICMP and every protocol',
    policies: [toApi({ ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }] })],
    flows: [
      ['shop/web', 'shop/api', 'ICMP', 'allow'],
      ['shop/web', 'shop/api', '1/SCTP', 'allow'],
    ],
  },
  {
    name: 'egress named port resolves on the peer pod',
    policies: [
      cnp('shop', 'e', {
        endpointSelector: { matchLabels: { app: 'db' } },
        egress: [{ toEndpoints: [{}], toPorts: [{ ports: [{ port: 'http', protocol: 'TCP' }] }] }],
      }),
    ],
    flows: [
      ['shop/db', 'shop/web', '8080/TCP', 'allow'],
      ['shop/db', 'shop/web', '9090/TCP', 'POLICY_DENIED'],
      ['shop/db', 'shop/api', '9090/TCP', 'allow'],
      ['shop/db', 'shop/api', '8080/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- denies and default deny
  {
    name: 'deny range beats allow; L3 deny beats L4 allow',
    policies: [
      toApi({
        ingress: [
          {
            fromEndpoints: [{}],
            toPorts: [
              {
                ports: [
                  { port: '80', protocol: 'TCP' },
                  { port: '9000', protocol: 'TCP' },
                ],
              },
            ],
          },
        ],
        ingressDeny: [
          { fromEndpoints: [{ matchLabels: { app: 'db' } }] },
          { toPorts: [{ ports: [{ port: '1', endPort: 1024, protocol: 'TCP' }] }] },
        ],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENY'],
      ['shop/web', 'shop/api', '9000/TCP', 'allow'],
      ['shop/db', 'shop/api', '9000/TCP', 'POLICY_DENY'],
    ],
  },
  {
    name: 'deny-only policy enables default deny',
    policies: [
      toApi({
        ingressDeny: [{ fromEndpoints: [{}], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENY'],
      ['shop/web', 'shop/api', '81/TCP', 'POLICY_DENIED'],
      ['shop/web', 'shop/api', 'ICMP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'enableDefaultDeny false: implicit allow-all below denies',
    policies: [
      toApi({
        enableDefaultDeny: { ingress: false },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'db' } }] }],
      }),
    ],
    flows: [
      ['billing/pay', 'shop/api', '80/TCP', 'allow'],
      ['shop/db', 'shop/api', '80/TCP', 'POLICY_DENY'],
    ],
  },
  {
    name: 'enableDefaultDeny false in one rule, another rule keeps default deny',
    policies: [
      toApi({
        enableDefaultDeny: { ingress: false },
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }],
      }),
      cnp('shop', 'other', { endpointSelector: { matchLabels: { app: 'api' } }, ingress: [{}] }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow'],
      ['shop/db', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'ingress: [] does not enforce; ingress: [{}] does and allows nothing; fromEndpoints: [] allows nothing',
    policies: [
      toApi({
        ingress: [],
        egress: [{ toEndpoints: [], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow'],
      ['shop/api', 'shop/web', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'toPorts without peer is any peer incl. world',
    policies: [toApi({ ingress: [{ toPorts: [{ ports: [{ port: '443', protocol: 'TCP' }] }] }] })],
    flows: [
      ['github', 'shop/api', '443/TCP', 'allow'],
      ['billing/pay', 'shop/api', '443/TCP', 'allow'],
      ['billing/pay', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  // ---------------------------------------------------------------- enforcement modes
  {
    name: 'mode always: default deny without policies; host still allowed in',
    config: { enforcementMode: 'always' },
    policies: [],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['host', 'shop/api', '80/TCP', 'allow'],
      ['shop/api', 'host', '80/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'mode never: even denies are ignored',
    config: { enforcementMode: 'never' },
    policies: [toApi({ ingressDeny: [{ fromEndpoints: [{}] }] })],
    flows: [['shop/web', 'shop/api', '80/TCP', 'allow']],
  },
  {
    name: 'egress and ingress both must allow',
    policies: [
      toApi({ ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }] }),
      cnp('shop', 'web-out', {
        endpointSelector: { matchLabels: { app: 'web' } },
        egress: [{ toEndpoints: [{ matchLabels: { app: 'db' } }] }],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['shop/web', 'shop/db', '80/TCP', 'allow'],
    ],
  },
  // ---------------------------------------------------------------- L7 merge (l4_filter cases)
  {
    name: 'case 2: same selector, L4-only and HTTP on the same port: all allowed',
    policies: [
      toApi({
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
          },
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [
              { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/' }] } },
            ],
          },
        ],
      }),
    ],
    flows: [['shop/web', 'shop/api', '80/TCP', 'allow', { kind: 'http', method: 'POST', path: '/x' }]],
  },
  {
    name: 'case 7: wildcard peer L4-only + specific peer with L7: everything allowed',
    policies: [
      toApi({
        ingress: [
          { toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] },
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [
              { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/' }] } },
            ],
          },
        ],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow', { kind: 'http', method: 'POST', path: '/x' }],
      ['shop/db', 'shop/api', '80/TCP', 'allow', { kind: 'http', method: 'POST', path: '/x' }],
    ],
  },
  {
    name: 'same selector and port, two HTTP rule lists: union',
    policies: [
      toApi({
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [
              { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/a' }] } },
            ],
          },
        ],
      }),
      cnp('shop', 'more', {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [
              { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/b' }] } },
            ],
          },
        ],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow', get('/a')],
      ['shop/web', 'shop/api', '80/TCP', 'allow', get('/b')],
      ['shop/web', 'shop/api', '80/TCP', 'L7_DENIED', get('/c')],
      ['shop/web', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '81/TCP', 'POLICY_DENIED'],
    ],
  },
  {
    name: 'L7 with enableDefaultDeny false gets an implicit L7 allow-all (1.18)',
    policies: [
      toApi({
        enableDefaultDeny: { ingress: false },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [
              { ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/a' }] } },
            ],
          },
        ],
      }),
    ],
    flows: [['shop/web', 'shop/api', '80/TCP', 'allow', get('/zzz')]],
  },
  {
    name: 'different selectors with different L7 parsers on one port are fine',
    policies: [
      toApi({
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'web' } }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [{ path: '/a' }] } }],
          },
          {
            fromEndpoints: [{ matchLabels: { app: 'db' } }],
            toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { kafka: [{ topic: 't' }] } }],
          },
        ],
      }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'allow', get('/a')],
      ['shop/web', 'shop/api', '80/TCP', 'L7_DENIED', get('/b')],
      [
        'shop/db',
        'shop/api',
        '80/TCP',
        'allow',
        { kind: 'kafka', apiKey: 0, apiVersion: 0, clientID: '', topics: ['t'] },
      ],
    ],
  },
  {
    // Cilium ≤1.18 (§13): fromRequires ANDs into the fromEndpoints of every rule selecting the
    // endpoint (not namespace-scoped; CIDR/entity peers untouched); it grants nothing itself.
    name: 'fromRequires restricts fromEndpoints of every selecting rule',
    eps: [...EPS, pod('shop/web2', { app: 'web', env: 'prod' }, '10.0.1.4')],
    policies: [
      toApi({ ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }] }, { fromEntities: ['world'] }] }),
      cnp('shop', 'req', {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [{ fromRequires: [{ matchLabels: { env: 'prod' } }] }],
      }),
    ],
    flows: [
      ['shop/web2', 'shop/api', '80/TCP', 'allow'],
      ['shop/web', 'shop/api', '80/TCP', 'POLICY_DENIED'],
      ['github', 'shop/api', '80/TCP', 'allow'],
    ],
  },
  {
    name: 'toRequires of an allow rule does not narrow deny rules',
    eps: [...EPS, pod('shop/web2', { app: 'web', env: 'prod' }, '10.0.1.4')],
    policies: [
      cnp('shop', 'eg', {
        endpointSelector: { matchLabels: { app: 'db' } },
        egress: [{ toEndpoints: [{}], toRequires: [{ matchLabels: { env: 'prod' } }] }],
        egressDeny: [
          { toEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: '81' }] }] },
        ],
      }),
    ],
    flows: [
      ['shop/db', 'shop/web2', '80/TCP', 'allow'],
      ['shop/db', 'shop/web', '80/TCP', 'POLICY_DENIED'],
      ['shop/db', 'shop/web2', '81/TCP', 'POLICY_DENY'],
      ['shop/db', 'shop/api', '80/TCP', 'POLICY_DENIED'],
    ],
  },
];

for (const s of SCENARIOS) {
  test(s.name, () => {
    const eps = s.eps ?? EPS;
    const e = engineWith(eps, s.policies, s.config, s.namespaces);
    for (const [from, to, what, want, l7] of s.flows) {
      const v = e.decide(flow(from, to, what, eps, l7));
      const got: Expect = v.allowed ? 'allow' : (v.reason ?? 'POLICY_DENIED');
      assert.equal(got, want, `${from} → ${to} ${what}${l7 ? ' +L7' : ''}\n  ${v.explanation.join('\n  ')}`);
    }
  });
}
