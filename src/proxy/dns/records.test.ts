import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import type { FlowEndpoint } from '../../flow/types.ts';
import { encode } from '../ipc.ts';
import type { QuerySource, RedirectContext } from './proxy.ts';
import { DNSRecordLines, type DNSRecordParts, dnsRecord, MAX_SHAPES_PER_PAIR } from './records.ts';
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

describe('DNS records: the cached-shape line equals the record object encoded', () => {
  const lines = new DNSRecordLines(NODE);
  for (const row of ROWS) {
    test(row.name, () => {
      const p: DNSRecordParts = { ...row.parts, time: TIME, uuid: 'a6c8d5e0-1111-4222-8333-944455556666' };
      const slow = encode({ type: 'flow', flow: dnsRecord(p, NODE) });
      // twice: the shape built, then taken from the cache
      assert.equal(lines.line(p), slow);
      assert.equal(lines.line(p), slow);
      assert.ok(slow.endsWith('}}\n'));
    });
  }

  test('varying fields change with each record, the shape is built once', () => {
    const l = new DNSRecordLines(NODE);
    const a = l.line({ ...ROWS[2]!.parts, time: TIME });
    const b = l.line({
      ...ROWS[2]!.parts,
      src: src('udp', '10.0.1.5', 40999),
      time: new Date(TIME.getTime() + 1),
    });
    assert.equal(l.built, 1);
    const fa = JSON.parse(a).flow;
    const fb = JSON.parse(b).flow;
    assert.notEqual(fa.uuid, fb.uuid);
    assert.equal(fa.time, '2026-12-01T20:00:00.123Z');
    assert.equal(fb.time, '2026-12-01T20:00:00.124Z');
    assert.deepEqual([fa.l4.UDP.destination_port, fb.l4.UDP.destination_port], [40123, 40999]);
  });

  test('new mirror objects (a snapshot or delta) get new shapes: a changed label shows', () => {
    const l = new DNSRecordLines(NODE);
    const base = ROWS[0]!.parts;
    l.line({ ...base, time: TIME });
    const relabelled = { ...client, labels: ['k8s:app=renamed', 'k8s:io.kubernetes.pod.namespace=prod'] };
    const p = { ...base, ctx: ctx({ clientFlow: relabelled }), time: TIME, uuid: 'u' };
    const line = l.line(p);
    assert.equal(l.built, 2);
    assert.equal(line, encode({ type: 'flow', flow: dnsRecord(p, NODE) }));
    assert.deepEqual(JSON.parse(line).flow.source.labels, relabelled.labels);
  });

  test(`at most ${MAX_SHAPES_PER_PAIR} shapes per endpoint pair, and still right past it`, () => {
    const l = new DNSRecordLines(NODE);
    for (let i = 0; i < MAX_SHAPES_PER_PAIR * 2 + 3; i++) {
      const p = {
        ...ROWS[0]!.parts,
        ctx: ctx({ serverIP: `10.9.${i >> 8}.${i & 255}` }),
        time: TIME,
        uuid: 'u',
      };
      assert.equal(l.line(p), encode({ type: 'flow', flow: dnsRecord(p, NODE) }));
    }
    assert.equal(l.built, MAX_SHAPES_PER_PAIR * 2 + 3);
  });
});
