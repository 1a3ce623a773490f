// Differential tests of the incremental compile: random change sequences applied as patches
// (patchEndpoint, falling back to a full compile where it declines) must leave the same compiled
// form, and render the same delta, as a fresh compile of the final state. Seeded: a failure is
// reproducible from its seed.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PolicyEngine } from '../../policy/engine.ts';
import { cnp, rng } from '../../policy/testutil.ts';
import type { EndpointPolicy, MapStateEntry, MapStateVerdict } from '../../policy/types.ts';
import {
  assemble,
  type CompiledEndpoint,
  compileEndpoint,
  type EntryChanges,
  patchEndpoint,
  renderDelta,
} from './compile.ts';

const SEEDS = Number(process.env.SEAWALL_FUZZ_SEEDS ?? 60);

/** One step: patch when possible, else compile in full (what NodeDatapath does). */
function advance(
  prev: CompiledEndpoint,
  ch: EntryChanges,
  policy: EndpointPolicy,
): { ep: CompiledEndpoint; patched: boolean } {
  const p = patchEndpoint(prev, ch);
  if (p !== undefined) return { ep: p, patched: true };
  return { ep: compileEndpoint({ id: 7, ip: '10.0.0.7', policy, iface: 'veth7' }), patched: false };
}

function check(prev: CompiledEndpoint, got: CompiledEndpoint, policy: EndpointPolicy, what: string): void {
  const fresh = compileEndpoint({ id: 7, ip: '10.0.0.7', policy, iface: 'veth7' });
  assert.deepEqual(got, fresh, `${what}: compiled form`);
  const ipc = new Map<string, number>();
  const before = assemble([prev], ipc);
  assert.equal(
    renderDelta(before, assemble([got], ipc)),
    renderDelta(before, assemble([fresh], ipc)),
    `${what}: rendered delta`,
  );
}

describe('patchEndpoint', () => {
  it('random entry changes match a fresh compile', () => {
    const VERDICTS: MapStateVerdict[] = ['allow', 'deny', 'redirect'];
    let patched = 0;
    let steps = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed);
      const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
      const randomEntry = (): MapStateEntry => {
        // a small domain, so that entries collide on elements (proto 0 vs 6, verdict twins)
        const x = r();
        const [lo, hi] = x < 0.75 ? [80 + Math.floor(r() * 4), -1] : x < 0.9 ? [1000, 1010] : [0, 65535];
        return {
          key: {
            direction: r() < 0.7 ? 'INGRESS' : 'EGRESS',
            identity: pick([0, 256, 257, 300, 100000]),
            proto: pick([0, 6, 6, 17, 1, 132, 58]),
            portLo: lo,
            portHi: hi < 0 ? lo : hi,
          },
          verdict: r() < 0.8 ? 'allow' : pick(VERDICTS),
          derivedFrom: [],
        };
      };
      let entries: MapStateEntry[] = [];
      for (let i = 0; i < 40; i++) entries.push(randomEntry());
      const policy = (): EndpointPolicy => ({
        endpoint: 'ns/p',
        identity: 256,
        ingress: { enforced: true, defaultDeny: true },
        egress: { enforced: seed % 3 !== 0, defaultDeny: seed % 2 === 0 },
        entries,
        selectedBy: [],
      });
      let cur = compileEndpoint({ id: 7, ip: '10.0.0.7', policy: policy(), iface: 'veth7' });
      for (let s = 0; s < 30; s++) {
        const removed: MapStateEntry[] = [];
        const added: MapStateEntry[] = [];
        const k = 1 + Math.floor(r() * 6);
        for (let j = 0; j < k; j++) {
          if (entries.length > 0 && r() < 0.5) {
            const [gone] = entries.splice(Math.floor(r() * entries.length), 1);
            removed.push(gone!);
          } else {
            const e = randomEntry();
            entries = [...entries, e];
            added.push(e);
          }
        }
        const next = advance(cur, { removed, added }, policy());
        check(cur, next.ep, policy(), `seed ${seed} step ${s}`);
        if (next.patched) patched++;
        steps++;
        cur = next.ep;
      }
    }
    // the test must exercise the patch path, not only the fallback
    assert.ok(patched > steps / 5, `${patched} of ${steps} steps patched`);
  });

  it('declines what changes a chain, and a form it did not index', () => {
    const e = (identity: number, port: number, hi = port): MapStateEntry => ({
      key: { direction: 'INGRESS', identity, proto: 6, portLo: port, portHi: hi },
      verdict: 'allow',
      derivedFrom: [],
    });
    const pol = (entries: MapStateEntry[]): EndpointPolicy => ({
      endpoint: 'ns/p',
      identity: 256,
      ingress: { enforced: true, defaultDeny: true },
      egress: { enforced: false, defaultDeny: false },
      entries,
      selectedBy: [],
    });
    const base = compileEndpoint({ id: 1, ip: '10.0.0.1', policy: pol([e(256, 80)]) });
    const rows: Array<[string, EntryChanges]> = [
      ['the last element goes (the set goes)', { removed: [e(256, 80)], added: [] }],
      ['a port range', { removed: [], added: [e(256, 90, 99)] }],
      ['a new set (deny)', { removed: [], added: [{ ...e(256, 81), verdict: 'deny' }] }],
      ['a removal of what is not there', { removed: [e(256, 81)], added: [] }],
    ];
    for (const [name, ch] of rows) {
      const fresh = compileEndpoint({ id: 1, ip: '10.0.0.1', policy: pol([e(256, 80)]) });
      assert.equal(patchEndpoint(fresh, ch), undefined, name);
    }
    const once = patchEndpoint(base, { removed: [], added: [e(257, 80)] });
    assert.ok(once !== undefined, 'a plain element add patches');
    assert.equal(patchEndpoint(base, { removed: [], added: [e(258, 80)] }), undefined, 'one patch per form');
  });
});

