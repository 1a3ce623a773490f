import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LabelSet, parseLabel } from './label.ts';
import { podIdentityLabels } from './pod.ts';
import { compileSelector, type SelectorInput } from './selector.ts';

test('parseLabel', () => {
  const rows: Array<[string, string, { source: string; key: string; value: string }]> = [
    ['prefixed', 'k8s:app=web', { source: 'k8s', key: 'app', value: 'web' }],
    ['unprefixed is any', 'app=web', { source: 'any', key: 'app', value: 'web' }],
    ['reserved no value', 'reserved:host', { source: 'reserved', key: 'host', value: '' }],
    ['$host shorthand', '$host', { source: 'reserved', key: 'host', value: '' }],
    [
      'dotted key',
      'k8s:io.kubernetes.pod.namespace=shop',
      { source: 'k8s', key: 'io.kubernetes.pod.namespace', value: 'shop' },
    ],
  ];
  for (const [name, raw, want] of rows) assert.deepEqual(parseLabel(raw), want, name);
});

test('LabelSet key is stable and sorted', () => {
  const a = LabelSet.fromStrings(['k8s:b=2', 'k8s:a=1', 'reserved:host']);
  const b = LabelSet.fromStrings(['reserved:host', 'k8s:a=1', 'k8s:b=2']);
  assert.equal(a.key, b.key);
  assert.equal(a.key, 'k8s:a=1;k8s:b=2;reserved:host');
});

const pod = LabelSet.fromStrings([
  'k8s:app=web',
  'k8s:tier=front',
  'k8s:io.kubernetes.pod.namespace=shop',
  'container:app=web2',
]);

test('selector matching', () => {
  const rows: Array<[string, SelectorInput, boolean]> = [
    ['empty selects all', {}, true],
    ['matchLabels any source', { matchLabels: { app: 'web' } }, true],
    ['matchLabels k8s source', { matchLabels: { 'k8s:app': 'web' } }, true],
    ['wrong source', { matchLabels: { 'reserved:app': 'web' } }, false],
    ['any matches second source value', { matchLabels: { app: 'web2' } }, true],
    ['k8s source does not see container value', { matchLabels: { 'k8s:app': 'web2' } }, false],
    ['wrong value', { matchLabels: { app: 'db' } }, false],
    ['In', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }, true],
    ['In miss', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, false],
    ['NotIn present', { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['front'] }] }, false],
    [
      'NotIn absent key matches',
      { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] },
      true,
    ],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, true],
    ['Exists absent', { matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    ['DoesNotExist absent', { matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    ['DoesNotExist present', { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] }, false],
    [
      'labels AND expressions',
      { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] },
      false,
    ],
  ];
  for (const [name, sel, want] of rows) assert.equal(compileSelector(sel).matches(pod), want, name);
});

test('selector keys are canonical', () => {
  const a = compileSelector({ matchLabels: { a: '1', b: '2' } });
  const b = compileSelector({
    matchExpressions: [{ key: 'b', operator: 'In', values: ['2'] }],
    matchLabels: { a: '1' },
  });
  assert.equal(a.key, b.key);
  assert.equal(
    compileSelector({ matchLabels: { 'k8s:io.kubernetes.pod.namespace': 'x', app: 'y' } }).indexLabel,
    'app=y',
  );
});

test('pod identity labels', () => {
  const rows: Array<[string, Parameters<typeof podIdentityLabels>[0], string[]]> = [
    [
      'defaults',
      { namespace: 'shop', labels: { app: 'web' } },
      [
        'k8s:app=web',
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=shop',
        'k8s:io.cilium.k8s.policy.cluster=default',
        'k8s:io.cilium.k8s.policy.serviceaccount=default',
        'k8s:io.kubernetes.pod.namespace=shop',
      ],
    ],
    [
      'namespace labels and service account',
      { namespace: 'a', labels: {}, namespaceLabels: { env: 'prod' }, serviceAccount: 'sa', cluster: 'c1' },
      [
        'k8s:io.cilium.k8s.namespace.labels.env=prod',
        'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=a',
        'k8s:io.cilium.k8s.policy.cluster=c1',
        'k8s:io.cilium.k8s.policy.serviceaccount=sa',
        'k8s:io.kubernetes.pod.namespace=a',
      ],
    ],
  ];
  for (const [name, input, want] of rows) assert.deepEqual(podIdentityLabels(input).toStrings(), want, name);
});
