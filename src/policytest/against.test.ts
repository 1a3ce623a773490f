// `test --against`: recorded flows replayed against a new policy set, drops grouped with the rule
// responsible; golden text and JSON.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { golden } from '../core/testing/golden.ts';
import { parseFlowText } from '../flow/read.ts';
import type { Flow } from '../flow/types.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { loadPolicyText } from '../policy-api/load.ts';
import { formatAgainstJSON, formatAgainstText, runAgainst, workloadOf } from './against.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
process.chdir(root);
const DIR = 'src/policytest/testdata/against';
const LOG = `${DIR}/flows.jsonl`;
const read = parseFlowText(LOG, readFileSync(LOG, 'utf8'));

const policyFile = (f: string) =>
  loadPolicyText(`${DIR}/policies/${f}`, readFileSync(`${DIR}/policies/${f}`, 'utf8')).policies;

interface Row {
  name: string;
  policies: string;
  flows?: Flow[];
  dropped: number;
  golden?: string;
}

const ALLOW_ALL = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: all, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{fromEntities: [all]}]
  egress: [{toEntities: [all]}]
`;

const rows: Row[] = [
  {
    name: 'the reviewed policies drop eleven recorded requests',
    policies: 'reviewed',
    dropped: 11,
    golden: 'against-reviewed',
  },
  {
    name: 'no policy selects anything: nothing dropped',
    policies: 'none',
    dropped: 0,
    golden: 'against-none',
  },
  { name: 'allow-all in the namespace: nothing dropped', policies: 'all', dropped: 0 },
  {
    name: 'a record already dropped when recorded is passed over, not counted',
    policies: 'reviewed',
    flows: read.flows.filter((f) => f.verdict === 'DROPPED'),
    dropped: 0,
  },
];

for (const row of rows) {
  test(`against: ${row.name}`, () => {
    const policies =
      row.policies === 'reviewed'
        ? [...policyFile('backend.yaml'), ...policyFile('frontend.yaml')]
        : row.policies === 'all'
          ? loadPolicyText('all.yaml', ALLOW_ALL).policies
          : [];
    const flows = row.flows ?? read.flows;
    const r = runAgainst(
      { flows, ...(row.flows ? {} : { lines: read.lines }), policies },
      defaultEngineFactory,
    );
    assert.deepEqual(r.issues, []);
    assert.equal(r.dropped, row.dropped);
    assert.equal(
      r.groups.reduce((n, g) => n + g.count, 0),
      row.dropped,
    );
    if (row.golden) {
      golden(join(here, 'testdata', `${row.golden}.golden`), formatAgainstText(r, LOG));
      golden(join(here, 'testdata', `${row.golden}.json.golden`), formatAgainstJSON(r));
    }
  });
}

test('against: two pods of one workload dropped by one rule are one group', () => {
  const policies = [...policyFile('backend.yaml'), ...policyFile('frontend.yaml')];
  const r = runAgainst({ flows: read.flows, lines: read.lines, policies }, defaultEngineFactory);
  const metrics = r.groups.filter((g) => g.port === '9090/TCP');
  assert.equal(metrics.length, 1);
  assert.equal(metrics[0]!.count, 2);
});

const wlRows: Array<{ name: string; ep: Flow['source']; ip?: string; want: string }> = [
  {
    name: 'Hubble workload wins',
    ep: {
      namespace: 'a',
      pod_name: 'web-1',
      workloads: [{ name: 'web', kind: 'Deployment' }],
      labels: ['k8s:app=x'],
    },
    want: 'a/deployment/web',
  },
  {
    name: 'app label',
    ep: { namespace: 'a', pod_name: 'web-1', labels: ['k8s:app=web'] },
    want: 'a/app=web',
  },
  { name: 'pod name when no label', ep: { namespace: 'a', pod_name: 'web-1' }, want: 'a/web-1' },
  { name: 'reserved entity', ep: { identity: 1, labels: ['reserved:host'] }, want: 'host' },
  {
    name: 'outside address',
    ep: { identity: 2, labels: ['reserved:world'] },
    ip: '192.0.2.1',
    want: '192.0.2.1',
  },
];
for (const row of wlRows)
  test(`workloadOf: ${row.name}`, () => assert.equal(workloadOf(row.ep, row.ip), row.want));
