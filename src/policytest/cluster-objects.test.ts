import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clusterObjectsFrom } from '../k8s/objects.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import type { OtherObject } from '../policy-api/types.ts';
import { prepareEngine } from './runner.ts';
import { loadScenario } from './scenario.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const POS = { file: 'm.yaml', line: 1, column: 1 };

function obj(apiVersion: string, kind: string, value: Record<string, unknown>): OtherObject {
  return { pos: POS, apiVersion, kind, value: { apiVersion, kind, ...value } };
}

test('clusterObjectsFrom reads Services, backends, CIDR groups and Nodes', () => {
  const rows: Array<{ name: string; objs: OtherObject[]; want: unknown; warnings?: number }> = [
    {
      name: 'Service with a pod selector',
      objs: [
        obj('v1', 'Service', {
          metadata: { name: 's', namespace: 'shop', labels: { tier: 'api' } },
          spec: { selector: { app: 'a' } },
        }),
      ],
      want: {
        services: [
          { namespace: 'shop', name: 's', labels: { tier: 'api' }, selector: { app: 'a' }, addresses: [] },
        ],
      },
    },
    {
      name: 'selector-less Service with Endpoints and a ready/not-ready EndpointSlice',
      objs: [
        obj('v1', 'Service', { metadata: { name: 'db' }, spec: { selector: {} } }),
        obj('v1', 'Endpoints', {
          metadata: { name: 'db' },
          subsets: [{ addresses: [{ ip: '192.168.0.2' }, { ip: 'fe80::1' }] }],
        }),
        obj('discovery.k8s.io/v1', 'EndpointSlice', {
          metadata: { name: 'db-x', labels: { 'kubernetes.io/service-name': 'db' } },
          addressType: 'IPv4',
          endpoints: [
            { addresses: ['192.168.0.1'] },
            { addresses: ['192.168.0.9'], conditions: { ready: false } },
          ],
        }),
      ],
      want: {
        services: [
          { namespace: 'default', name: 'db', labels: {}, addresses: ['192.168.0.1', '192.168.0.2'] },
        ],
      },
    },
    {
      name: 'CiliumCIDRGroup in v2alpha1 and v2; other APIs ignored',
      objs: [
        obj('cilium.io/v2alpha1', 'CiliumCIDRGroup', {
          metadata: { name: 'a', labels: { site: 'hq' } },
          spec: { externalCIDRs: ['10.1.0.0/16'] },
        }),
        obj('cilium.io/v2', 'CiliumCIDRGroup', {
          metadata: { name: 'b' },
          spec: { externalCIDRs: ['10.2.0.0/16'] },
        }),
        obj('example.com/v1', 'CiliumCIDRGroup', {
          metadata: { name: 'c' },
          spec: { externalCIDRs: ['10.3.0.0/16'] },
        }),
      ],
      want: {
        cidrGroups: [
          { name: 'a', labels: { site: 'hq' }, cidrs: ['10.1.0.0/16'] },
          { name: 'b', labels: {}, cidrs: ['10.2.0.0/16'] },
        ],
      },
    },
    {
      name: 'Node: InternalIP preferred; a node without an address is left out with a warning',
      objs: [
        obj('v1', 'Node', {
          metadata: { name: 'n1', labels: { role: 'w' } },
          status: {
            addresses: [
              { type: 'ExternalIP', address: '203.0.113.1' },
              { type: 'InternalIP', address: '172.18.0.2' },
            ],
          },
        }),
        obj('v1', 'Node', { metadata: { name: 'n2' }, status: {} }),
      ],
      want: { nodes: [{ name: 'n1', labels: { role: 'w' }, ip: '172.18.0.2' }] },
      warnings: 1,
    },
  ];
  for (const r of rows) {
    const got = clusterObjectsFrom(r.objs);
    const want = { services: [], cidrGroups: [], nodes: [], ...(r.want as object) };
    assert.deepEqual({ services: got.services, cidrGroups: got.cidrGroups, nodes: got.nodes }, want, r.name);
    assert.equal(got.issues.length, r.warnings ?? 0, `${r.name}: ${JSON.stringify(got.issues)}`);
  }
});

test('seawall test: toServices, cidrGroupRef and toNodes through policyFiles', () => {
  const r = spawnSync(
    process.execPath,
    ['bin/seawall.js', 'test', 'src/policytest/testdata/peers.policytest.yaml', '-o', 'json'],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(r.stderr, '');
  assert.equal(r.status, 0, r.stdout);
  const results = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { name: string; actual: string; pass: boolean; explanation: string[] });
  // Derived from cilium-semantics.md §13 (Service pod selector restricted to the Service's
  // namespace; selector-less Services become CIDR rules), §7 (CIDR groups, except), §13/§6 (node
  // selectors AND reserved:remote-node, so bare identity 6 carries no node labels).
  const want: Record<string, string> = {
    'service pods': 'allowed',
    "same labels in another namespace are not the Service's pods": 'denied',
    'not selected by the Service': 'denied',
    'selector-less Service backend': 'allowed',
    'CIDR group member': 'allowed',
    'CIDR group except': 'denied',
    'outside the CIDR group': 'denied',
    'worker node': 'allowed',
    'storage node': 'denied',
    'remote-node without node labels': 'denied',
  };
  assert.deepEqual(Object.fromEntries(results.map((x) => [x.name, x.actual])), want);
  assert.ok(results.every((x) => x.pass));
  const svc = results.find((x) => x.name === 'service pods')!;
  assert.ok(
    svc.explanation.some((l) =>
      l.includes('toServices[0] selects shop/backend via Service shop/backend-svc'),
    ),
    svc.explanation.join('\n'),
  );
});

test('offline commands: cluster objects from -f manifests reach the engine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-peers-'));
  try {
    cpSync(join(here, 'testdata', 'peers'), dir, { recursive: true });
    writeFileSync(
      join(dir, 'pods.yaml'),
      [
        'apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: web, labels: {app: client}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: 10.0.1.1}',
        'apiVersion: v1\nkind: Pod\nmetadata: {name: backend, namespace: shop, labels: {app: backend}}\nspec: {containers: [{name: c, image: x}]}\nstatus: {podIP: 10.0.2.1}',
      ].join('\n---\n'),
    );
    const sc = await loadScenario({ files: [dir], policies: [] });
    assert.deepEqual(
      sc.issues.filter((i) => i.severity === 'error'),
      [],
    );
    const { engine, issues } = prepareEngine(sc, defaultEngineFactory);
    assert.deepEqual(issues, []);
    const client = { kind: 'endpoint', namespace: 'web', name: 'client' } as const;
    const rows: Array<[string, Parameters<typeof engine.decide>[0]['dst'], number, boolean]> = [
      ['Service pods', { kind: 'endpoint', namespace: 'shop', name: 'backend' }, 8080, true],
      ['selector-less Service backend', { kind: 'ip', ip: '192.168.50.7' }, 5432, true],
      ['CIDR group member', { kind: 'ip', ip: '198.51.100.20' }, 443, true],
      ['worker node', { kind: 'ip', ip: '172.18.0.2' }, 10250, true],
      ['storage node', { kind: 'ip', ip: '172.18.0.3' }, 10250, false],
    ];
    for (const [name, dst, dport, want] of rows) {
      const v = engine.decide({ src: client, dst, protocol: 'TCP', dport });
      assert.equal(v.allowed, want, `${name}\n  ${v.explanation.join('\n  ')}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
