// A shape's template gives exactly the slow path's output: for every kind of record Seawall
// writes (the golden records, the named fixtures, records of kernel events through RecordCache),
// copies of it with other times, uuids and ports encode to the same GetFlowsResponse bytes as
// protobufjs's whole encoding, and to the same flow log line as JSON.stringify.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { RecordCache } from '../../flow/kernel.ts';
import type { KernelEvent } from '../../flow/nflog.ts';
import { formatTimestamp, type Timestamp } from '../../flow/record.ts';
import { copyOfShape, flowEventJSON, registerTemplate, shapedCopy, shapeOf } from '../../flow/template.ts';
import {
  allowIngress,
  decision,
  flowEngine,
  kernelEvent,
  ref,
  resolvePeer,
} from '../../flow/test-support.ts';
import { FLOWS } from '../../flow/testing/flows.ts';
import type { Flow, FlowEvent } from '../../flow/types.ts';
import type { Verdict } from '../../policy/types.ts';
import { FlowRing } from '../sink.ts';
import { FlowResponseEncoder } from './encode.ts';
import { protoJSONProblems } from './protojson.ts';
import { hubbleType } from './schema.ts';
import { startHubbleServer } from './server.ts';
import { ringOf, tempDir } from './testing.ts';

const FlowT = hubbleType('flow.Flow');
const ResponseT = hubbleType('observer.GetFlowsResponse');
const TESTDATA = join(import.meta.dirname, '../../flow/testdata');

/** Times and ports of the copies: varint lengths from 1 to 5 bytes, zero nanos, the last year. */
const VARIANTS: { name: string; ts: Timestamp; sport: number | undefined; node?: string }[] = [
  { name: 'a port and microseconds', ts: { seconds: 1_700_000_000, nanos: 1000 }, sport: 40000 },
  { name: 'port 1, a whole second', ts: { seconds: 1_700_000_001, nanos: 0 }, sport: 1 },
  { name: 'port 65535, nanoseconds', ts: { seconds: 1_700_000_001, nanos: 123_456_789 }, sport: 65535 },
  { name: 'port 127 (one byte), the epoch', ts: { seconds: 0, nanos: 0 }, sport: 127 },
  {
    name: 'port 128 (two bytes), year 9999',
    ts: { seconds: 253_402_300_799, nanos: 999_999_999 },
    sport: 128,
  },
  { name: "the template's own port", ts: { seconds: 1_700_000_002, nanos: 5_000_000 }, sport: undefined },
  { name: 'another node', ts: { seconds: 1_700_000_003, nanos: 7 }, sport: 2222, node: 'node-2' },
];

function goldenRecords(): [string, Flow][] {
  return readdirSync(TESTDATA)
    .filter((f) => /^(record|l7|dns)-.*\.golden\.json$/.test(f))
    .map((f) => [f, JSON.parse(readFileSync(join(TESTDATA, f), 'utf8')) as Flow]);
}

const resolve = resolvePeer;
const denied: Verdict = {
  allowed: false,
  verdict: 'DROPPED',
  reason: 'POLICY_DENY',
  decidedBy: 'INGRESS',
  srcIdentity: 1001,
  dstIdentity: 1002,
  explanation: [],
  ingress: decision({
    direction: 'INGRESS',
    allowed: false,
    reason: 'POLICY_DENY',
    matchType: 'NONE',
    deniedBy: [ref('CiliumNetworkPolicy', 'no-22', 'production', 'ingressDeny')],
  }),
};

/** Templates as RecordCache makes them from kernel events (the verdict and the drop record). */
function kernelRecords(): [string, Flow][] {
  const rows: [string, KernelEvent, Verdict][] = [
    ['kernel: TCP allowed, revision 7', kernelEvent({}), allowIngress()],
    ['kernel: TCP explicit deny', kernelEvent({ verdict: 'deny', dport: 22 }), denied],
    ['kernel: UDP allowed', kernelEvent({ proto: 17, tcpFlags: undefined, dport: 53 }), allowIngress()],
    ['kernel: SCTP allowed', kernelEvent({ proto: 132, tcpFlags: undefined, dport: 9 }), allowIngress()],
    ['kernel: TCP without a source port', kernelEvent({ sport: undefined }), allowIngress()],
    [
      'kernel: ICMP echo, no ports',
      kernelEvent({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 8, code: 0 },
      }),
      allowIngress(),
    ],
    [
      'kernel: IPv6 to the world',
      kernelEvent({ srcIP: 'fd00::8', dstIP: '2001:db8::1', dir: 'eg' }),
      { ...allowIngress(), decidedBy: 'EGRESS', dstIdentity: 2 },
    ],
  ];
  const out: [string, Flow][] = [];
  for (const [name, ev, v] of rows) {
    const cache = new RecordCache();
    const rec = cache.record(
      flowEngine(() => v),
      ev,
      { nodeName: 'node-1', resolve, policyRevision: 7, endpointIdOf: () => 101 },
      1000,
    );
    out.push([name, rec.flow]);
    if (rec.drop !== undefined) out.push([`${name} (drop)`, rec.drop]);
  }
  return out;
}

const hex = (b: Buffer): string => b.toString('hex');

