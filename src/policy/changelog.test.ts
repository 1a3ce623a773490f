// The engine's change log: drains report net entry changes since the previous drain.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHANGE_LOG_LIMIT, MapState, newChangeLog } from './mapstate.ts';
import { cnp, engineWith, pod } from './testutil.ts';

test('MapState change log nets reversals and overflows', () => {
  const rows: Array<[string, (m: MapState<string>) => void, string[], boolean]> = [
    ['add', (m) => m.add('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'f'), ['+256/80'], false],
    [
      'add then remove',
      (m) => {
        m.add('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'f');
        m.remove('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'f');
      },
      [],
      false,
    ],
    [
      'second contributor is no change',
      (m) => {
        m.add('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'f');
        m.add('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'g');
        m.remove('INGRESS', 256, 6, 80, 80, 'allow', undefined, 'f');
      },
      ['+256/80'],
      false,
    ],
    [
      'overflow',
      (m) => {
        for (let i = 0; i <= CHANGE_LOG_LIMIT; i++)
          m.add('INGRESS', 1000 + i, 6, 80, 80, 'allow', undefined, 'f');
      },
      [],
      true,
    ],
  ];
  for (const [name, act, want, overflow] of rows) {
    const m = new MapState<string>();
    m.log = newChangeLog();
    act(m);
    const got = [...m.log.changes.values()].map(
      (c) => `${c.added ? '+' : '-'}${c.entry.identity}/${c.entry.portLo}`,
    );
    assert.deepEqual(got, want, name);
    assert.equal(m.log.overflow, overflow, `${name}: overflow`);
  }
});

test('drainEndpointChanges: first drain full, then selection and policy changes', () => {
  const e = engineWith([pod('a/web', { app: 'web' }, '10.0.0.1')], []);
  const allow = cnp('a', 'p', {
    endpointSelector: { matchLabels: { app: 'web' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'c' } }],
        toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }],
      },
    ],
  });
  assert.equal(e.drainEndpointChanges('a', 'web').full, true, 'first drain');
  e.upsertPolicy(allow);
  assert.equal(e.drainEndpointChanges('a', 'web').full, true, 'ingress became enforced');
  e.upsertEndpoint(pod('a/c1', { app: 'c' }, '10.0.0.2'));
  const joined = e.drainEndpointChanges('a', 'web');
  const id = e.identityOf({ kind: 'endpoint', namespace: 'a', name: 'c1' });
  assert.deepEqual(
    { full: joined.full, added: joined.added.map((x) => x.key), removed: joined.removed },
    {
      full: false,
      added: [{ direction: 'INGRESS', identity: id, proto: 6, portLo: 80, portHi: 80 }],
      removed: [],
    },
  );
  assert.equal(joined.added[0]?.derivedFrom[0]?.name, 'p', 'provenance of added entries');
  assert.deepEqual(e.drainEndpointChanges('a', 'web').added, [], 'nothing since');
  e.upsertPolicy(
    cnp('a', 'p', {
      ...(allow.spec as object),
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: 'c' } }],
          toPorts: [{ ports: [{ port: '81', protocol: 'TCP' }] }],
        },
      ],
    }),
  );
  const changed = e.drainEndpointChanges('a', 'web');
  assert.deepEqual(
    [changed.full, changed.removed.map((x) => x.key.portLo), changed.added.map((x) => x.key.portLo)],
    [false, [80], [81]],
    'a policy change as a diff',
  );
  e.removeEndpoint('a', 'c1');
  assert.deepEqual(
    e.drainEndpointChanges('a', 'web').removed.map((x) => x.key.identity),
    [id],
    'peer left',
  );
  assert.equal(e.drainEndpointChanges('a', 'gone').full, true, 'unknown endpoint');
});
