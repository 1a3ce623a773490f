// Audit mode in the engine: a policy annotated policy.seawall.dev/audit-mode: "true", or an endpoint
// in PolicyAuditMode, turns its denials (deny rules, the default deny it brings) into AUDIT
// verdicts; other policies keep enforcing (the precedence is written down in decide.ts).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PolicyObject } from '../policy-api/types.ts';
import { AUDIT_MODE_ANNOTATION } from '../policy-api/validate-meta.ts';
import { explainEndpointPolicy } from './explain.ts';
import { LOOKUP } from './mapstate.ts';
import { ccnp, cnp, engineWith, ext, flow, get, knp, pod, snapshot } from './testutil.ts';
import type { EndpointSpec, EngineConfig, L7Request, Verdict } from './types.ts';

const EPS: EndpointSpec[] = [
  pod('shop/web', { app: 'web' }, '10.0.1.1'),
  pod('shop/api', { app: 'api' }, '10.0.1.2'),
  pod('shop/db', { app: 'db' }, '10.0.1.3'),
  pod('shop/dns', { app: 'dns' }, '10.0.1.53'),
  ext('github', '140.82.112.5'),
  ext('other', '203.0.113.9'),
];

function audited(p: PolicyObject, value = 'true'): PolicyObject {
  p.metadata.annotations = { ...p.metadata.annotations, [AUDIT_MODE_ANNOTATION]: value };
  return p;
}

const api = (name: string, spec: Record<string, unknown>) =>
  cnp('shop', name, { endpointSelector: { matchLabels: { app: 'api' } }, ...spec });
const web = (name: string, spec: Record<string, unknown>) =>
  cnp('shop', name, { endpointSelector: { matchLabels: { app: 'web' } }, ...spec });
const fromWeb = { fromEndpoints: [{ matchLabels: { app: 'web' } }] };
const fromDb = { fromEndpoints: [{ matchLabels: { app: 'db' } }] };
const port = (p: string, proto = 'TCP') => ({ toPorts: [{ ports: [{ port: p, protocol: proto }] }] });

/**
 * Expected outcome: `FORWARDED`, `DROPPED <reason>`, or `AUDIT <reason> <policy>[,<policy>]`
 * (the policies the audited direction names as the ones that would have denied).
 */
type Want = string;
type FlowRow = [from: string, to: string, what: string, want: Want, l7?: L7Request];

interface Row {
  name: string;
  policies: PolicyObject[];
  config?: Partial<EngineConfig>;
  /** Endpoints put in PolicyAuditMode (endpoint config) after the policies are in. */
  auditEndpoints?: string[];
  dns?: Array<[name: string, ips: string[]]>;
  flows: FlowRow[];
}

