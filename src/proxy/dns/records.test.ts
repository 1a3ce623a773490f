import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import type { FlowEndpoint } from '../../flow/types.ts';
import { encode, type ProxyMessage } from '../ipc.ts';
import {
  DNSFlowExpander,
  dnsFlowMessage,
  type ExpandableShape,
  expandableShape,
  expandDNSFlow,
} from './compact.ts';
import type { QuerySource, RedirectContext } from './proxy.ts';
import { DNSRecordMessages, type DNSRecordParts, dnsRecord, MAX_SHAPES_PER_PAIR } from './records.ts';
import { query } from './testing/upstream.ts';
import { type ParsedAnswer, parseAnswer, parseQuery } from './wire.ts';

const NODE = 'node-1';
const TIME = new Date('2026-12-01T20:00:00.123Z');

const client: FlowEndpoint = {
  ID: 7,
  identity: 1234,
  labels: ['k8s:app=app', 'k8s:io.kubernetes.pod.namespace=prod'],
  cluster_name: 'default',
  namespace: 'prod',
  pod_name: 'app',
};
const server: FlowEndpoint = {
  ID: 9,
  identity: 5678,
  labels: ['k8s:io.kubernetes.pod.namespace=kube-system', 'k8s:k8s-app=kube-dns'],
  namespace: 'kube-system',
  pod_name: 'coredns',
};

function ctx(
  o: { serverIP?: string; clientFlow?: FlowEndpoint; serverFlow?: FlowEndpoint } = {},
): RedirectContext {
  const c: RedirectContext = {
    endpoint: { key: 'prod/app', identity: 1234 },
    server: { ip: o.serverIP ?? '10.0.0.10', port: 53, identity: 5678 },
    rules: [],
  };
  if (o.clientFlow !== null) c.endpoint.flow = o.clientFlow ?? client;
  if (o.serverFlow !== null) c.server.flow = o.serverFlow ?? server;
  return c;
}

function src(transport: 'udp' | 'tcp' = 'udp', clientIP = '10.0.1.5', clientPort = 40123): QuerySource {
  return { transport, clientIP, clientPort, localIP: '10.0.0.1', localPort: 15053 };
}

type Answer = Parameters<typeof dnsPacket.encode>[0]['answers'];

/** The query for `name` and the parsed answer a server would give with these records and rcode. */
function exchange(name: string, qtype: 'A' | 'AAAA', answers: Answer, rcode = 'NOERROR') {
  const raw = query(name, qtype, 0x4242);
  const q = parseQuery(raw, 4096);
  const resp = dnsPacket.encode({
    id: 0x4242,
    type: 'response',
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    rcode,
    questions: [{ type: qtype, name, class: 'IN' }],
    answers: answers ?? [],
  } as dnsPacket.Packet);
  return { q, a: parseAnswer(resp, q, 65535, raw) };
}

const plain = exchange('api.example.com', 'A', [
  { type: 'A', name: 'api.example.com', ttl: 300, data: '203.0.113.10' },
]);
const chain = exchange('img.cdn.example.net', 'A', [
  { type: 'CNAME', name: 'img.cdn.example.net', ttl: 600, data: 'edge.Provider.example' },
  { type: 'CNAME', name: 'edge.provider.example', ttl: 60, data: 'pop1.provider.example' },
  { type: 'A', name: 'pop1.provider.example', ttl: 120, data: '198.51.100.7' },
  { type: 'AAAA', name: 'pop1.provider.example', ttl: 90, data: '2001:db8::7' },
]);
const aaaa = exchange('v6.example.com', 'AAAA', [
  { type: 'AAAA', name: 'v6.example.com', ttl: 30, data: '2001:db8::1' },
]);
const nx = exchange('gone.example.com', 'A', [], 'NXDOMAIN');
const servfail = exchange('broken.example.com', 'A', [], 'SERVFAIL');
const zeroTTL = exchange('zero.example.com', 'A', [
  { type: 'A', name: 'zero.example.com', ttl: 0, data: '192.0.2.1' },
]);
const escaped = exchange('we"ird\\name.example.com', 'A', [
  { type: 'A', name: 'we"ird\\name.example.com', ttl: 5, data: '192.0.2.2' },
]);

