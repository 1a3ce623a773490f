import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { golden as goldenFile } from '../core/testing/golden.ts';
import {
  DropDeduper,
  formatPrefix,
  type KernelEvent,
  LineSplitter,
  parsePrefix,
  parseUlogdLine,
  ulogdConfig,
} from './nflog.ts';

const TESTDATA = join(import.meta.dirname, 'testdata');
const lines = (f: string): string[] => readFileSync(join(TESTDATA, f), 'utf8').split('\n').filter(Boolean);

const golden = (file: string, text: string): void => goldenFile(join(TESTDATA, file), text);

describe('parseUlogdLine on recorded ulogd2 2.0.8 lines', () => {
  it('every captured line parses to the golden events', () => {
    const events = lines('ulogd-samples.jsonl').map((l) => {
      const r = parseUlogdLine(l);
      assert.ok(r.ok, JSON.stringify(r));
      return r.event;
    });
    golden('ulogd-events.golden.json', `${JSON.stringify(events, null, 2)}\n`);
  });

  const expected: { name: string; line: number; check: Partial<KernelEvent> }[] = [
    {
      name: 'allowed tcp syn, ingress',
      line: 0,
      check: { verdict: 'fwd', dir: 'in', endpointId: 1234, proto: 6 },
    },
    { name: 'explicit deny tcp', line: 1, check: { verdict: 'deny', dport: 9090, tcpFlags: { SYN: true } } },
    { name: 'default deny udp', line: 3, check: { verdict: 'denied', proto: 17, sport: 54819, dport: 53 } },
    { name: 'icmp echo', line: 4, check: { proto: 1, icmp: { type: 8, code: 0 } } },
    {
      name: 'redirect, egress hook',
      line: 5,
      check: { verdict: 'redir', dir: 'eg', hook: 3, outDev: 'swt-vb' },
    },
  ];
  const all = lines('ulogd-samples.jsonl');
  for (const e of expected) {
    it(e.name, () => {
      const r = parseUlogdLine(all[e.line]!);
      assert.ok(r.ok);
      for (const [k, v] of Object.entries(e.check)) assert.deepEqual(r.event[k as keyof KernelEvent], v, k);
    });
  }

  it('time comes from oob.time with microseconds', () => {
    const r = parseUlogdLine(all[0]!);
    assert.ok(r.ok);
    assert.deepEqual(r.event.time, { seconds: 1795661882, nanos: 436128000 });
  });
});

// Issue 8 item 7: drops of other IP protocols and of cut-short headers were lines that did not
// parse (or events no record was made of). Captured from ulogd2 2.0.8 for raw packets sent
// through a `log group 1 ... drop` rule: IP protocol 0 with 8 bytes, a bare 20-byte IP header
// (mark 256), GRE with 4 bytes, TCP with 3 and 10 bytes, UDP with 4 bytes, ICMP with 2 bytes.
describe('item 7: other IP protocols and cut-short headers parse to events', () => {
  const all = lines('ulogd-truncated.jsonl');
  const rows: Array<{ name: string; want: Partial<KernelEvent> & { noPorts?: true } }> = [
    { name: 'IP protocol 0', want: { proto: 0, srcIP: '10.0.1.10', dstIP: '10.0.1.20', noPorts: true } },
    {
      name: 'bare IP header',
      want: { proto: -1, bare: true, srcIP: '', dstIP: '', mark: 256, noPorts: true },
    },
    { name: 'GRE', want: { proto: 47, srcIP: '10.0.1.10', noPorts: true } },
    { name: 'TCP, 3 of 20 header bytes', want: { proto: 6, noPorts: true } },
    { name: 'TCP, 10 of 20 header bytes', want: { proto: 6, noPorts: true } },
    { name: 'UDP, 4 of 8 header bytes', want: { proto: 17, noPorts: true } },
    { name: 'ICMP, 2 of 8 header bytes', want: { proto: 1, noPorts: true } },
  ];
  rows.forEach((r, i) => {
    it(r.name, () => {
      const p = parseUlogdLine(all[i]!);
      assert.ok(p.ok, JSON.stringify(p));
      const { noPorts, ...want } = r.want;
      assert.equal(p.event.verdict, 'denied');
      assert.equal(p.event.endpointId, 3);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(p.event[k as keyof KernelEvent], v, k);
      if (noPorts)
        assert.deepEqual(
          [p.event.sport, p.event.dport, p.event.tcpFlags, p.event.icmp],
          [undefined, undefined, undefined, undefined],
        );
    });
  });
  it('parses the spoof verdict', () =>
    assert.deepEqual(parsePrefix('sw/spoof/eg/9/'), { verdict: 'spoof', dir: 'eg', endpointId: 9 }));
  it('bare headers of different peers are different drops', () => {
    const d = new DropDeduper(1000);
    const p = parseUlogdLine(all[1]!);
    assert.ok(p.ok);
    assert.deepEqual(
      [d.admit(p.event), d.admit({ ...p.event, mark: 257 }), d.admit(p.event)],
      [true, true, false],
    );
  });
});