describe('engine change log → datapath patches', () => {
  it('random pod and policy changes keep the patched forms equal to fresh compiles', () => {
    const POLICIES = [
      cnp('a', 'web', {
        endpointSelector: { matchLabels: { app: 'web' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'client' } }],
            toPorts: [
              {
                ports: [
                  { port: '80', protocol: 'TCP' },
                  { port: '53', protocol: 'ANY' },
                ],
              },
            ],
          },
          { fromEndpoints: [{}], toPorts: [{ ports: [{ port: '8000', endPort: 8010, protocol: 'TCP' }] }] },
        ],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'bad' } }] }],
      }),
      cnp('a', 'all', {
        endpointSelector: {},
        egress: [{ toEndpoints: [{}], toPorts: [{ ports: [{ port: 'http' }] }] }],
        ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      }),
      cnp('a', 'dns', {
        endpointSelector: { matchLabels: { app: 'web' } },
        egress: [
          {
            toEndpoints: [{ matchLabels: { app: 'client' } }],
            toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }], rules: { dns: [{ matchPattern: '*' }] } }],
          },
        ],
      }),
    ];
    const APPS = ['web', 'client', 'bad', 'other'];
    let patched = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = rng(seed * 7919);
      const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
      const e = new PolicyEngine();
      e.upsertNamespace('a', {});
      const pods = new Map<string, CompiledEndpoint>();
      const on = new Set<number>();
      for (let s = 0; s < 40; s++) {
        const x = r();
        const slot = Math.floor(r() * 10);
        if (x < 0.5) {
          const ports =
            r() < 0.5 ? [{ name: 'http', port: pick([8080, 9090]), protocol: 'TCP' as const }] : [];
          e.upsertEndpoint({
            name: `p${slot}`,
            namespace: 'a',
            labels: { app: pick(APPS) },
            ip: `10.0.0.${slot + 1}`,
            ports,
          });
        } else if (x < 0.65) {
          e.removeEndpoint('a', `p${slot}`);
          pods.delete(`p${slot}`);
        } else {
          const i = Math.floor(r() * POLICIES.length);
          const p = POLICIES[i]!;
          if (on.delete(i)) e.removePolicy(p.kind, 'a', p.metadata.name);
          else {
            on.add(i);
            e.upsertPolicy(p);
          }
        }
        for (const key of e.endpointKeys()) {
          const name = key.slice(2);
          const ch = e.drainEndpointChanges('a', name);
          const policy = e.endpointPolicy('a', name);
          const prev = pods.get(name);
          let next: CompiledEndpoint;
          if (prev === undefined || ch.full) {
            next = compileEndpoint({ id: 7, ip: '10.0.0.7', policy, iface: 'veth7' });
          } else {
            const a = advance(prev, ch, policy);
            if (a.patched && ch.added.length + ch.removed.length > 0) patched++;
            next = a.ep;
            check(prev, next, policy, `seed ${seed} step ${s} ${name}`);
          }
          pods.set(name, next);
        }
      }
    }
    assert.ok(patched > 50, `${patched} patches`);
  });
});