const req = (q: DNSRecordParts['q'], verdict: 'FORWARDED' | 'DROPPED' = 'FORWARDED') =>
  ({ q, type: 'REQUEST', verdict }) as const;
const resp = (x: { q: DNSRecordParts['q']; a: ParsedAnswer }, latencyNs?: number) =>
  ({
    q: x.q,
    a: x.a,
    type: 'RESPONSE',
    verdict: 'FORWARDED',
    ...(latencyNs !== undefined ? { latencyNs } : {}),
  }) as const;

/** One row per record shape the proxy makes. */
const ROWS: Array<{ name: string; parts: Omit<DNSRecordParts, 'time' | 'uuid'> }> = [
  { name: 'query, forwarded', parts: { ctx: ctx(), src: src(), ...req(plain.q) } },
  { name: 'query, refused (DROPPED request)', parts: { ctx: ctx(), src: src(), ...req(plain.q, 'DROPPED') } },
  { name: 'answer, one A', parts: { ctx: ctx(), src: src(), ...resp(plain, 812_345.6) } },
  {
    name: 'answer, CNAME chain with A and AAAA',
    parts: { ctx: ctx(), src: src(), ...resp(chain, 1_000_000) },
  },
  { name: 'AAAA query', parts: { ctx: ctx(), src: src(), ...req(aaaa.q) } },
  { name: 'AAAA answer', parts: { ctx: ctx(), src: src(), ...resp(aaaa, 2_000) } },
  { name: 'NXDOMAIN answer (rcode, no ips)', parts: { ctx: ctx(), src: src(), ...resp(nx, 5_000) } },
  { name: 'SERVFAIL from the server', parts: { ctx: ctx(), src: src(), ...resp(servfail, 5_000) } },
  { name: 'TTL 0 and latency 0 (both left out)', parts: { ctx: ctx(), src: src(), ...resp(zeroTTL, 0) } },
  { name: 'no latency measured', parts: { ctx: ctx(), src: src(), ...resp(plain) } },
  { name: 'TCP query', parts: { ctx: ctx(), src: src('tcp'), ...req(plain.q) } },
  { name: 'TCP answer', parts: { ctx: ctx(), src: src('tcp'), ...resp(plain, 10) } },
  {
    name: 'IPv6 client and server',
    parts: { ctx: ctx({ serverIP: 'fd00::a' }), src: src('udp', 'fd00::5', 5353), ...resp(aaaa, 77) },
  },
  { name: 'name with quote and backslash (escaped)', parts: { ctx: ctx(), src: src(), ...resp(escaped, 9) } },
  {
    // malformed answers are dropped and counted: the query's record is all there is
    name: 'query whose answer was malformed (request only)',
    parts: { ctx: ctx(), src: src('udp', '10.0.1.5', 1), ...req(nx.q) },
  },
  {
    name: 'server without a flow endpoint (slow path)',
    parts: { ctx: ctx({ serverFlow: null as unknown as FlowEndpoint }), src: src(), ...resp(plain, 3) },
  },
  {
    name: 'client without a flow endpoint (slow path)',
    parts: { ctx: ctx({ clientFlow: null as unknown as FlowEndpoint }), src: src(), ...req(plain.q) },
  },
];

const UUID = 'a6c8d5e0-1111-4222-8333-944455556666';

/** What the agent makes of the lines (agent/proxy.ts: shapes kept, records expanded), encoded. */
function viaAgent(text: string, shapes: Map<number, ExpandableShape>): { out: string; kinds: string[] } {
  let out = '';
  const kinds: string[] = [];
  for (const l of text.split('\n').filter((x) => x !== '')) {
    const m = JSON.parse(l) as ProxyMessage;
    kinds.push(m.type);
    if (m.type === 'dns-shape') shapes.set(m.id, expandableShape(m.shape));
    else if (m.type === 'dns-flow')
      out += encode({ type: 'flow', flow: expandDNSFlow(shapes.get(m.v[0])!, m, UUID) });
    else if (m.type === 'flow') out += encode(m);
  }
  return { out, kinds };
}

