import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  ConntrackFile,
  findOriginalDst,
  OriginalDstCache,
  parseConntrack,
  parseConntrackLine,
} from './conntrack.ts';

const PROXY = { ip: '172.31.255.1', port: 15053 };
// as /proc/net/nf_conntrack prints them (a DNAT'd UDP query, a DNAT'd TCP query, a plain TCP
// connection, an ICMP echo, an IPv6 entry)
const TABLE = [
  'ipv4     2 udp      17 28 src=10.1.10.1 dst=10.1.10.2 sport=40001 dport=53 src=172.31.255.1 dst=10.1.10.1 sport=15053 dport=40001 mark=34 zone=0 use=2',
  'ipv4     2 tcp      6 117 TIME_WAIT src=10.1.10.1 dst=10.1.10.2 sport=40002 dport=53 src=172.31.255.1 dst=10.1.10.1 sport=15053 dport=40002 [ASSURED] mark=34 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.1.10.1 dst=10.1.20.1 sport=50000 dport=8443 src=10.1.20.1 dst=10.1.10.1 sport=8443 dport=50000 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 icmp     1 29 src=10.1.10.1 dst=10.1.20.1 type=8 code=0 id=7 src=10.1.20.1 dst=10.1.10.1 type=0 code=0 id=7 mark=0 zone=0 use=2',
  'ipv6     10 udp      17 20 src=fd00::1 dst=fd00::2 sport=1 dport=53 src=fd00::2 dst=fd00::1 sport=53 dport=1 mark=0 zone=0 use=2',
  // a port that is a prefix of another: 4000 must not match 40001's line
  'ipv4     2 udp      17 28 src=10.1.10.1 dst=10.1.10.9 sport=4000 dport=5353 [UNREPLIED] src=172.31.255.1 dst=10.1.10.1 sport=15053 dport=4000 mark=34 zone=0 use=2',
  '',
].join('\n');

