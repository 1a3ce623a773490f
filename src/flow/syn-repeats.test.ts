import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KernelDir } from './nflog.ts';
import { RepeatedSYNs } from './syn-repeats.ts';

type SYN = [
  dir: KernelDir,
  src: string,
  sport: number | undefined,
  dst: string,
  dport: number | undefined,
  ms: number,
];

/** The rule as a Map of string keys (the pipeline's before RepeatedSYNs): the reference. */
class Reference {
  private readonly m = new Map<string, number>();
  constructor(
    private readonly windowMs: number,
    private readonly max: number,
  ) {}
  get size(): number {
    return this.m.size;
  }
  repeated(...[dir, src, sport, dst, dport, now]: SYN): boolean {
    const key = `${dir}|${src}|${sport}|${dst}|${dport}`;
    const prev = this.m.get(key);
    if (prev !== undefined && now - prev < this.windowMs && now >= prev) return true;
    if (prev !== undefined) this.m.delete(key);
    this.m.set(key, now);
    if (this.m.size > this.max) this.m.delete(this.m.keys().next().value!);
    return false;
  }
}

const A = '10.0.0.1';
const B = '10.0.0.2';

describe('RepeatedSYNs', () => {
  const rows: { name: string; max?: number; syns: SYN[]; want: boolean[] }[] = [
    {
      name: 'retransmissions within the window are repeats',
      syns: [
        ['in', A, 40000, B, 80, 0],
        ['in', A, 40000, B, 80, 1000],
        ['in', A, 40000, B, 80, 3000],
      ],
      want: [false, true, true],
    },
    {
      name: 'past the window: a new connection, and the window starts again',
      syns: [
        ['in', A, 40000, B, 80, 0],
        ['in', A, 40000, B, 80, 60_000],
        ['in', A, 40000, B, 80, 61_000],
      ],
      want: [false, false, true],
    },
    {
      name: 'a clock gone backwards: a new connection',
      syns: [
        ['in', A, 40000, B, 80, 5000],
        ['in', A, 40000, B, 80, 4000],
        ['in', A, 40000, B, 80, 4500],
      ],
      want: [false, false, true],
    },
    {
      name: 'another source port, destination port, direction or address is another connection',
      syns: [
        ['in', A, 40000, B, 80, 0],
        ['in', A, 40001, B, 80, 0],
        ['in', A, 40000, B, 81, 0],
        ['eg', A, 40000, B, 80, 0],
        ['in', B, 40000, A, 80, 0],
        ['in', A, 40000, A, 80, 0],
      ],
      want: [false, false, false, false, false, false],
    },
    {
      name: 'ports swapped are another connection',
      syns: [
        ['in', A, 80, B, 443, 0],
        ['in', A, 443, B, 80, 0],
      ],
      want: [false, false],
    },
    {
      name: 'absent ports (a cut-short header) and port 0 are kept apart',
      syns: [
        ['in', A, undefined, B, undefined, 0],
        ['in', A, 0, B, 0, 0],
        ['in', A, undefined, B, undefined, 1],
      ],
      want: [false, false, true],
    },
    {
      name: 'ports no kernel writes (over 65535, fractions) still fold, by their own keys',
      syns: [
        ['in', A, 70000, B, 80, 0],
        ['in', A, 70000, B, 80, 1],
        ['in', A, 1.5, B, 80, 1],
        ['in', A, 1.5, B, 80, 2],
      ],
      want: [false, true, false, true],
    },
    {
      name: 'past the bound the connection inserted longest ago is forgotten',
      max: 2,
      syns: [
        ['in', A, 1, B, 80, 0],
        ['in', A, 2, B, 80, 0],
        ['in', A, 3, B, 80, 0],
        ['in', A, 1, B, 80, 1],
        ['in', A, 3, B, 80, 1],
      ],
      want: [false, false, false, false, true],
    },
    {
      name: 'a connection inserted again (past its window) is the newest, not the oldest',
      max: 2,
      syns: [
        ['in', A, 1, B, 80, 0],
        ['in', A, 2, B, 80, 1],
        ['in', A, 1, B, 80, 70_000],
        ['in', A, 3, B, 80, 70_000],
        ['in', A, 1, B, 80, 70_001],
        ['in', A, 2, B, 80, 70_001],
      ],
      want: [false, false, false, false, true, false],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const s = new RepeatedSYNs(60_000, r.max ?? 65536);
      const ref = new Reference(60_000, r.max ?? 65536);
      assert.deepEqual(
        r.syns.map((x) => s.repeated(...x)),
        r.want,
      );
      assert.deepEqual(
        r.syns.map((x) => ref.repeated(...x)),
        r.want,
        'the reference says the same',
      );
    });
  }

  // The FIFO compacts and grows under these; every answer and the size must stay the reference's.
  const mixes: { name: string; max: number; ports: number; addrs: number; stepMs: number }[] = [
    { name: 'few connections, many retransmissions', max: 64, ports: 40, addrs: 2, stepMs: 10 },
    { name: 'more connections than the bound (evictions)', max: 100, ports: 3000, addrs: 4, stepMs: 5 },
    {
      name: 'windows expiring (re-insertions leave stale positions)',
      max: 5000,
      ports: 300,
      addrs: 3,
      stepMs: 400,
    },
    { name: 'a bound above the FIFO start size (it grows)', max: 4000, ports: 2000, addrs: 3, stepMs: 1 },
    { name: 'the bound at 1', max: 1, ports: 3, addrs: 2, stepMs: 20_000 },
  ];
  for (const m of mixes) {
    it(`as the string-keyed Map, 30,000 SYNs: ${m.name}`, () => {
      const s = new RepeatedSYNs(60_000, m.max);
      const ref = new Reference(60_000, m.max);
      let seed = 12345;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      let now = 1_000_000;
      for (let i = 0; i < 30_000; i++) {
        now += rnd(m.stepMs + 1) - (rnd(50) === 0 ? 2 * m.stepMs : 0);
        const syn: SYN = [
          rnd(2) === 0 ? 'in' : 'eg',
          `10.0.0.${rnd(m.addrs)}`,
          1024 + rnd(m.ports),
          `10.0.1.${rnd(m.addrs)}`,
          rnd(3) === 0 ? 443 : 80,
          now,
        ];
        assert.equal(s.repeated(...syn), ref.repeated(...syn), `SYN ${i}: ${syn.join(' ')}`);
        assert.equal(s.size, ref.size, `size after SYN ${i}`);
      }
    });
  }
});