describe('DNS records: compact messages, expanded by the agent, equal the record object encoded', () => {
  for (const row of ROWS) {
    test(row.name, () => {
      const msgs = new DNSRecordMessages(NODE);
      const shapes = new Map<number, ExpandableShape>();
      const p: DNSRecordParts = { ...row.parts, time: TIME, uuid: UUID };
      const slow = encode({ type: 'flow', flow: dnsRecord(p, NODE) });
      const full = row.name.includes('slow path');
      // twice: the shape announced with the first record, then only the record
      const first = viaAgent(msgs.line(p), shapes);
      assert.equal(first.out, slow);
      assert.deepEqual(first.kinds, full ? ['flow'] : ['dns-shape', 'dns-flow']);
      const again = viaAgent(msgs.line(p), shapes);
      assert.equal(again.out, slow);
      assert.deepEqual(again.kinds, full ? ['flow'] : ['dns-flow']);
    });
  }

  test('one builder for every row, twice over (its caches by shape, question and answer): each record as the slow path', () => {
    const msgs = new DNSRecordMessages(NODE);
    const shapes = new Map<number, ExpandableShape>();
    for (let round = 0; round < 2; round++)
      for (const row of ROWS) {
        const p: DNSRecordParts = { ...row.parts, time: TIME, uuid: UUID };
        assert.equal(
          viaAgent(msgs.line(p), shapes).out,
          encode({ type: 'flow', flow: dnsRecord(p, NODE) }),
          row.name,
        );
      }
  });

  test('varying fields change with each record, the shape is built once', () => {
    const m = new DNSRecordMessages(NODE);
    const sh = new Map<number, ExpandableShape>();
    const a = viaAgent(m.line({ ...ROWS[2]!.parts, time: TIME }), sh).out;
    const b = viaAgent(
      m.line({ ...ROWS[2]!.parts, src: src('udp', '10.0.1.5', 40999), time: new Date(TIME.getTime() + 1) }),
      sh,
    ).out;
    assert.equal(m.built, 1);
    const fa = JSON.parse(a).flow;
    const fb = JSON.parse(b).flow;
    assert.equal(fa.time, '2026-12-01T20:00:00.123Z');
    assert.equal(fb.time, '2026-12-01T20:00:00.124Z');
    assert.deepEqual([fa.l4.UDP.destination_port, fb.l4.UDP.destination_port], [40123, 40999]);
  });

  test('new mirror objects (a snapshot or delta) get a new shape: a changed label shows', () => {
    const m = new DNSRecordMessages(NODE);
    const sh = new Map<number, ExpandableShape>();
    const base = ROWS[0]!.parts;
    viaAgent(m.line({ ...base, time: TIME }), sh);
    const relabelled = { ...client, labels: ['k8s:app=renamed', 'k8s:io.kubernetes.pod.namespace=prod'] };
    const p = { ...base, ctx: ctx({ clientFlow: relabelled }), time: TIME, uuid: UUID };
    const { out, kinds } = viaAgent(m.line(p), sh);
    assert.equal(m.built, 2);
    assert.deepEqual(kinds, ['dns-shape', 'dns-flow']);
    assert.equal(out, encode({ type: 'flow', flow: dnsRecord(p, NODE) }));
    assert.deepEqual(JSON.parse(out).flow.source.labels, relabelled.labels);
  });

  test('after a loss every shape is announced again', () => {
    const m = new DNSRecordMessages(NODE);
    const p = { ...ROWS[0]!.parts, time: TIME };
    const kinds = () => (m.line(p).match(/"type":"[a-z-]+"/g) ?? []).join(' ');
    assert.equal(kinds(), '"type":"dns-shape" "type":"dns-flow"');
    assert.equal(kinds(), '"type":"dns-flow"');
    m.lost();
    assert.equal(kinds(), '"type":"dns-shape" "type":"dns-flow"');
    assert.equal(kinds(), '"type":"dns-flow"');
  });

  test(`at most ${MAX_SHAPES_PER_PAIR} shapes per endpoint pair, and still right past it`, () => {
    const m = new DNSRecordMessages(NODE);
    const sh = new Map<number, ExpandableShape>();
    for (let i = 0; i < MAX_SHAPES_PER_PAIR * 2 + 3; i++) {
      const p = {
        ...ROWS[0]!.parts,
        ctx: ctx({ serverIP: `10.9.${i >> 8}.${i & 255}` }),
        time: TIME,
        uuid: UUID,
      };
      assert.equal(viaAgent(m.line(p), sh).out, encode({ type: 'flow', flow: dnsRecord(p, NODE) }));
    }
    assert.equal(m.built, MAX_SHAPES_PER_PAIR * 2 + 3);
  });
});