describe('a record shape encoded from its template equals the slow path (bytes and JSON)', () => {
  const shapes: [string, Flow][] = [
    ...goldenRecords(),
    ...Object.entries(FLOWS).map(([k, v]): [string, Flow] => [`fixture ${k}`, v]),
    ...kernelRecords(),
  ];
  assert.ok(shapes.length >= 30, 'the corpus is not empty');
  for (const [name, template] of shapes) {
    it(name, () => {
      const enc = new FlowResponseEncoder('node-1');
      registerTemplate(template);
      for (const v of VARIANTS) {
        const copy = copyOfShape(template, formatTimestamp(v.ts), randomUUID(), v.sport);
        assert.ok(shapeOf(copy), `${v.name}: a copy has its shape`);
        const node = v.node ?? copy.node_name;
        const event: FlowEvent =
          node === undefined
            ? { flow: copy, time: copy.time }
            : { flow: copy, node_name: node, time: copy.time };
        const fast = enc.encode(event);
        assert.equal(hex(fast), hex(enc.slow(event)), v.name);
        assert.equal(flowEventJSON(event), JSON.stringify(event), v.name);
        // the bytes decode to the record (and the record is still strict protojson)
        const back = ResponseT.toObject(ResponseT.decode(fast.subarray(5)), { longs: String }) as {
          flow: { uuid: string };
        };
        assert.equal(back.flow.uuid, copy.uuid);
        assert.deepEqual(protoJSONProblems(FlowT, copy), [], v.name);
      }
      assert.equal(enc.templated, VARIANTS.length, 'every copy took the template');
      assert.equal(enc.encoded, 0);
    });
  }
});

describe('FlowResponseEncoder: what is encoded whole', () => {
  const tcp = FLOWS.tcpAllowedIngress!;
  const ts = { seconds: 1_700_000_000, nanos: 1000 };
  const rows: { name: string; event: () => FlowEvent }[] = [
    {
      name: 'a record that is no template and no copy of one',
      event: () => {
        const f = { ...tcp, source: { ...tcp.source } };
        return { flow: f, node_name: 'node-1', time: f.time };
      },
    },
    {
      name: 'a copy given destination_names after it was made',
      event: () => {
        const c = copyOfShape(tcp, formatTimestamp(ts), randomUUID(), 41000);
        c.destination_names = ['api.example.com'];
        return { flow: c, node_name: 'node-1', time: c.time };
      },
    },
    {
      name: 'an event whose time is not its flow time',
      event: () => {
        const c = copyOfShape(tcp, formatTimestamp(ts), randomUUID(), 41000);
        return { flow: c, node_name: 'node-1', time: '2025-01-02T03:04:05Z' };
      },
    },
    {
      name: 'a time before 1970',
      event: () => {
        const t = { seconds: -5, nanos: 0 };
        const c = copyOfShape(tcp, formatTimestamp(t), randomUUID(), 41000);
        return { flow: c, node_name: 'node-1', time: c.time };
      },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const enc = new FlowResponseEncoder('node-1');
      registerTemplate(tcp);
      const event = r.event();
      assert.equal(hex(enc.encode(event)), hex(enc.slow(event)));
      assert.equal(flowEventJSON(event), JSON.stringify(event));
      assert.equal(enc.templated, 0);
      assert.equal(enc.encoded, 1);
    });
  }
});

describe('FlowResponseEncoder: a copy is read as it is', () => {
  const tcp = FLOWS.tcpAllowedIngress!;
  const rows: { name: string; change: (f: Flow) => void }[] = [
    { name: 'a uuid that is not ASCII', change: (f) => Object.assign(f, { uuid: 'ü-\u2028-ß' }) },
    {
      name: 'a time with an offset',
      change: (f) => Object.assign(f, { time: '2025-01-02T05:04:05.5+02:00' }),
    },
    {
      name: 'a port changed in place',
      change: (f) => Object.assign((f.l4 as { TCP: object }).TCP, { source_port: 300_000 }),
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const enc = new FlowResponseEncoder('node-1');
      registerTemplate(tcp);
      const c = copyOfShape(tcp, '2025-01-02T03:04:05.5Z', randomUUID(), 41000);
      r.change(c);
      const event: FlowEvent = { flow: c, node_name: 'node-1', time: c.time };
      assert.equal(hex(enc.encode(event)), hex(enc.slow(event)));
      assert.equal(flowEventJSON(event), JSON.stringify(event));
      assert.equal(enc.templated, 1);
    });
  }
});

for (const handed of [false, true])
  describe(`GetFlows sends a template copy as the slow path encodes it (its shape ${handed ? 'handed on by the ring' : 'asked of shapeOf'})`, async () => {
    const tcp = FLOWS.tcpAllowedIngress!;
    registerTemplate(tcp);
    const made = [41000, 1, 65535].map((p, i) =>
      shapedCopy(tcp, formatTimestamp({ seconds: 1_700_000_000 + i, nanos: i * 1000 }), randomUUID(), p),
    );
    const copies = made.map((m) => m.flow);
    let ring = ringOf(copies);
    if (handed) {
      ring = new FlowRing(4095);
      for (const m of made) ring.push({ flow: m.flow, node_name: 'node-1', time: m.flow.time }, m.shape);
    }
    const tmp = tempDir();
    const server = await startHubbleServer(
      { ring, nodeName: 'node-1' },
      { unixSocket: join(tmp.dir, 'h.sock') },
    );
    const client = new grpc.Client(`unix://${server.unixSocket}`, grpc.credentials.createInsecure());
    const got: Buffer[] = await new Promise((resolve, reject) => {
      const out: Buffer[] = [];
      const call = client.makeServerStreamRequest(
        '/observer.Observer/GetFlows',
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
      );
      call.on('data', (b: Buffer) => out.push(b));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
    client.close();
    const stats = { ...server.stats };
    await server.close();
    tmp.remove();
    it('every copy went out from its template', () => {
      assert.equal(stats.templatedEntries, copies.length);
      assert.equal(stats.encodedEntries, 0);
    });
    it("the bytes are the slow path's", () => {
      const enc = new FlowResponseEncoder('node-1');
      assert.deepEqual(
        got.map(hex),
        copies.map((c) => hex(enc.slow({ flow: c, node_name: 'node-1', time: c.time }).subarray(5))),
      );
    });
  });
