import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OtherObject } from '../policy-api/types.ts';
import { workloadsFrom } from './workloads.ts';

const pos = { file: 'm.yaml', line: 1, column: 1 };
const obj = (kind: string, value: unknown): OtherObject => ({ apiVersion: 'v1', kind, value, pos });
const tmpl = (labels: Record<string, string>, spec: unknown = {}) => ({ metadata: { labels }, spec });

const rows: Array<{ name: string; objs: OtherObject[]; want: unknown[]; used?: string[]; issues?: number }> =
  [
    {
      name: 'Deployment: template labels, service account, container ports',
      objs: [
        obj('Deployment', {
          metadata: { name: 'web', namespace: 'shop' },
          spec: {
            template: tmpl(
              { app: 'web' },
              {
                serviceAccountName: 'web-sa',
                containers: [
                  { ports: [{ name: 'http', containerPort: 80, protocol: 'TCP' }, { containerPort: 9090 }] },
                ],
              },
            ),
          },
        }),
      ],
      want: [
        {
          name: 'web',
          namespace: 'shop',
          labels: { app: 'web' },
          node: 'node-1',
          pos,
          ipAllocated: true,
          serviceAccount: 'web-sa',
          ports: [{ port: 80, name: 'http', protocol: 'TCP' }, { port: 9090 }],
          ip: '10.0.0.1',
        },
      ],
    },
    {
      name: 'every workload kind, namespace default, allocation skips used IPs',
      used: ['10.0.0.1'],
      objs: [
        obj('StatefulSet', { metadata: { name: 's' }, spec: { template: tmpl({ a: 's' }) } }),
        obj('DaemonSet', { metadata: { name: 'd' }, spec: { template: tmpl({ a: 'd' }) } }),
        obj('ReplicaSet', { metadata: { name: 'r' }, spec: { template: tmpl({ a: 'r' }) } }),
        obj('Job', { metadata: { name: 'j' }, spec: { template: tmpl({ a: 'j' }) } }),
        obj('CronJob', {
          metadata: { name: 'c' },
          spec: { jobTemplate: { spec: { template: tmpl({ a: 'c' }) } } },
        }),
        obj('Pod', { metadata: { name: 'p', labels: { a: 'p' } }, spec: {}, status: { podIP: '10.0.0.2' } }),
        obj('Service', { metadata: { name: 'svc' }, spec: {} }),
      ],
      want: [
        ['s', '10.0.0.3', { a: 's' }],
        ['d', '10.0.0.4', { a: 'd' }],
        ['r', '10.0.0.5', { a: 'r' }],
        ['j', '10.0.0.6', { a: 'j' }],
        ['c', '10.0.0.7', { a: 'c' }],
        ['p', '10.0.0.2', { a: 'p' }],
      ],
    },
    {
      name: 'workload without a template is reported, duplicates too',
      objs: [
        obj('Deployment', { metadata: { name: 'x' }, spec: {} }),
        obj('Job', { metadata: { name: 'y' }, spec: { template: tmpl({}) } }),
        obj('Job', { metadata: { name: 'y' }, spec: { template: tmpl({}) } }),
      ],
      want: [['y', '10.0.0.1', {}]],
      issues: 2,
    },
  ];

for (const row of rows) {
  test(`workloads: ${row.name}`, () => {
    const w = workloadsFrom(row.objs, row.used ?? []);
    const got = Array.isArray(row.want[0]) ? w.endpoints.map((e) => [e.name, e.ip, e.labels]) : w.endpoints;
    assert.deepEqual(got, row.want);
    assert.equal(w.issues.length, row.issues ?? 0);
  });
}

test('workloads: Namespace objects give namespace labels', () => {
  const w = workloadsFrom([obj('Namespace', { metadata: { name: 'shop', labels: { env: 'prod' } } })]);
  assert.deepEqual(w.namespaces, [{ name: 'shop', labels: { env: 'prod' }, pos }]);
});
