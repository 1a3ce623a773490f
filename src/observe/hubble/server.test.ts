// The Observer service through a real gRPC client (grpc-js + proto-loader from the same .proto
// files) on a temp unix socket and on 127.0.0.1: filters, number/first, since/until, follow,
// ServerStatus, GetNodes, lost events when a follower falls a ring behind, and the wire round trip.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Flow } from '../../flow/types.ts';
import { connectHubble, type HubbleClient } from './client.ts';
import { type HubbleServerHandle, startHubbleServer } from './server.ts';
import { corpus, ringOf, tempDir } from './testing.ts';

const named = corpus();
const nameOf = new Map(named.map(([n, f]) => [f.uuid, n]));
const names = (rs: Record<string, unknown>[]): string[] =>
  rs.filter((r) => r.flow !== undefined).map((r) => nameOf.get((r.flow as Flow).uuid) ?? '?');

const ALL = named.map(([n]) => n);
const [A, B, C, D, E, F, G, H, I, J] = ALL as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const but = (...xs: string[]): string[] => ALL.filter((n) => !xs.includes(n));

describe('Hubble Observer over gRPC', () => {
  const tmp = tempDir();
  const ring = ringOf(named.map(([, f]) => f));
  let server: HubbleServerHandle;
  let unix: HubbleClient;
  let tcp: HubbleClient;

  before(async () => {
    server = await startHubbleServer(
      { ring, nodeName: 'node-1', version: 'seawall-test', startedAt: Date.now() - 1500 },
      { unixSocket: join(tmp.dir, 'hubble.sock'), tcpAddress: '127.0.0.1:0' },
    );
    unix = connectHubble(`unix://${server.unixSocket}`);
    tcp = connectHubble(server.tcpAddress!);
  });
  after(async () => {
    unix?.close();
    tcp?.close();
    await server?.close();
    tmp.remove();
  });

  describe('filters (whitelist − blacklist)', () => {
    const rows: { name: string; whitelist?: object[]; blacklist?: object[]; want: string[] }[] = [
      { name: 'no filter: every flow', want: ALL },
      { name: 'verdict DROPPED', whitelist: [{ verdict: ['DROPPED'] }], want: [B, C, D] },
      {
        name: 'source_pod namespace/prefix',
        whitelist: [{ source_pod: ['production/front'] }],
        want: but(H),
      },
      {
        name: 'destination_pod without namespace: any namespace',
        whitelist: [{ destination_pod: ['back'] }],
        want: [A, B, G, J],
      },
      {
        name: 'destination_pod namespace only',
        whitelist: [{ destination_pod: ['kube-system/'] }],
        want: [F],
      },
      { name: 'source_ip exact', whitelist: [{ source_ip: ['10.0.1.20'] }], want: [H] },
      { name: 'destination_ip CIDR', whitelist: [{ destination_ip: ['203.0.113.0/24'] }], want: [C, D] },
      {
        name: 'destination_ip two CIDRs (OR)',
        whitelist: [{ destination_ip: ['203.0.113.0/24', '198.51.100.0/24'] }],
        want: [C, D, E, I],
      },
      {
        name: 'destination_label reserved:world',
        whitelist: [{ destination_label: ['reserved:world'] }],
        want: [C, D, E, I],
      },
      {
        name: 'destination_label CIDR label',
        whitelist: [{ destination_label: ['cidr:203.0.113.0/24'] }],
        want: [C, D],
      },
      {
        name: 'source_label set selector',
        whitelist: [{ source_label: ['k8s:app in (backend, db)'] }],
        want: [H],
      },
      {
        name: 'source_label any source, and not-exists',
        whitelist: [{ source_label: ['app=frontend,!foo'] }],
        want: but(H),
      },
      { name: 'source_label !=', whitelist: [{ source_label: ['app!=frontend'] }], want: [H] },
      { name: 'destination_identity', whitelist: [{ destination_identity: [16777217] }], want: [C, D] },
      { name: 'source_identity', whitelist: [{ source_identity: [1002] }], want: [H] },
      { name: 'destination_fqdn pattern', whitelist: [{ destination_fqdn: ['*.github.com'] }], want: [I] },
      {
        name: 'verdict AND traffic_direction',
        whitelist: [{ verdict: ['FORWARDED'], traffic_direction: ['EGRESS'] }],
        want: [E, F, I],
      },
      { name: 'event_type 129 (access log)', whitelist: [{ event_type: [{ type: 129 }] }], want: [F, G, H] },
      {
        name: 'event_type 5 with sub_type 0',
        whitelist: [{ event_type: [{ type: 5, match_sub_type: true, sub_type: 0 }] }],
        want: [A, B, C, D, E, I, J],
      },
      { name: 'protocol udp', whitelist: [{ protocol: ['udp'] }], want: [C, D, F] },
      { name: 'protocol icmp (v4 or v6)', whitelist: [{ protocol: ['ICMP'] }], want: [B, E, I] },
      { name: 'protocol http', whitelist: [{ protocol: ['http'] }], want: [G, H] },
      { name: 'protocol dns', whitelist: [{ protocol: ['dns'] }], want: [F] },
      { name: 'destination_port', whitelist: [{ destination_port: ['53'] }], want: [C, D, F] },
      { name: 'source_port', whitelist: [{ source_port: ['40000'] }], want: [A, J] },
      { name: 'http_status_code 4+', whitelist: [{ http_status_code: ['4+'] }], want: [H] },
      { name: 'http_status_code exact', whitelist: [{ http_status_code: ['404'] }], want: [H] },
      { name: 'http_status_code 2+: none', whitelist: [{ http_status_code: ['2+'] }], want: [] },
      { name: 'http_method, any case', whitelist: [{ http_method: ['get'] }], want: [G, H] },
      {
        name: 'http_path RE2 on the path only',
        whitelist: [{ http_path: ['^/api/v[0-9]+/items$'] }],
        want: [G, H],
      },
      { name: 'http_path query is not the path', whitelist: [{ http_path: ['page=2'] }], want: [] },
      { name: 'drop_reason_desc', whitelist: [{ drop_reason_desc: ['POLICY_DENY'] }], want: [D] },
      { name: 'tcp_flags SYN', whitelist: [{ tcp_flags: [{ SYN: true }] }], want: [A, J] },
      {
        name: 'tcp_flags SYN+ACK needs both',
        whitelist: [{ tcp_flags: [{ SYN: true, ACK: true }] }],
        want: [J],
      },
      { name: 'node_name exact', whitelist: [{ node_name: ['node-2'] }], want: [I] },
      { name: 'node_name glob', whitelist: [{ node_name: ['node-*'] }], want: ALL },
      { name: 'reply true', whitelist: [{ reply: [true] }], want: [H, J] },
      { name: 'ip_version', whitelist: [{ ip_version: ['IPv6'] }], want: [] },
      { name: 'uuid', whitelist: [{ uuid: ['00000000-0000-4000-8000-000000000004'] }], want: [D] },
      {
        name: 'two whitelist filters: either',
        whitelist: [{ verdict: ['DROPPED'] }, { protocol: ['http'] }],
        want: [B, C, D, G, H],
      },
      { name: 'blacklist only', blacklist: [{ protocol: ['icmp'] }], want: [A, C, D, F, G, H, J] },
      {
        name: 'whitelist minus blacklist',
        whitelist: [{ verdict: ['DROPPED'] }],
        blacklist: [{ drop_reason_desc: ['POLICY_DENY'] }],
        want: [B, C],
      },
      {
        name: 'filters on fields Seawall never sets match nothing',
        whitelist: [{ trace_id: ['abc'] }],
        want: [],
      },
    ];
    for (const r of rows) {
      it(r.name, async () => {
        const got = await unix.getFlows({ whitelist: r.whitelist ?? [], blacklist: r.blacklist ?? [] });
        assert.deepEqual(names(got), r.want);
      });
    }

    it('a bad filter value is INVALID_ARGUMENT naming the field', async () => {
      await assert.rejects(
        unix.getFlows({ whitelist: [{ destination_ip: ['10.0.0.0/33'] }] }),
        (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
          assert.match(
            e.details,
            /FlowFilter\.destination_ip: "10\.0\.0\.0\/33" is not an IP address or CIDR/,
          );
          return true;
        },
      );
    });
  });

  it('every flow survives the wire: protojson → protobuf → protojson is the record', async () => {
    const got = await tcp.getFlows({});
    assert.equal(got.length, named.length);
    for (const [i, r] of got.entries()) {
      const [name, flow] = named[i]!;
      assert.deepEqual(r.flow, flow, name);
      assert.equal(r.node_name, flow.node_name);
      assert.equal(r.time, flow.time);
    }
  });

  describe('number, first, since, until', () => {
    const rows: { name: string; req: Record<string, unknown>; want: string[] }[] = [
      { name: 'number: the last N', req: { number: 2 }, want: [I, J] },
      {
        name: 'number counts matching flows',
        req: { number: 2, whitelist: [{ verdict: ['DROPPED'] }] },
        want: [C, D],
      },
      { name: 'first + number: the first N', req: { number: 3, first: true }, want: [A, B, C] },
      { name: 'first without number: all', req: { first: true }, want: ALL },
      { name: 'number above what is held', req: { number: 100 }, want: ALL },
      { name: 'since (inclusive)', req: { since: { seconds: at(H), nanos: 0 } }, want: [H, I, J] },
      { name: 'until (inclusive)', req: { until: { seconds: at(B), nanos: 0 } }, want: [A, B] },
      {
        name: 'since and until',
        req: { since: { seconds: at(C) }, until: { seconds: at(D), nanos: 1 } },
        want: [C, D],
      },
      { name: 'since, nanosecond after', req: { since: { seconds: at(I), nanos: 1 } }, want: [J] },
    ];
    for (const r of rows) {
      it(r.name, async () => assert.deepEqual(names(await unix.getFlows(r.req)), r.want));
    }
    it('first with follow is INVALID_ARGUMENT', async () => {
      await assert.rejects(unix.getFlows({ first: true, follow: true }), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
        return true;
      });
    });
    it('until before since is INVALID_ARGUMENT', async () => {
      await assert.rejects(
        unix.getFlows({ since: { seconds: at(D) }, until: { seconds: at(C) } }),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT,
      );
    });
  });

  it('follow: the last flow, then one pushed after subscribing, then cancel', async () => {
    const pushed: Flow = {
      ...named[0]![1],
      uuid: '00000000-0000-4000-8000-0000000000f1',
      time: '2025-01-02T03:05:00Z',
    };
    nameOf.set(pushed.uuid, 'pushed');
    const ac = new AbortController();
    const got = await unix.getFlows(
      { number: 1, follow: true, whitelist: [{ source_pod: ['production/frontend'] }] },
      {
        signal: ac.signal,
        onResponse: (r) => {
          const uuid = (r.flow as Flow).uuid;
          if (uuid === named[9]![1].uuid) {
            // a flow the filter drops, then one it passes
            ring.push({ flow: { ...named[7]![1], uuid: 'x' }, node_name: 'node-1', time: pushed.time });
            ring.push({ flow: pushed, node_name: 'node-1', time: pushed.time });
          } else ac.abort();
        },
      },
    );
    assert.deepEqual(names(got), [J, 'pushed']);
    await waitFor(() => server.stats.activeStreams === 0);
  });

  it('ServerStatus counts the ring (unix and TCP)', async () => {
    for (const c of [unix, tcp]) {
      const s = await c.serverStatus();
      assert.equal(s.num_flows, String(ring.size));
      assert.equal(s.max_flows, '4095');
      assert.equal(s.seen_flows, String(ring.seen));
      assert.equal(s.version, 'seawall-test');
      assert.ok(BigInt(s.uptime_ns as string) >= 1_500_000_000n, `uptime ${s.uptime_ns}`);
    }
  });

  it('GetNodes: this node', async () => {
    const r = (await unix.getNodes()) as { nodes: Record<string, unknown>[] };
    assert.equal(r.nodes.length, 1);
    const n = r.nodes[0]!;
    assert.equal(n.name, 'node-1');
    assert.equal(n.state, 'NODE_CONNECTED');
    assert.equal(n.version, 'seawall-test');
    assert.equal(n.max_flows, '4095');
    assert.equal(n.seen_flows, String(ring.seen));
    assert.equal(n.address, server.tcpAddress);
  });

  it('Peer.Notify: this node added, then the stream stays open (unix and TCP)', async () => {
    for (const c of [unix, tcp]) {
      const s = c.notify();
      const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
        s.once('data', resolve);
        s.once('error', reject);
      });
      assert.deepEqual(first, { name: 'node-1', address: server.tcpAddress, type: 'PEER_ADDED' });
      const ended = await Promise.race([
        new Promise((r) => s.once('end', () => r('ended'))),
        new Promise((r) => setTimeout(() => r('open'), 200)),
      ]);
      assert.equal(ended, 'open');
      s.on('error', () => {});
      s.cancel();
    }
  });

  it('a method Seawall does not serve is UNIMPLEMENTED', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve) => {
      const s = unix.stub.makeServerStreamRequest(
        '/observer.Observer/GetAgentEvents',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
      );
      s.on('data', () => {});
      s.on('error', resolve);
    });
    assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  });
});