describe('conntrack table', () => {
  it('parses TCP and UDP IPv4 entries with both tuples and the TCP state; skips the rest', () => {
    const es = parseConntrack(TABLE);
    assert.deepEqual(
      es.map(
        (e) =>
          `${e.proto} ${e.state || '-'} ${e.orig.src}:${e.orig.sport}>${e.orig.dst}:${e.orig.dport} mark ${e.mark}`,
      ),
      [
        'udp - 10.1.10.1:40001>10.1.10.2:53 mark 34',
        'tcp TIME_WAIT 10.1.10.1:40002>10.1.10.2:53 mark 34',
        'tcp ESTABLISHED 10.1.10.1:50000>10.1.20.1:8443 mark 0',
        'udp - 10.1.10.1:4000>10.1.10.9:5353 mark 34',
      ],
    );
    assert.equal(parseConntrackLine('garbage'), undefined);
    assert.equal(parseConntrackLine('ipv4 2 udp 17 28 src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2'), undefined);
  });

  const rows: Array<{
    name: string;
    proto: 'udp' | 'tcp';
    client: { ip: string; port: number };
    want: { ip: string; port: number } | undefined;
  }> = [
    {
      name: 'UDP query',
      proto: 'udp',
      client: { ip: '10.1.10.1', port: 40001 },
      want: { ip: '10.1.10.2', port: 53 },
    },
    {
      name: 'TCP query',
      proto: 'tcp',
      client: { ip: '10.1.10.1', port: 40002 },
      want: { ip: '10.1.10.2', port: 53 },
    },
    {
      name: 'the rule’s own port',
      proto: 'udp',
      client: { ip: '10.1.10.1', port: 4000 },
      want: { ip: '10.1.10.9', port: 5353 },
    },
    {
      name: 'wrong transport: none',
      proto: 'tcp',
      client: { ip: '10.1.10.1', port: 40001 },
      want: undefined,
    },
    {
      name: 'unknown client port: none',
      proto: 'udp',
      client: { ip: '10.1.10.1', port: 400 },
      want: undefined,
    },
    { name: 'another client: none', proto: 'udp', client: { ip: '10.1.10.7', port: 40001 }, want: undefined },
    {
      name: 'not DNAT’d to the proxy: none',
      proto: 'tcp',
      client: { ip: '10.1.10.1', port: 50000 },
      want: undefined,
    },
  ];
  for (const r of rows) {
    it(`original destination: ${r.name}`, () => {
      assert.deepEqual(findOriginalDst(TABLE, r.proto, r.client, PROXY), r.want);
    });
  }

  it('an open file is re-read from the start on every read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-ct-'));
    try {
      const f = join(dir, 'ct');
      writeFileSync(f, TABLE);
      const ct = new ConntrackFile(f).open();
      assert.equal(ct.read(), TABLE);
      writeFileSync(f, 'changed\n');
      assert.equal(ct.read(), 'changed\n');
      ct.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('OriginalDstCache', () => {
    const udp = (sport: number, dst: string, timeout: number): string =>
      `ipv4     2 udp      17 ${timeout} src=10.1.10.1 dst=${dst} sport=${sport} dport=53 src=172.31.255.1 dst=10.1.10.1 sport=15053 dport=${sport} mark=34 zone=0 use=2\n`;
    const rows: Array<{
      name: string;
      /** [ms since start, what the table says then, want] per lookup of client port 40001 */
      steps: Array<[number, string, string | undefined]>;
      reads: number;
    }> = [
      {
        name: 'a repeat within the entry’s life is answered without reading the table',
        steps: [
          [0, udp(40001, '10.1.10.2', 28), '10.1.10.2'],
          [1000, udp(40001, '10.1.10.2', 27), '10.1.10.2'],
          [4000, udp(40001, '10.1.10.2', 24), '10.1.10.2'],
        ],
        reads: 1,
      },
      {
        name: 'never kept past maxAgeMs (5 s): the table is read again',
        steps: [
          [0, udp(40001, '10.1.10.2', 28), '10.1.10.2'],
          [5000, udp(40001, '10.1.10.3', 29), '10.1.10.3'],
        ],
        reads: 2,
      },
      {
        name: 'never kept past the entry’s remaining timeout less a second: the port may mean another server then',
        steps: [
          [0, udp(40001, '10.1.10.2', 3), '10.1.10.2'],
          [2000, udp(40001, '10.1.10.9', 29), '10.1.10.9'],
        ],
        reads: 2,
      },
      {
        name: 'an entry about to go is not kept at all',
        steps: [
          [0, udp(40001, '10.1.10.2', 1), '10.1.10.2'],
          [1, udp(40001, '10.1.10.9', 29), '10.1.10.9'],
        ],
        reads: 2,
      },
      {
        name: 'nothing found is not kept: the next query reads again',
        steps: [
          [0, '', undefined],
          [1, udp(40001, '10.1.10.2', 28), '10.1.10.2'],
        ],
        reads: 2,
      },
    ];
    for (const r of rows) {
      it(r.name, () => {
        let now = 0;
        let text = '';
        const c = new OriginalDstCache(
          () => text,
          PROXY,
          () => now,
        );
        for (const [t, table, want] of r.steps) {
          now = t;
          text = table;
          assert.equal(c.lookup('udp', { ip: '10.1.10.1', port: 40001 })?.ip, want, `at ${t} ms`);
        }
        assert.equal(c.reads, r.reads);
      });
    }

    it('keyed by transport, address and port', () => {
      const c = new OriginalDstCache(
        () => TABLE,
        PROXY,
        () => 0,
      );
      assert.equal(c.lookup('udp', { ip: '10.1.10.1', port: 40001 })?.ip, '10.1.10.2');
      assert.equal(c.lookup('tcp', { ip: '10.1.10.1', port: 40001 }), undefined);
      assert.equal(c.lookup('udp', { ip: '10.1.10.1', port: 4000 })?.port, 5353);
    });

    it('bounded: past maxEntries the oldest half goes', () => {
      let text = '';
      const c = new OriginalDstCache(
        () => text,
        PROXY,
        () => 0,
        5000,
        4,
      );
      for (let p = 1; p <= 9; p++) {
        text = udp(p, '10.1.10.2', 28);
        c.lookup('udp', { ip: '10.1.10.1', port: p });
      }
      assert.ok(c.size <= 4, `${c.size} kept`);
    });
  });
});