describe('parseUlogdLine skips bad lines with a code', () => {
  const codes = [
    'malformed-json', // truncated
    'malformed-json',
    'not-an-object',
    'foreign-prefix',
    'bad-prefix', // unknown verdict
    'bad-prefix', // unknown dir
    'bad-prefix', // non-numeric id
    'missing-field', // no src_ip
    'missing-field', // no time
    'missing-field', // no addresses, yet too long to be a bare IP header
  ];
  lines('ulogd-malformed.jsonl').forEach((l, i) => {
    it(`line ${i + 1}: ${codes[i]}`, () => {
      const r = parseUlogdLine(l);
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.code, codes[i]);
    });
  });
});

describe('prefix', () => {
  const rows = [
    { name: 'fwd in', p: 'sw/fwd/in/7/', out: { verdict: 'fwd', dir: 'in', endpointId: 7 } },
    { name: 'denied eg', p: 'sw/denied/eg/65535/', out: { verdict: 'denied', dir: 'eg', endpointId: 65535 } },
    { name: 'no trailing slash', p: 'sw/fwd/in/7', out: undefined },
    { name: 'too large id', p: 'sw/fwd/in/99999999999/', out: undefined },
    { name: 'extra part', p: 'sw/fwd/in/7/x/', out: undefined },
  ];
  for (const r of rows) it(r.name, () => assert.deepEqual(parsePrefix(r.p), r.out));
  it('round-trips formatPrefix', () =>
    assert.deepEqual(parsePrefix(formatPrefix('redir', 'eg', 42)), {
      verdict: 'redir',
      dir: 'eg',
      endpointId: 42,
    }));
});

describe('DropDeduper', () => {
  const base: KernelEvent = {
    time: { seconds: 100, nanos: 0 },
    verdict: 'deny',
    dir: 'in',
    endpointId: 1,
    srcIP: '10.0.0.1',
    dstIP: '10.0.0.2',
    proto: 6,
    sport: 1000,
    dport: 80,
  };
  const at = (ms: number, p: Partial<KernelEvent> = {}): KernelEvent => ({
    ...base,
    ...p,
    time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 },
  });
  const rows: { name: string; events: KernelEvent[]; window?: number; admitted: boolean[] }[] = [
    {
      name: 'same tuple within 1s suppressed',
      events: [at(0), at(500), at(999)],
      admitted: [true, false, false],
    },
    { name: 'same tuple after 1s admitted', events: [at(0), at(1000)], admitted: [true, true] },
    { name: 'other source port admitted', events: [at(0), at(10, { sport: 1001 })], admitted: [true, true] },
    {
      name: 'allows are never suppressed',
      events: [at(0, { verdict: 'fwd' }), at(1, { verdict: 'fwd' })],
      admitted: [true, true],
    },
    { name: 'window 0 keeps every packet', events: [at(0), at(1)], window: 0, admitted: [true, true] },
    {
      name: 'icmp keyed by type',
      events: [
        at(0, { proto: 1, icmp: { type: 8, code: 0 } }),
        at(1, { proto: 1, icmp: { type: 0, code: 0 } }),
      ],
      admitted: [true, true],
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const d = new DropDeduper(r.window ?? 1000);
      assert.deepEqual(
        r.events.map((e) => d.admit(e)),
        r.admitted,
      );
    });
  }
  it('memory stays bounded under a flood of distinct tuples', () => {
    const d = new DropDeduper(1000, 100);
    for (let i = 0; i < 10_000; i++) d.admit(at(i, { sport: i % 60000 }));
    assert.ok((d as unknown as { last: Map<string, number> }).last.size <= 100);
  });
});

describe('LineSplitter', () => {
  const rows = [
    { name: 'whole lines', chunks: ['a\nb\n'], out: ['a', 'b'] },
    { name: 'partial line waits', chunks: ['{"a":', '1}\n{"b"'], out: ['{"a":1}'] },
    { name: 'empty lines dropped', chunks: ['\n\nx\n'], out: ['x'] },
    {
      name: 'oversized line skipped',
      chunks: ['y'.repeat(50), 'y'.repeat(50), 'z\nok\n'],
      out: ['ok'],
      max: 64,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const s = new LineSplitter(r.max);
      assert.deepEqual(
        r.chunks.flatMap((c) => s.push(c)),
        r.out,
      );
    });
  }
});

describe('ulogdConfig', () => {
  it('matches the golden config', () => {
    golden(
      'ulogd.conf.golden',
      ulogdConfig({
        pluginDir: '/usr/lib/x86_64-linux-gnu/ulogd',
        jsonFile: '/run/sw/flows.json',
        logFile: '/run/sw/ulogd.log',
      }),
    );
  });
  it('refuses quotes in paths', () => {
    assert.throws(() => ulogdConfig({ pluginDir: '/x', jsonFile: '/a"b', logFile: '/l' }));
  });
});