describe('lost events when the ring wraps', () => {
  it('a follower a ring behind gets a LostEvent with the count, then the flows still held', async () => {
    const tmp = tempDir();
    const ring = ringOf([], 7);
    const server = await startHubbleServer(
      { ring, nodeName: 'node-1' },
      { unixSocket: join(tmp.dir, 'h.sock') },
    );
    const c = connectHubble(`unix://${server.unixSocket}`);
    try {
      const base = named[0]![1];
      const ac = new AbortController();
      const got: Record<string, unknown>[] = [];
      const done = c.getFlows(
        { follow: true },
        {
          signal: ac.signal,
          onResponse: (r) => {
            got.push(r);
            if (got.length === 8) ac.abort();
          },
        },
      );
      await waitFor(() => server.stats.activeStreams === 1);
      // 20 pushes before the reader runs: 13 are overwritten
      for (let i = 0; i < 20; i++) {
        ring.push({ flow: { ...base, uuid: `u${i}` }, node_name: 'node-1', time: base.time });
      }
      await done;
      assert.deepEqual(got[0]!.lost_events, { source: 'HUBBLE_RING_BUFFER', num_events_lost: '13' });
      assert.deepEqual(
        got.slice(1).map((r) => (r.flow as Flow).uuid),
        ['u13', 'u14', 'u15', 'u16', 'u17', 'u18', 'u19'],
      );
      assert.equal(server.stats.lostEvents, 13);
      assert.equal(ring.lost, 13);
      const s = await c.serverStatus();
      assert.deepEqual([s.num_flows, s.max_flows, s.seen_flows], ['7', '7', '20']);
    } finally {
      c.close();
      await server.close();
      tmp.remove();
    }
  });
});

