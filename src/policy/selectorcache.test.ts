// The SelectorCache's CIDR index (issue 15): CIDR selectors are indexed by the `cidr:` label of
// their prefix, so a new selector visits only the identities inside it and a new CIDR identity
// only the selectors covering it. Checked against every selector matched against every identity,
// on seeded random sequences of selectors and identities added and removed in any order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IdentityAllocator } from '../identity/allocator.ts';
import { type Prefix, parsePrefix } from '../identity/cidr.ts';
import { LabelSet } from '../labels/label.ts';
import { cidrPeer, type PeerSelector } from './peer.ts';
import { type CachedSelector, SelectorCache } from './selectorcache.ts';
import { rng } from './testutil.ts';

const P = (s: string): Prefix => parsePrefix(s)!;

function naive(alloc: IdentityAllocator, peer: PeerSelector): number[] {
  return [...alloc.all()]
    .filter((id) => peer.matches(id))
    .map((id) => id.id)
    .sort((a, b) => a - b);
}

function selected(cs: CachedSelector): number[] {
  return [...cs.ids].sort((a, b) => a - b);
}

test('CIDR selectors select what matching every identity would, in either order', () => {
  const rows: Array<{ name: string; sel: [string, string[]]; ids: string[]; want: string[] }> = [
    {
      name: 'a /24 selects the /32s and /28s inside it',
      sel: ['10.1.2.0/24', []],
      ids: ['10.1.2.3/32', '10.1.2.16/28', '10.1.3.1/32', '10.0.0.0/8'],
      want: ['10.1.2.3/32', '10.1.2.16/28'],
    },
    {
      name: 'an except takes its part out',
      sel: ['10.1.0.0/16', ['10.1.2.0/24']],
      ids: ['10.1.2.3/32', '10.1.9.9/32'],
      want: ['10.1.9.9/32'],
    },
    {
      name: 'the prefix itself is selected',
      sel: ['192.0.2.0/24', []],
      ids: ['192.0.2.0/24'],
      want: ['192.0.2.0/24'],
    },
    {
      name: '/0 (unindexed) selects world and every CIDR identity',
      sel: ['0.0.0.0/0', []],
      ids: ['10.1.2.3/32', '203.0.113.0/24'],
      want: ['0.0.0.0/0', '10.1.2.3/32', '203.0.113.0/24'],
    },
  ];
  for (const row of rows) {
    for (const order of ['selector first', 'identities first'] as const) {
      const alloc = new IdentityAllocator();
      const cache = new SelectorCache(alloc.all());
      alloc.addListener(cache);
      const peer = cidrPeer(P(row.sel[0]), row.sel[1].map(P));
      let cs: CachedSelector | undefined;
      if (order === 'selector first') cs = cache.add(peer);
      const ids = row.ids.map((s) => alloc.allocateCIDR(P(s)));
      alloc.allocate(LabelSet.fromStrings(['k8s:app=pod'])); // a pod: never a CIDR peer
      cs ??= cache.add(peer);
      const want = row.want
        .map((s) => (s === '0.0.0.0/0' ? alloc.allocateCIDR(P(s)).id : ids[row.ids.indexOf(s)]!.id))
        .sort((a, b) => a - b);
      assert.deepEqual(selected(cs), want, `${row.name} (${order})`);
      assert.deepEqual(
        selected(cs),
        naive(alloc, peer),
        `${row.name} (${order}): as matching every identity`,
      );
    }
  }
});

test('random CIDR selectors and identities, added and removed: the index agrees with all-pairs', () => {
  const LENS = [0, 8, 12, 16, 20, 24, 28, 32];
  for (let seed = 1; seed <= 30; seed++) {
    const r = rng(seed);
    const prefix = (): Prefix => {
      const len = LENS[Math.floor(r() * LENS.length)]!;
      // a small address space, so that prefixes nest and overlap
      const addr =
        ((10 << 24) | (Math.floor(r() * 4) << 16) | (Math.floor(r() * 4) << 8) | Math.floor(r() * 8)) >>> 0;
      return P(`${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}/${len}`);
    };
    const alloc = new IdentityAllocator();
    const cache = new SelectorCache(alloc.all());
    alloc.addListener(cache);
    const held: Prefix[] = [];
    const sels: Array<{ peer: PeerSelector; cs: CachedSelector }> = [];
    for (let step = 0; step < 120; step++) {
      const x = r();
      if (x < 0.35) {
        const p = prefix();
        alloc.allocateCIDR(p);
        held.push(p);
      } else if (x < 0.5 && held.length > 0) {
        const [p] = held.splice(Math.floor(r() * held.length), 1);
        alloc.releaseCIDR(p!);
      } else if (x < 0.85) {
        const ex = r() < 0.3 ? [prefix()] : [];
        const peer = cidrPeer(prefix(), ex);
        sels.push({ peer, cs: cache.add(peer) });
      } else if (sels.length > 0) {
        const [s] = sels.splice(Math.floor(r() * sels.length), 1);
        cache.release(s!.cs);
      }
      for (const s of sels)
        assert.deepEqual(selected(s.cs), naive(alloc, s.peer), `seed ${seed} step ${step}: ${s.peer.key}`);
    }
  }
});
