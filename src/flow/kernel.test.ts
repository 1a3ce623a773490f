import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerRef, Verdict } from '../policy/types.ts';
import { RECORD_CACHE_TTL_MS, RecordCache, recordFromKernelEvent } from './kernel.ts';
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
  const rows: { name: string; first: KernelEvent; second: KernelEvent; rev?: number; hit: boolean }[] = [
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
      assert.equal(asked, r.hit ? 1 : 2);
      if (!r.hit) return;
      const want = recordFromKernelEvent(engine, r.second, { nodeName: 'n', resolve, policyRevision: 1 });
      assert.deepEqual(strip(got.flow), strip(want.flow));
      assert.equal(got.flow.time, want.flow.time);
      if (want.drop !== undefined) assert.deepEqual(strip(got.drop!), strip(want.drop));
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
      assert.equal(shapeOf(later.flow)?.template.flow === first.flow, r.kept);
      const want = r.kept ? 'backend-ingress' : 'renamed';
      assert.equal(later.flow.ingress_allowed_by?.[0]?.name, want);
      assert.equal((later.flow.l4 as { TCP: { source_port: number } }).TCP.source_port, 42000);
    });
  }
});