describe('batched writes', () => {
  // A follower's flows go out several per HTTP/2 write (framed bytes straight onto grpc-js's
  // stream); with batchWrites false, one grpc-js write per flow. The client sees the same answers.
  const rows = [
    { name: 'batched (default): fewer writes than flows', batchWrites: undefined, batched: 1 },
    { name: 'batchWrites false: one write per flow', batchWrites: false, batched: 0 },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const tmp = tempDir();
      // 1,200 flows: several 64 KiB batches, and more than grpc-js buffers before write() says false
      const many = Array.from({ length: 1200 }, (_, i) => ({
        ...named[i % named.length]![1],
        uuid: `u${i}`,
      }));
      const ring = ringOf(many);
      const server = await startHubbleServer(
        { ring, nodeName: 'node-1', ...(r.batchWrites !== undefined ? { batchWrites: r.batchWrites } : {}) },
        { unixSocket: join(tmp.dir, 'h.sock') },
      );
      const c = connectHubble(`unix://${server.unixSocket}`);
      try {
        const got = await c.getFlows({});
        assert.deepEqual(
          got.map((x) => (x.flow as Flow).uuid),
          many.map((f) => f.uuid),
        );
        assert.deepEqual(got.at(-1)!.flow, many.at(-1));
        assert.equal(server.stats.batchedStreams, r.batched);
        assert.equal(server.stats.sentFlows, 1200);
        if (r.batched) assert.ok(server.stats.writes < 1200 / 50, `${server.stats.writes} writes`);
        else assert.equal(server.stats.writes, 1200);
        // and a follower: the flows still held, then one pushed later
        const ac = new AbortController();
        const seen: string[] = [];
        const done = c.getFlows(
          { follow: true, number: 2 },
          {
            signal: ac.signal,
            onResponse: (x) => {
              seen.push((x.flow as Flow).uuid);
              if (seen.length === 3) ac.abort();
            },
          },
        );
        await waitFor(() => server.stats.activeStreams === 1);
        await waitFor(() => seen.length === 2);
        const late = { ...many[0]!, uuid: 'late' };
        ring.push({ flow: late, node_name: 'node-1', time: late.time });
        await done;
        assert.deepEqual(seen, ['u1198', 'u1199', 'late']);
      } finally {
        c.close();
        await server.close();
        tmp.remove();
      }
    });
  }
});