const ROWS: Row[] = [
  {
    name: 'audited explicit deny: passes as AUDIT naming the deny',
    policies: [
      api('allow-web', { ingress: [fromWeb] }),
      audited(api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('80') }] })),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'AUDIT POLICY_DENY deny-web'],
      ['shop/web', 'shop/api', '81/TCP', 'FORWARDED'],
      ['shop/db', 'shop/api', '80/TCP', 'DROPPED POLICY_DENIED'],
    ],
  },
  {
    name: 'audited default deny alone: what no rule allows passes as AUDIT',
    policies: [audited(api('allow-web', { ingress: [{ ...fromWeb, ...port('80') }] }))],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED'],
      ['shop/web', 'shop/api', '81/TCP', 'AUDIT POLICY_DENIED allow-web'],
      ['shop/db', 'shop/api', '80/TCP', 'AUDIT POLICY_DENIED allow-web'],
    ],
  },
  {
    name: 'audited default deny with an enforcing policy also selecting: the enforcing default deny drops',
    policies: [
      audited(api('audit-web', { ingress: [{ ...fromWeb, ...port('80') }] })),
      api('enforce-db', { ingress: [{ ...fromDb, ...port('5432') }] }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED'],
      ['shop/db', 'shop/api', '5432/TCP', 'FORWARDED'],
      ['shop/web', 'shop/api', '81/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/db', 'shop/api', '80/TCP', 'DROPPED POLICY_DENIED'],
    ],
  },
  {
    name: 'both audited: every policy drop is AUDIT, both policies named',
    policies: [
      audited(api('audit-a', { ingress: [{ ...fromWeb, ...port('80') }] })),
      audited(api('audit-b', { ingress: [{ ...fromDb, ...port('5432') }] })),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED'],
      ['shop/web', 'shop/api', '5432/TCP', 'AUDIT POLICY_DENIED audit-a,audit-b'],
    ],
  },
  {
    name: 'enforcing deny beats an audited allow-all and an audited deny',
    policies: [
      audited(api('audit-all', { ingress: [{ fromEntities: ['all'] }], ingressDeny: [fromWeb] })),
      api('deny-web-80', { ingressDeny: [{ ...fromWeb, ...port('80') }] }),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'DROPPED POLICY_DENY'],
      ['shop/web', 'shop/api', '81/TCP', 'AUDIT POLICY_DENY audit-all'],
      ['shop/db', 'shop/api', '80/TCP', 'FORWARDED'],
    ],
  },
  {
    name: 'audited deny matching where the enforcing default deny drops anyway: DROPPED',
    policies: [
      api('enforce', { ingress: [{ ...fromDb, ...port('5432') }] }),
      audited(api('audit-deny', { ingressDeny: [fromWeb] })),
    ],
    flows: [
      ['shop/web', 'shop/api', '5432/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/db', 'shop/api', '5432/TCP', 'FORWARDED'],
    ],
  },
  {
    name: 'allows of an audited policy still allow under an enforcing default deny',
    policies: [
      api('enforce', { ingress: [{ ...fromDb, ...port('5432') }] }),
      audited(api('audit-web', { ingress: [{ ...fromWeb, ...port('80') }] })),
    ],
    flows: [['shop/web', 'shop/api', '80/TCP', 'FORWARDED']],
  },
  {
    name: 'an audited Kubernetes NetworkPolicy: its default deny audits',
    policies: [
      audited(
        knp('shop', 'knp-api', {
          podSelector: { matchLabels: { app: 'api' } },
          policyTypes: ['Ingress'],
          ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }],
        }),
      ),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED'],
      ['shop/db', 'shop/api', '80/TCP', 'AUDIT POLICY_DENIED knp-api'],
    ],
  },
  {
    name: 'an audited CCNP deny over a namespaced allow',
    policies: [
      api('allow-all-in', { ingress: [{ fromEndpoints: [{}] }] }),
      audited(
        ccnp('no-db', {
          endpointSelector: {},
          ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'db' } }] }],
        }),
      ),
    ],
    flows: [
      ['shop/db', 'shop/api', '80/TCP', 'AUDIT POLICY_DENY no-db'],
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED'],
    ],
  },
  {
    name: 'audit-mode "false" enforces',
    policies: [audited(api('allow-web', { ingress: [{ ...fromWeb, ...port('80') }] }), 'false')],
    flows: [['shop/web', 'shop/api', '81/TCP', 'DROPPED POLICY_DENIED']],
  },
  {
    name: 'egress: an audited egress policy audits on the source side, ingress still enforced',
    policies: [
      audited(web('web-out', { egress: [{ toEndpoints: [{ matchLabels: { app: 'db' } }] }] })),
      api('api-in', { ingress: [{ ...fromDb }] }),
    ],
    flows: [
      ['shop/web', 'shop/db', '80/TCP', 'FORWARDED'],
      ['shop/web', 'shop/api', '80/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/web', 'github', '443/TCP', 'AUDIT POLICY_DENIED web-out'],
    ],
  },
  {
    name: 'audit + L7: the audited deny passes what L7 allows, L7 still refuses the rest',
    policies: [
      api('http', {
        ingress: [
          {
            ...fromWeb,
            toPorts: [
              {
                ports: [{ port: '80', protocol: 'TCP' }],
                rules: { http: [{ method: 'GET', path: '/public' }] },
              },
            ],
          },
        ],
      }),
      audited(api('audit-deny', { ingressDeny: [{ ...fromWeb, ...port('80') }] })),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'AUDIT POLICY_DENY audit-deny', get('/public')],
      ['shop/web', 'shop/api', '80/TCP', 'DROPPED L7_DENIED', get('/private')],
    ],
  },
  {
    name: 'audit + L7: L7 rules of an audited policy are still enforced by the proxy',
    policies: [
      audited(
        api('http', {
          ingress: [
            {
              ...fromWeb,
              toPorts: [
                {
                  ports: [{ port: '80', protocol: 'TCP' }],
                  rules: { http: [{ method: 'GET', path: '/public' }] },
                },
              ],
            },
          ],
        }),
      ),
    ],
    flows: [
      ['shop/web', 'shop/api', '80/TCP', 'FORWARDED', get('/public')],
      ['shop/web', 'shop/api', '80/TCP', 'DROPPED L7_DENIED', get('/private')],
      ['shop/web', 'shop/api', '81/TCP', 'AUDIT POLICY_DENIED http'],
    ],
  },
  {
    name: 'audit + FQDN: learnt names forwarded, the rest of egress audited',
    policies: [
      audited(
        web('fqdn', {
          egress: [
            {
              toEndpoints: [{ matchLabels: { app: 'dns' } }],
              toPorts: [
                { ports: [{ port: '53', protocol: 'ANY' }], rules: { dns: [{ matchPattern: '*' }] } },
              ],
            },
            { toFQDNs: [{ matchName: 'api.github.com' }], ...port('443') },
          ],
        }),
      ),
    ],
    dns: [['api.github.com', ['140.82.112.5']]],
    flows: [
      ['shop/web', 'github', '443/TCP', 'FORWARDED'],
      ['shop/web', 'other', '443/TCP', 'AUDIT POLICY_DENIED fqdn'],
      ['shop/web', 'github', '80/TCP', 'AUDIT POLICY_DENIED fqdn'],
    ],
  },
  {
    name: 'audit + FQDN with an enforcing egress policy: unlearnt addresses dropped',
    policies: [
      audited(web('fqdn', { egress: [{ toFQDNs: [{ matchName: 'api.github.com' }], ...port('443') }] })),
      web('dns-only', { egress: [{ toEndpoints: [{ matchLabels: { app: 'dns' } }], ...port('53', 'UDP') }] }),
    ],
    dns: [['api.github.com', ['140.82.112.5']]],
    flows: [
      ['shop/web', 'github', '443/TCP', 'FORWARDED'],
      ['shop/web', 'other', '443/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/web', 'shop/dns', '53/UDP', 'FORWARDED'],
    ],
  },
  {
    name: 'endpoint PolicyAuditMode: every policy drop of that endpoint is AUDIT, explicit denies too',
    policies: [
      api('enforce', { ingress: [{ ...fromDb, ...port('5432') }] }),
      api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('22') }] }),
      web('web-out', { egress: [{ toEndpoints: [{ matchLabels: { app: 'db' } }] }] }),
    ],
    auditEndpoints: ['shop/api'],
    flows: [
      ['shop/db', 'shop/api', '5432/TCP', 'FORWARDED'],
      ['shop/db', 'shop/api', '80/TCP', 'AUDIT POLICY_DENIED deny-web,enforce'],
      ['shop/web', 'shop/api', '22/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/db', 'shop/api', '22/TCP', 'AUDIT POLICY_DENIED deny-web,enforce'],
    ],
  },
  {
    name: 'agent-wide --policy-audit-mode: both directions audit',
    policies: [
      api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('22') }] }),
      web('web-out', { egress: [{ toEndpoints: [{ matchLabels: { app: 'db' } }] }] }),
    ],
    config: { policyAuditMode: true },
    flows: [
      ['shop/web', 'shop/db', '80/TCP', 'FORWARDED'],
      ['shop/web', 'shop/api', '80/TCP', 'AUDIT POLICY_DENIED web-out'],
      ['shop/db', 'shop/api', '22/TCP', 'AUDIT POLICY_DENIED deny-web'],
      ['shop/web', 'shop/api', '22/TCP', 'AUDIT POLICY_DENIED web-out'],
    ],
  },
  {
    name: 'policyEnforcementMode=always is an enforcing default deny; endpoint audit mode audits it',
    policies: [],
    config: { enforcementMode: 'always' },
    auditEndpoints: ['shop/api'],
    flows: [
      ['shop/web', 'shop/db', '80/TCP', 'DROPPED POLICY_DENIED'],
      ['shop/db', 'shop/web', '80/TCP', 'DROPPED POLICY_DENIED'],
      ['other', 'shop/api', '80/TCP', 'AUDIT POLICY_DENIED (policyEnforcementMode=always)'],
      ['other', 'shop/db', '80/TCP', 'DROPPED POLICY_DENIED'],
    ],
  },
];

