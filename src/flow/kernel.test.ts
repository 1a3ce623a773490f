import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerRef, Verdict } from '../policy/types.ts';
import { RECORD_CACHE_MAX, RECORD_CACHE_TTL_MS, RecordCache, recordFromKernelEvent } from './kernel.ts';
import type { KernelEvent } from './nflog.ts';
import { shapeOf } from './template.ts';
import { allowIngress, decision, flowEngine, kernelEvent, ref, resolvePeer } from './test-support.ts';

const resolve = resolvePeer;
const ev = kernelEvent;
const denyIngress = (reason: 'POLICY_DENY' | 'POLICY_DENIED'): Verdict => ({
  allowed: false,
  verdict: 'DROPPED',
  reason,
  decidedBy: 'INGRESS',
  srcIdentity: 1001,
  dstIdentity: 1002,
  ingress: decision({
    direction: 'INGRESS',
    allowed: false,
    reason,
    matchType: 'NONE',
    deniedBy:
      reason === 'POLICY_DENY' ? [ref('CiliumNetworkPolicy', 'no-9090', 'production', 'ingressDeny')] : [],
  }),
  explanation: [],
});

describe('recordFromKernelEvent', () => {
  const rows: {
    name: string;
    ev: KernelEvent;
    verdict: Verdict;
    want: { verdict: string; reason?: string; agrees: boolean; dir: string };
  }[] = [
    {
      name: 'allowed, engine agrees',
      ev: ev({}),
      verdict: allowIngress(),
      want: { verdict: 'FORWARDED', agrees: true, dir: 'INGRESS' },
    },
    {
      name: 'explicit deny, engine agrees',
      ev: ev({ verdict: 'deny', dport: 9090 }),
      verdict: denyIngress('POLICY_DENY'),
      want: { verdict: 'DROPPED', reason: 'POLICY_DENY', agrees: true, dir: 'INGRESS' },
    },
    {
      name: 'kernel default-deny but engine says explicit deny: disagreement',
      ev: ev({ verdict: 'denied', dport: 9090 }),
      verdict: denyIngress('POLICY_DENY'),
      want: { verdict: 'DROPPED', reason: 'POLICY_DENIED', agrees: false, dir: 'INGRESS' },
    },
    {
      name: 'kernel forwards what the engine denies: disagreement, kernel verdict kept',
      ev: ev({}),
      verdict: denyIngress('POLICY_DENIED'),
      want: { verdict: 'FORWARDED', agrees: false, dir: 'INGRESS' },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = recordFromKernelEvent(
        flowEngine(() => r.verdict),
        r.ev,
        {
          nodeName: 'node-1',
          resolve,
        },
      );
      assert.ok(out !== undefined);
      assert.equal(out.flow.verdict, r.want.verdict);
      assert.equal(out.flow.drop_reason_desc, r.want.reason);
      assert.equal(out.flow.traffic_direction, r.want.dir);
      assert.equal(out.agrees, r.want.agrees);
      assert.equal(out.flow.destination?.ID, 102);
      assert.equal(out.flow.time, '2023-11-14T22:13:20.000001Z');
    });
  }
  it('egress event names the source endpoint id', () => {
    const out = recordFromKernelEvent(flowEngine(), ev({ dir: 'eg', endpointId: 101 }), {
      nodeName: 'n',
      resolve,
    });
    assert.equal(out?.flow.source?.ID, 101);
    assert.equal(out?.flow.traffic_direction, 'EGRESS');
  });
});

/** An engine that must not be asked: these records are the kernel's alone. */
const noDecide = (): never => {
  throw new Error('the engine was asked');
};
const byId: Record<number, PeerRef> = {
  101: { kind: 'endpoint', name: 'frontend', namespace: 'production' },
  102: { kind: 'endpoint', name: 'backend', namespace: 'production' },
};
const opts = {
  nodeName: 'node-1',
  resolve,
  endpointById: (id: number) => byId[id],
  endpointIdOf: (p: PeerRef) => (p.kind === 'endpoint' ? (p.name === 'frontend' ? 101 : 102) : undefined),
};