describe('a slow follower', () => {
  it('loses flows (counted) without slowing the ring or the other follower', async () => {
    const tmp = tempDir();
    const ring = ringOf([], 255);
    const server = await startHubbleServer(
      { ring, nodeName: 'node-1' },
      { unixSocket: join(tmp.dir, 'h.sock') },
    );
    // raw clients with grpc-js's 64 KiB window: the paused one's stream fills within a few batches.
    // One connection each, as two hubble processes have (streams of one connection share its window).
    const clients: grpc.Client[] = [];
    const follow = (): { flows: number; lost: number; call: grpc.ClientReadableStream<Buffer> } => {
      const f = { flows: 0, lost: 0, call: undefined as unknown as grpc.ClientReadableStream<Buffer> };
      const client = new grpc.Client(`unix://${server.unixSocket}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      });
      clients.push(client);
      // GetFlowsRequest{follow: true}: field 3, varint 1
      f.call = client.makeServerStreamRequest(
        '/observer.Observer/GetFlows',
        () => Buffer.from([0x18, 1]),
        (b: Buffer) => b,
        {},
      );
      // GetFlowsResponse: field 1 (flow) is tag 0x0a, field 3 (lost_events) 0x1a
      f.call.on('data', (b: Buffer) => (b[0] === 0x0a ? f.flows++ : f.lost++));
      f.call.on('error', () => {});
      return f;
    };
    const fast = follow();
    const slow = follow();
    try {
      await waitFor(() => server.stats.activeStreams === 2);
      slow.call.pause();
      const base = named[0]![1];
      const total = 3000;
      for (let i = 0; i < total; i++) {
        ring.push({ flow: { ...base, uuid: `u${i}` }, node_name: 'node-1', time: base.time });
        // 100 at a time (less than the ring holds), each chunk read by the fast follower before the next
        if (i % 100 === 99)
          await waitFor(
            () => fast.flows === i + 1,
            10_000,
            () => `fast: ${fast.flows} of ${i + 1}`,
          );
      }
      assert.equal(fast.lost, 0, 'the follower that reads loses nothing');
      assert.equal(ring.seen, total);
      slow.call.resume();
      await waitFor(
        () => slow.lost > 0 && server.stats.sentFlows >= total + slow.flows,
        10_000,
        () => `slow follower: ${slow.flows} flows, ${slow.lost} lost events; ${JSON.stringify(server.stats)}`,
      );
      assert.ok(slow.flows < total, `the paused follower got ${slow.flows}`);
      assert.ok(server.stats.lostEvents > 0 && server.stats.lostEvents <= total - slow.flows);
    } finally {
      fast.call.cancel();
      slow.call.cancel();
      for (const c of clients) c.close();
      await server.close();
      tmp.remove();
    }
  });
});

describe('startHubbleServer', () => {
  it('needs somewhere to listen', async () => {
    await assert.rejects(startHubbleServer({ ring: ringOf([]), nodeName: 'n' }, {}), /give a unixSocket/);
  });
  it('a taken TCP port is a clear error and leaves no socket behind', async () => {
    const tmp = tempDir();
    const first = await startHubbleServer({ ring: ringOf([]), nodeName: 'n' }, { tcpAddress: '127.0.0.1:0' });
    try {
      const sock = join(tmp.dir, 'x.sock');
      await assert.rejects(
        startHubbleServer(
          { ring: ringOf([]), nodeName: 'n' },
          { unixSocket: sock, tcpAddress: first.tcpAddress! },
        ),
        /cannot listen on 127\.0\.0\.1:\d+/,
      );
      const { existsSync } = await import('node:fs');
      assert.equal(existsSync(sock), false);
    } finally {
      await first.close();
      tmp.remove();
    }
  });
});

function at(name: string): number {
  const f = named.find(([n]) => n === name)![1];
  return Date.parse(f.time) / 1000;
}

async function waitFor(cond: () => boolean, ms = 10_000, what = (): string => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
