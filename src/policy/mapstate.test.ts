// MapState: the allocation-free lookup (flat index) must give exactly what the full collect()
// path gives, whatever the mix of wildcard identities, protocols, ranges and verdicts, and it must
// follow every add and remove.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOOKUP, MapState, type StateEntry } from './mapstate.ts';
import { rng } from './testutil.ts';
import type { MapStateVerdict, TrafficDirection } from './types.ts';

const PROTOS = [0, 1, 6, 17, 58, 132];
const VERDICTS: MapStateVerdict[] = ['allow', 'deny', 'redirect', 'audit'];
const DIRS: TrafficDirection[] = ['INGRESS', 'EGRESS'];

function reference(
  ms: MapState<string>,
  d: TrafficDirection,
  id: number,
  proto: number,
  port: number,
): number {
  const hits: StateEntry<string>[] = [];
  ms.collect(d, id, proto, port, hits);
  if (hits.some((e) => e.verdict === 'deny')) return LOOKUP.DENY;
  const audit = hits.some((e) => e.verdict === 'audit') ? LOOKUP.AUDIT : 0;
  if (hits.some((e) => e.verdict === 'allow')) return LOOKUP.ALLOW | audit;
  if (hits.some((e) => e.verdict === 'redirect')) return LOOKUP.REDIRECT | audit;
  return LOOKUP.NONE | audit;
}

describe('MapState lookup agrees with collect', () => {
  const cases = [
    { name: 'few entries, few identities', seed: 1, entries: 10, ids: 3 },
    { name: 'many wildcard entries (unmerged index)', seed: 2, entries: 200, ids: 4 },
    { name: 'many identities', seed: 3, entries: 300, ids: 50 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = rng(c.seed);
      const pickN = (n: number) => Math.floor(r() * n);
      const ms = new MapState<string>();
      const added: Array<Parameters<MapState<string>['add']>> = [];
      const check = () => {
        for (let i = 0; i < 400; i++) {
          const d = DIRS[pickN(2)]!;
          const id = pickN(c.ids + 1);
          const proto = PROTOS[pickN(PROTOS.length)]!;
          const port = pickN(100);
          assert.equal(
            ms.lookup(d, id, proto, port),
            reference(ms, d, id, proto, port),
            `${d} ${id} ${proto} ${port}`,
          );
        }
      };
      for (let i = 0; i < c.entries; i++) {
        const lo = pickN(100);
        const args: Parameters<MapState<string>['add']> = [
          DIRS[pickN(2)]!,
          r() < 0.3 ? 0 : pickN(c.ids + 1),
          PROTOS[pickN(PROTOS.length)]!,
          lo,
          lo + pickN(20),
          VERDICTS[pickN(VERDICTS.length)]!,
          undefined,
          `f${i}`,
        ];
        ms.add(...args);
        added.push(args);
        if (i % 25 === 0) check();
      }
      check();
      // Remove half and check again: the flat index must follow removals too.
      for (const a of added.filter((_, i) => i % 2 === 0)) ms.remove(...a);
      check();
    });
  }
});

describe('MapState lookup: audit entries flag, never decide', () => {
  const rows: Array<{ name: string; entries: Array<[number, MapStateVerdict]>; want: number }> = [
    {
      name: 'audit alone: NONE|AUDIT (the default decides)',
      entries: [[0, 'audit']],
      want: LOOKUP.NONE | LOOKUP.AUDIT,
    },
    {
      name: 'audit + allow: ALLOW|AUDIT',
      entries: [
        [7, 'allow'],
        [0, 'audit'],
      ],
      want: LOOKUP.ALLOW | LOOKUP.AUDIT,
    },
    {
      name: 'audit + redirect: REDIRECT|AUDIT',
      entries: [
        [7, 'audit'],
        [7, 'redirect'],
      ],
      want: LOOKUP.REDIRECT | LOOKUP.AUDIT,
    },
    {
      name: 'audit + deny: DENY (an enforcing deny wins)',
      entries: [
        [7, 'audit'],
        [0, 'deny'],
        [7, 'allow'],
      ],
      want: LOOKUP.DENY,
    },
    { name: 'allow only: no flag', entries: [[7, 'allow']], want: LOOKUP.ALLOW },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const ms = new MapState<string>();
      row.entries.forEach(([id, v], i) => {
        ms.add('INGRESS', id, 6, 80, 80, v, undefined, `f${i}`);
      });
      assert.equal(ms.lookup('INGRESS', 7, 6, 80), row.want);
      assert.equal(ms.lookup('INGRESS', 7, 6, 81), LOOKUP.NONE);
    });
  }
});

// Entry keys are packed code units (identity halves, protocol, ports, direction, verdict, parser):
// two entries differing in one field must stay two entries, and the same one added twice is one.
describe('MapState entry keys', () => {
  type Args = [TrafficDirection, number, number, number, number, MapStateVerdict, string | undefined];
  const base: Args = ['EGRESS', 16777217, 0, 0, 65535, 'deny', undefined];
  const cases: Array<{ name: string; other: Args; size: number }> = [
    { name: 'the same entry again', other: base, size: 1 },
    { name: "parser '' is no parser", other: ['EGRESS', 16777217, 0, 0, 65535, 'deny', ''], size: 1 },
    { name: 'direction', other: ['INGRESS', 16777217, 0, 0, 65535, 'deny', undefined], size: 2 },
    { name: 'identity low half', other: ['EGRESS', 16777218, 0, 0, 65535, 'deny', undefined], size: 2 },
    { name: 'identity high half', other: ['EGRESS', 1, 0, 0, 65535, 'deny', undefined], size: 2 },
    {
      name: 'identity beyond 16 bits',
      other: ['EGRESS', 65537 + 16777216, 0, 0, 65535, 'deny', undefined],
      size: 2,
    },
    { name: 'protocol', other: ['EGRESS', 16777217, 6, 0, 65535, 'deny', undefined], size: 2 },
    { name: 'low port', other: ['EGRESS', 16777217, 0, 1, 65535, 'deny', undefined], size: 2 },
    { name: 'high port', other: ['EGRESS', 16777217, 0, 0, 65534, 'deny', undefined], size: 2 },
    { name: 'verdict', other: ['EGRESS', 16777217, 0, 0, 65535, 'allow', undefined], size: 2 },
    { name: 'audit is not deny', other: ['EGRESS', 16777217, 0, 0, 65535, 'audit', undefined], size: 2 },
    { name: 'parser', other: ['EGRESS', 16777217, 0, 0, 65535, 'redirect', 'http'], size: 2 },
    { name: 'two parsers', other: ['EGRESS', 16777217, 0, 0, 65535, 'redirect', 'kafka'], size: 2 },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const ms = new MapState<string>();
      const first: Args =
        c.name === 'two parsers' ? ['EGRESS', 16777217, 0, 0, 65535, 'redirect', 'http'] : base;
      ms.add(...first, 'a');
      ms.add(...c.other, 'b');
      assert.equal(ms.size, c.size);
      ms.remove(...c.other, 'b');
      assert.equal(ms.size, 1, 'removing the second leaves the first');
    });
  }
});