/** A row by the start of its name (the tests below reuse their setups). */
function row(prefix: string): Row {
  const r = ROWS.find((x) => x.name.startsWith(prefix));
  if (r === undefined) throw new Error(`no row ${prefix}`);
  return r;
}

function outcome(v: Verdict): Want {
  if (v.verdict === 'DROPPED') return `DROPPED ${v.reason ?? 'POLICY_DENIED'}`;
  if (v.verdict === 'FORWARDED') return 'FORWARDED';
  const d = v.decidedBy === 'EGRESS' ? v.egress : v.ingress;
  const a = d?.audited;
  assert.ok(a !== undefined, 'an AUDIT verdict names its audited direction');
  return `AUDIT ${a.reason} ${[...new Set(a.by.map((r) => r.name))].sort().join(',') || '(policyEnforcementMode=always)'}`;
}

function build(row: Row) {
  const e = engineWith(EPS, row.policies, row.config);
  for (const ref of row.auditEndpoints ?? []) {
    const [ns, name] = ref.split('/') as [string, string];
    assert.equal(e.setEndpointOptions(ns, name, { policyAuditMode: true }), true);
  }
  for (const [name, ips] of row.dns ?? []) e.learnDNS(name, ips, 300, 0);
  return e;
}

describe('audit mode: engine verdicts', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const e = build(row);
      for (const [from, to, what, want, l7] of row.flows) {
        const v = e.decide(flow(from, to, what, EPS, l7), 1);
        assert.equal(outcome(v), want, `${from} → ${to} ${what}\n  ${v.explanation.join('\n  ')}`);
        assert.equal(v.allowed, !want.startsWith('DROPPED'));
        if (v.verdict === 'AUDIT') assert.match(v.explanation[0]!, /^AUDIT: .*audit mode lets it pass$/);
      }
    });
  }
});