describe('DNS records: a bounded agent never loses a shape in use', () => {
  // 6 shapes used in turn, more than the agent keeps (4): the proxy re-announces often enough
  // only when its announcements per epoch are bounded at half the agent's shapes
  const rows = [
    { name: "announcements bounded at half the agent's shapes: every record expanded", max: 2, unknown: 0 },
    {
      name: 'unbounded announcements (the check can fail): records of evicted shapes lost',
      max: Infinity,
      unknown: 1,
    },
  ];
  for (const row of rows) {
    test(row.name, () => {
      const m = new DNSRecordMessages(NODE, row.max);
      const x = new DNSFlowExpander(4);
      let unknown = 0;
      for (let round = 0; round < 5; round++)
        for (let k = 0; k < 6; k++) {
          const p = { ...ROWS[0]!.parts, ctx: ctx({ serverIP: `10.9.0.${k}` }), time: TIME, uuid: UUID };
          for (const l of m
            .line(p)
            .split('\n')
            .filter((t) => t !== '')) {
            const msg = JSON.parse(l) as ProxyMessage;
            if (msg.type === 'dns-shape') x.shape(msg);
            else if (msg.type === 'dns-flow') {
              const f = x.flow(msg);
              if (f === undefined) unknown++;
              else
                assert.equal(
                  encode({ type: 'flow', flow: { ...f, uuid: UUID } }),
                  encode({ type: 'flow', flow: dnsRecord(p, NODE) }),
                );
            }
          }
        }
      if (row.unknown === 0) assert.equal(unknown, 0);
      else assert.ok(unknown >= row.unknown, `${unknown} records lost`);
    });
  }
});

describe('DNSFlowExpander (the agent side)', () => {
  test('a record whose shape never came is counted, not guessed', () => {
    const x = new DNSFlowExpander();
    const f = x.flow(dnsFlowMessage({ s: 99, t: 0, cp: 1, sp: 53, q: 'a.', qt: ['A'] }));
    assert.equal(f, undefined);
    assert.equal(x.unknown, 1);
  });

  test('bounded: the least recently used shape goes first', () => {
    const x = new DNSFlowExpander(2);
    const shape = { nodeName: NODE, type: 'REQUEST', verdict: 'FORWARDED', transport: 'UDP' } as const;
    const def = (id: number) => ({
      type: 'dns-shape' as const,
      id,
      shape: {
        ...shape,
        client: { ip: '10.0.0.1', endpoint: client },
        server: { ip: '10.0.0.2', endpoint: server },
      },
    });
    const rec = (s: number) => dnsFlowMessage({ s, t: 0, cp: 1, sp: 53, q: 'a.', qt: ['A'] });
    x.shape(def(1));
    x.shape(def(2));
    assert.ok(x.flow(rec(1))); // 1 used last: 2 is the one to go
    x.shape(def(3));
    assert.equal(x.size, 2);
    assert.ok(x.flow(rec(1)));
    assert.equal(x.flow(rec(2)), undefined);
    assert.ok(x.flow(rec(3)));
  });
});