// Issue 8 item 7: every drop gets a record, whatever its IP protocol and however short its
// header: IPs, identities, DROPPED and the drop reason; no l4 where Hubble has none.
describe('item 7: drops of other IP protocols and cut-short headers are recorded', () => {
  const noL4 = (p: Partial<KernelEvent>): KernelEvent => {
    const { sport: _s, dport: _d, tcpFlags: _f, ...rest } = ev({ verdict: 'denied', ...p });
    return rest;
  };
  const rows: Array<{ name: string; ev: KernelEvent; l4?: unknown }> = [
    ...[0, 2, 4, 41, 47, 50, 136, 253, 255].map((proto) => ({
      name: `IP protocol ${proto}`,
      ev: noL4({ proto }),
    })),
    { name: 'TCP cut short (no ports)', ev: noL4({ proto: 6 }) },
    { name: 'UDP cut short (no ports)', ev: noL4({ proto: 17 }) },
    { name: 'ICMP cut short (no type)', ev: noL4({ proto: 1 }) },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = recordFromKernelEvent(flowEngine(noDecide), r.ev, opts);
      assert.equal(out.explained, false);
      assert.equal(out.flow.verdict, 'DROPPED');
      assert.equal(out.flow.drop_reason_desc, 'POLICY_DENIED');
      assert.equal(out.flow.drop_reason, 133);
      assert.deepEqual(out.flow.IP, { source: '10.0.1.8', destination: '10.0.1.11', ipVersion: 'IPv4' });
      assert.equal(out.flow.l4, undefined);
      assert.equal(out.flow.Summary, undefined);
      assert.deepEqual(
        [out.flow.source?.identity, out.flow.source?.pod_name, out.flow.source?.ID],
        [1001, 'frontend', 101],
      );
      assert.deepEqual(
        [out.flow.destination?.identity, out.flow.destination?.pod_name, out.flow.destination?.ID],
        [1002, 'backend', 102],
      );
      assert.ok(out.flow.source?.labels?.includes('k8s:app=frontend'));
      assert.equal(out.flow.traffic_direction, 'INGRESS');
      assert.deepEqual(out.flow.event_type, { type: 5 });
    });
  }
  it('an explicit deny keeps its reason', () => {
    const out = recordFromKernelEvent(flowEngine(noDecide), noL4({ proto: 47, verdict: 'deny' }), opts);
    assert.equal(out.flow.drop_reason_desc, 'POLICY_DENY');
  });
  it('a bare IP header: the endpoint from the prefix, the peer from the mark, no IP', () => {
    const bare = noL4({ proto: -1, bare: true, srcIP: '', dstIP: '', mark: 1001 });
    const out = recordFromKernelEvent(flowEngine(noDecide), bare, opts);
    assert.equal(out.flow.IP, undefined);
    assert.equal(out.flow.verdict, 'DROPPED');
    assert.deepEqual([out.flow.destination?.pod_name, out.flow.destination?.ID], ['backend', 102]);
    assert.equal(out.flow.source?.identity, 1001);
    assert.ok(out.flow.source?.labels?.includes('k8s:app=frontend'));
    assert.equal(out.flow.source?.pod_name, undefined);
  });
  it('another protocol that is allowed is FORWARDED, without l4', () => {
    const out = recordFromKernelEvent(flowEngine(noDecide), noL4({ proto: 47, verdict: 'fwd' }), opts);
    assert.equal(out.flow.verdict, 'FORWARDED');
    assert.equal(out.flow.drop_reason_desc, undefined);
  });
});