describe('audit mode: explanations, MapState, incremental', () => {
  test('decide explains which policy audited the flow and why', () => {
    const e = build(row('audited explicit deny'));
    const v = e.decide(flow('shop/web', 'shop/api', '80/TCP', EPS));
    assert.equal(v.verdict, 'AUDIT');
    assert.equal(
      v.explanation[0],
      'AUDIT: shop/web → shop/api: would be denied (POLICY_DENY) in ingress of shop/api by CiliumNetworkPolicy shop/deny-web (test.yaml:1:1) ingressDeny[0]; audit mode lets it pass',
    );
    assert.ok(
      v.explanation.some((l) =>
        /would be denied by .*deny-web.*\(the policy is in audit mode\); audit mode lets it pass/.test(l),
      ),
      v.explanation.join('\n'),
    );
    const d = build(row('endpoint PolicyAuditMode')).decide(flow('shop/db', 'shop/api', '80/TCP', EPS));
    assert.equal(d.ingress?.audited?.endpointMode, true);
    assert.ok(
      d.explanation.some((l) => l.includes('shop/api is in PolicyAuditMode')),
      d.explanation.join('\n'),
    );
  });

  test('MapState: audited denies are audit entries, the default deny is flagged audited', () => {
    const e = build(row('audited explicit deny'));
    const p = e.endpointPolicy('shop', 'api');
    const verdicts = p.entries.filter((x) => x.key.direction === 'INGRESS').map((x) => x.verdict);
    assert.ok(verdicts.includes('audit') && !verdicts.includes('deny'), verdicts.join(','));
    assert.equal(p.ingress.auditDefaultDeny, undefined, 'allow-web enforces the default deny');
    const only = build(row('audited default deny alone')).endpointPolicy('shop', 'api');
    assert.equal(only.ingress.auditDefaultDeny, true);
    const web = e.identityOf({ kind: 'endpoint', namespace: 'shop', name: 'web' });
    assert.equal(e.lookup('shop/api', 'INGRESS', web, 6, 80), LOOKUP.ALLOW | LOOKUP.AUDIT);
    assert.equal(e.lookup('shop/api', 'INGRESS', web, 6, 81), LOOKUP.ALLOW);
  });

  test('turning audit on and off incrementally gives what a fresh engine gives', () => {
    const enforce = api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('80') }] });
    const allow = api('allow-web', { ingress: [fromWeb] });
    const e = engineWith(EPS, [allow, enforce]);
    e.drainEndpointChanges('shop', 'api');
    e.upsertPolicy(audited(api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('80') }] })));
    assert.equal(
      snapshot(e),
      snapshot(
        engineWith(EPS, [allow, audited(api('deny-web', { ingressDeny: [{ ...fromWeb, ...port('80') }] }))]),
      ),
    );
    const ch = e.drainEndpointChanges('shop', 'api');
    assert.equal(ch.full, false);
    assert.deepEqual(
      [...ch.removed.map((x) => `-${x.verdict}`), ...ch.added.map((x) => `+${x.verdict}`)].sort(),
      ['+audit', '-deny'],
    );
    e.upsertPolicy(enforce);
    assert.equal(snapshot(e), snapshot(engineWith(EPS, [allow, enforce])));
    // the only default-deny policy turning audited changes the direction: a full recompile
    e.removePolicy('CiliumNetworkPolicy', 'shop', 'deny-web');
    e.drainEndpointChanges('shop', 'api');
    e.upsertPolicy(audited(api('allow-web', { ingress: [fromWeb] })));
    assert.equal(e.endpointPolicy('shop', 'api').ingress.auditDefaultDeny, true);
    assert.equal(e.drainEndpointChanges('shop', 'api').full, true);
    e.upsertPolicy(allow);
    assert.equal(e.endpointPolicy('shop', 'api').ingress.auditDefaultDeny, undefined);
    assert.equal(e.drainEndpointChanges('shop', 'api').full, true);
  });

  test('endpoint options: set, read, kept across upserts, forgotten with the endpoint', () => {
    const e = engineWith(EPS, [api('allow-web', { ingress: [fromWeb] })]);
    assert.deepEqual(e.endpointOptions('shop', 'api'), { policyAuditMode: false });
    assert.equal(e.setEndpointOptions('shop', 'nope', { policyAuditMode: true }), false);
    assert.equal(e.setEndpointOptions('shop', 'api', { policyAuditMode: true }), true);
    const f = flow('shop/db', 'shop/api', '80/TCP', EPS);
    assert.equal(e.decide(f).verdict, 'AUDIT');
    e.upsertEndpoint(EPS[1]!);
    assert.equal(e.decide(f).verdict, 'AUDIT', 'kept across an upsert of the same pod');
    e.setEndpointOptions('shop', 'api', { policyAuditMode: false });
    assert.equal(e.decide(f).verdict, 'DROPPED');
    e.setEndpointOptions('shop', 'api', { policyAuditMode: true });
    e.removeEndpoint('shop', 'api');
    e.upsertEndpoint(EPS[1]!);
    assert.equal(e.decide(f).verdict, 'DROPPED', 'a new endpoint starts from the agent default');
    const wide = engineWith(EPS, [api('allow-web', { ingress: [fromWeb] })], { policyAuditMode: true });
    assert.deepEqual(wide.endpointOptions('shop', 'api'), { policyAuditMode: true });
    wide.setEndpointOptions('shop', 'api', { policyAuditMode: false });
    assert.equal(wide.decide(f).verdict, 'DROPPED', 'an endpoint may opt out of the agent-wide mode');
  });
});

test('policy show: the audited default deny and the AUDIT entries', () => {
  const e = build(row('audited default deny alone'));
  const lines = explainEndpointPolicy(e.endpointPolicy('shop', 'api'), e);
  assert.ok(
    lines.includes(
      'ingress: enforced, default-deny audited (audit mode: what it would drop passes as AUDIT)',
    ),
    lines.join('\n'),
  );
  const d = build(row('audited explicit deny'));
  const shown = explainEndpointPolicy(d.endpointPolicy('shop', 'api'), d);
  assert.ok(
    shown.some((l) => /^ {4}80\/TCP\s+AUDIT {2}\[from CiliumNetworkPolicy shop\/deny-web/.test(l)),
    shown.join('\n'),
  );
});