// Issue 8 item 8: a pod forging another pod's address must not write records in its name.
describe('item 8: anti-spoofing drops name the sending endpoint (INVALID_SOURCE_IP)', () => {
  // frontend (endpoint 101) sends to a world address with backend's address as its source
  const spoofed = ev({
    verdict: 'spoof',
    dir: 'eg',
    endpointId: 101,
    srcIP: '10.0.1.11',
    dstIP: '203.0.113.7',
  });
  it('source is the sender with its identity and labels; reason 132; a drop event', () => {
    const out = recordFromKernelEvent(flowEngine(noDecide), spoofed, opts);
    assert.equal(out.explained, false);
    assert.equal(out.flow.verdict, 'DROPPED');
    assert.equal(out.flow.drop_reason, 132);
    assert.equal(out.flow.drop_reason_desc, 'INVALID_SOURCE_IP');
    assert.deepEqual(out.flow.event_type, { type: 1, sub_type: 132 });
    assert.equal(out.flow.traffic_direction, 'EGRESS');
    assert.deepEqual(
      [out.flow.source?.ID, out.flow.source?.identity, out.flow.source?.pod_name],
      [101, 1001, 'frontend'],
    );
    assert.ok(out.flow.source?.labels?.includes('k8s:app=frontend'));
    assert.ok(!out.flow.source?.labels?.includes('k8s:app=backend'));
    // the packet's own header: the forged address stays visible as what was sent
    assert.equal(out.flow.IP?.source, '10.0.1.11');
    assert.deepEqual(out.flow.l4, {
      TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } },
    });
    assert.equal(out.flow.egress_denied_by, undefined);
  });
  it('an unknown sender id names no one rather than the forged address', () => {
    const out = recordFromKernelEvent(flowEngine(noDecide), { ...spoofed, endpointId: 999 }, opts);
    assert.deepEqual(out.flow.source, { ID: 999 });
  });
});

describe('RecordCache: records of packets of one shape', () => {
  const strip = (f: { time: string; uuid: string }) => ({ ...f, time: '', uuid: '' });
  // asked: engine calls when not 1 or 2 by `hit` (a cut-short header is recorded without asking);
  // every row's record is also compared with a fresh one, so that a wrong copy shows
  const rows: {
    name: string;
    first: KernelEvent;
    second: KernelEvent;
    rev?: number;
    hit: boolean;
    asked?: number;
  }[] = [
    {
      name: 'same shape, another port and time: a copy',
      first: ev({}),
      second: ev({ sport: 41000, time: { seconds: 1700000000, nanos: 5000 } }),
      hit: true,
    },
    { name: 'another destination port: asked again', first: ev({}), second: ev({ dport: 9090 }), hit: false },
    {
      name: 'other TCP flags: asked again',
      first: ev({}),
      second: ev({ tcpFlags: { SYN: true, ACK: true } }),
      hit: false,
    },
    {
      name: 'a new policy revision: asked again',
      first: ev({}),
      second: ev({ sport: 41000 }),
      rev: 2,
      hit: false,
    },
    {
      name: 'a denial: the drop is copied too',
      first: ev({ verdict: 'denied' }),
      second: ev({ verdict: 'denied', sport: 41001 }),
      hit: true,
    },
    { name: 'another endpoint: asked again', first: ev({}), second: ev({ endpointId: 103 }), hit: false },
    { name: 'another direction: asked again', first: ev({}), second: ev({ dir: 'eg' }), hit: false },
    { name: 'another verdict: asked again', first: ev({}), second: ev({ verdict: 'audit' }), hit: false },
    {
      name: 'another source address: asked again',
      first: ev({}),
      second: ev({ srcIP: '10.0.1.9' }),
      hit: false,
    },
    {
      name: 'another destination address: asked again',
      first: ev({}),
      second: ev({ dstIP: '10.0.1.12' }),
      hit: false,
    },
    {
      name: 'addresses swapped: asked again',
      first: ev({}),
      second: ev({ srcIP: '10.0.1.11', dstIP: '10.0.1.8' }),
      hit: false,
    },
    {
      name: 'no source port after one: asked again',
      first: ev({}),
      second: ev({ sport: undefined }),
      hit: false,
    },
    {
      name: 'no destination port after port 0: asked again',
      first: ev({ dport: 0 }),
      second: ev({ dport: undefined }),
      hit: false,
      asked: 1,
    },
    {
      name: 'no TCP flags after SYN: asked again',
      first: ev({}),
      second: ev({ tcpFlags: undefined }),
      hit: false,
    },
    {
      name: 'ICMP, the same type and code: a copy',
      first: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 8, code: 0 },
      }),
      second: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 8, code: 0 },
        time: { seconds: 1700000000, nanos: 9000 },
      }),
      hit: true,
    },
    {
      name: 'ICMP, another code: asked again',
      first: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 3, code: 1 },
      }),
      second: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 3, code: 3 },
      }),
      hit: false,
    },
    {
      name: 'ICMP type/code and a port are kept apart (type 0 code 80 is no port 80)',
      first: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 0, code: 80 },
      }),
      second: ev({ proto: 1, sport: undefined, dport: 80, tcpFlags: undefined }),
      hit: false,
      asked: 1,
    },
    {
      name: 'ICMP type 0 code 0, then no ICMP header: recorded as cut short, not a copy',
      first: ev({
        proto: 1,
        sport: undefined,
        dport: undefined,
        tcpFlags: undefined,
        icmp: { type: 0, code: 0 },
      }),
      second: ev({ proto: 1, sport: undefined, dport: undefined, tcpFlags: undefined }),
      hit: false,
      asked: 1,
    },
    {
      name: 'a port no kernel writes (by the string key): a copy',
      first: ev({ dport: 70000 }),
      second: ev({ dport: 70000, sport: 41000 }),
      hit: true,
    },
    {
      name: 'a port no kernel writes and a port: asked again',
      first: ev({ dport: 70000 }),
      second: ev({ dport: 4464 }),
      hit: false,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      let asked = 0;
      const engine = flowEngine(() => {
        asked++;
        return r.first.verdict === 'denied'
          ? {
              ...allowIngress(),
              allowed: false,
              verdict: 'DROPPED',
              reason: 'POLICY_DENIED',
              ingress: decision({ direction: 'INGRESS', allowed: false, matchType: 'NONE' }),
            }
          : allowIngress();
      });
      const cache = new RecordCache();
      cache.record(engine, r.first, { nodeName: 'n', resolve, policyRevision: 1 }, 1000);
      const got = cache.record(
        engine,
        r.second,
        { nodeName: 'n', resolve, policyRevision: r.rev ?? 1 },
        1500,
      );
      assert.equal(asked, r.asked ?? (r.hit ? 1 : 2));
      const want = recordFromKernelEvent(engine, r.second, {
        nodeName: 'n',
        resolve,
        policyRevision: r.rev ?? 1,
      });
      assert.deepEqual(strip(got.flow), strip(want.flow));
      assert.equal(got.flow.time, want.flow.time);
      if (want.drop !== undefined) assert.deepEqual(strip(got.drop!), strip(want.drop));
    });
  }
  const boundRows: { name: string; shapes: number; asked: number }[] = [
    {
      name: `${RECORD_CACHE_MAX} shapes are all kept: the first is a copy`,
      shapes: RECORD_CACHE_MAX,
      asked: RECORD_CACHE_MAX,
    },
    {
      name: `one shape more: the cache starts again, the first is asked again`,
      shapes: RECORD_CACHE_MAX + 1,
      asked: RECORD_CACHE_MAX + 2,
    },
  ];
  for (const r of boundRows) {
    it(r.name, () => {
      let asked = 0;
      const engine = flowEngine(() => {
        asked++;
        return allowIngress();
      });
      const cache = new RecordCache();
      const o = { nodeName: 'n', resolve };
      for (let i = 0; i < r.shapes; i++) cache.record(engine, ev({ dport: 1 + i }), o, 1000);
      cache.record(engine, ev({ dport: 1, sport: 50000 }), o, 1001);
      assert.equal(asked, r.asked);
    });
  }
  const firstRows: { name: string; ev: KernelEvent; sport: number | undefined }[] = [
    { name: 'with a source port', ev: ev({}), sport: 40000 },
    { name: 'without one', ev: ev({ sport: undefined }), sport: undefined },
    { name: 'a denial, its drop too', ev: ev({ verdict: 'denied' }), sport: 40000 },
  ];
  for (const r of firstRows) {
    it(`a shape's first record is a copy of its template, as later ones: ${r.name}`, () => {
      const engine = flowEngine(() =>
        r.ev.verdict === 'denied'
          ? {
              ...allowIngress(),
              allowed: false,
              verdict: 'DROPPED',
              reason: 'POLICY_DENIED',
              ingress: decision({ direction: 'INGRESS', allowed: false, matchType: 'NONE' }),
            }
          : allowIngress(),
      );
      const cache = new RecordCache();
      const o = { nodeName: 'n', resolve };
      const first = cache.record(engine, r.ev, o, 1000);
      const later = cache.record(engine, { ...r.ev, time: { seconds: 1_700_000_001, nanos: 0 } }, o, 1001);
      // one shape for both (so one set of encoder pieces), and the first is not the template itself
      assert.equal(first.shape?.sport, r.sport);
      assert.equal(first.shape, r.sport === undefined ? later.shape : first.shape);
      assert.equal(first.shape?.template, later.shape?.template);
      assert.notEqual(first.flow, first.shape?.template.flow);
      assert.deepEqual(shapeOf(first.flow), first.shape);
      if (r.ev.verdict === 'denied') {
        assert.equal(first.dropShape?.template, later.dropShape?.template);
        assert.equal(first.dropShape?.sport, r.sport);
        assert.notEqual(first.drop, first.dropShape?.template.flow);
      }
      const want = recordFromKernelEvent(engine, r.ev, o);
      const strip = (f: { uuid: string }) => ({ ...f, uuid: '' });
      assert.deepEqual(strip(first.flow), strip(want.flow));
      if (want.drop !== undefined) assert.deepEqual(strip(first.drop!), strip(want.drop));
    });
  }
  it('a cached record is asked again after its time to live', () => {
    let asked = 0;
    const engine = flowEngine(() => {
      asked++;
      return allowIngress();
    });
    const cache = new RecordCache();
    cache.record(engine, ev({}), { nodeName: 'n', resolve }, 1000);
    cache.record(engine, ev({}), { nodeName: 'n', resolve }, 1000 + RECORD_CACHE_TTL_MS);
    assert.equal(asked, 2);
  });
  const refreshRows: { name: string; second: () => Verdict; kept: boolean }[] = [
    {
      name: 'asked again after its time to live, the same answer: the template stays',
      second: allowIngress,
      kept: true,
    },
    {
      name: 'asked again after its time to live, another policy: a new template',
      second: () => {
        const v = allowIngress();
        v.ingress!.allowedBy = [ref('CiliumNetworkPolicy', 'renamed', 'production', 'ingress')];
        return v;
      },
      kept: false,
    },
  ];
  for (const r of refreshRows) {
    it(r.name, () => {
      let asked = 0;
      const engine = flowEngine(() => (++asked === 1 ? allowIngress() : r.second()));
      const cache = new RecordCache();
      const o = { nodeName: 'n', resolve };
      const first = cache.record(engine, ev({}), o, 1000);
      cache.record(engine, ev({ sport: 41000 }), o, 1000 + RECORD_CACHE_TTL_MS);
      const later = cache.record(engine, ev({ sport: 42000 }), o, 1000 + RECORD_CACHE_TTL_MS + 10);
      assert.equal(asked, 2);
      assert.equal(shapeOf(later.flow)?.template === shapeOf(first.flow)?.template, r.kept);
      const want = r.kept ? 'backend-ingress' : 'renamed';
      assert.equal(later.flow.ingress_allowed_by?.[0]?.name, want);
      assert.equal((later.flow.l4 as { TCP: { source_port: number } }).TCP.source_port, 42000);
    });
  }
});
