// The fixtures are records the real code makes: each L3/L4 one is rebuilt here with
// flowFromVerdict (same fields, same key order), so they cannot drift from what Seawall emits.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ID } from '../../identity/reserved.ts';
import type { FlowRequest, Verdict } from '../../policy/types.ts';
import { type FlowMeta, flowFromVerdict } from '../record.ts';
import { allowIngress, decision, flowEngine, ref } from '../test-support.ts';
import type { Flow } from '../types.ts';
import {
  dnsL7Egress,
  FLOWS,
  icmpDefaultDenyIngress,
  icmpWorldEgress,
  tcpAllowedIngress,
  udpDefaultDenyEgress,
  udpExplicitDenyEgress,
} from './flows.ts';

const fe = { kind: 'endpoint', name: 'frontend', namespace: 'production' } as const;
const be = { kind: 'endpoint', name: 'backend', namespace: 'production' } as const;
const meta = (f: Flow, over: Partial<FlowMeta> = {}): FlowMeta => {
  const l4 =
    f.l4 !== undefined && 'TCP' in f.l4 ? f.l4.TCP : f.l4 !== undefined && 'UDP' in f.l4 ? f.l4.UDP : {};
  return {
    time: {
      seconds: Math.floor(Date.parse(f.time) / 1000),
      nanos: Number((/\.(\d+)Z$/.exec(f.time)?.[1] ?? '').padEnd(9, '0')),
    },
    nodeName: 'node-1',
    srcIP: f.IP!.source,
    dstIP: f.IP!.destination,
    sport: l4.source_port ?? 0,
    uuid: f.uuid,
    srcEndpointID: 101,
    dstEndpointID: 102,
    ...over,
  };
};
const dropped = (v: Partial<Verdict>): Verdict => ({
  allowed: false,
  verdict: 'DROPPED',
  srcIdentity: 1001,
  dstIdentity: 1002,
  explanation: [],
  ...v,
});

describe('fixture flows are what flowFromVerdict makes', () => {
  const rows: Array<{
    name: string;
    fixture: Flow;
    req: FlowRequest;
    verdict: Verdict;
    meta?: Partial<FlowMeta>;
  }> = [
    {
      name: 'tcpAllowedIngress',
      fixture: tcpAllowedIngress,
      req: { src: fe, dst: be, protocol: 'TCP', dport: 8080 },
      verdict: {
        ...allowIngress(),
        ingress: decision({
          direction: 'INGRESS',
          allowedBy: [ref('CiliumNetworkPolicy', 'backend-ingress', 'production', 'ingress')],
        }),
      },
    },
    {
      name: 'icmpDefaultDenyIngress',
      fixture: icmpDefaultDenyIngress,
      req: { src: fe, dst: be, protocol: 'ICMP', icmp: { type: 8, family: 'IPv4' } },
      verdict: dropped({
        reason: 'POLICY_DENIED',
        decidedBy: 'INGRESS',
        ingress: decision({
          direction: 'INGRESS',
          allowed: false,
          reason: 'POLICY_DENIED',
          matchType: 'NONE',
        }),
      }),
    },
    {
      name: 'udpDefaultDenyEgress',
      fixture: udpDefaultDenyEgress,
      req: { src: fe, dst: { kind: 'ip', ip: '203.0.113.10' }, protocol: 'UDP', dport: 53 },
      verdict: dropped({
        reason: 'POLICY_DENIED',
        decidedBy: 'EGRESS',
        dstIdentity: 16777217,
        egress: decision({ direction: 'EGRESS', allowed: false, reason: 'POLICY_DENIED', matchType: 'NONE' }),
      }),
      meta: { dstEndpointID: 0 },
    },
    {
      name: 'udpExplicitDenyEgress',
      fixture: udpExplicitDenyEgress,
      req: { src: fe, dst: { kind: 'ip', ip: '203.0.113.10' }, protocol: 'UDP', dport: 53 },
      verdict: dropped({
        reason: 'POLICY_DENY',
        decidedBy: 'EGRESS',
        dstIdentity: 16777217,
        egress: decision({
          direction: 'EGRESS',
          allowed: false,
          reason: 'POLICY_DENY',
          matchType: 'L3_ONLY',
          deniedBy: [
            ref('CiliumNetworkPolicy', 'no-dns', 'production', 'egressDeny'),
            ref('CiliumClusterwideNetworkPolicy', 'ccnp', undefined, 'egressDeny'),
          ],
        }),
      }),
      meta: { dstEndpointID: 0 },
    },
    {
      name: 'icmpWorldEgress',
      fixture: icmpWorldEgress,
      req: {
        src: fe,
        dst: { kind: 'entity', entity: 'world' },
        protocol: 'ICMP',
        icmp: { type: 8, family: 'IPv4' },
      },
      verdict: {
        allowed: true,
        verdict: 'FORWARDED',
        decidedBy: 'EGRESS',
        srcIdentity: 1001,
        dstIdentity: ID.world,
        egress: decision({
          direction: 'EGRESS',
          matchType: 'L3_ONLY',
          allowedBy: [ref('NetworkPolicy', 'allow-world', 'production', 'egress')],
        }),
        explanation: [],
      },
      meta: { dstEndpointID: 0 },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const made = flowFromVerdict(flowEngine(), r.req, r.verdict, meta(r.fixture, r.meta));
      // Text equality: key order too, as `-o json` prints it.
      assert.equal(JSON.stringify(r.fixture, null, 2), JSON.stringify(made, null, 2));
    });
  }
});

describe('every fixture', () => {
  for (const [name, f] of Object.entries(FLOWS)) {
    it(`${name}: a drop has a reason and no allowing policy; labels are sorted`, () => {
      assert.equal(f.verdict === 'DROPPED', f.drop_reason_desc !== undefined);
      if (f.verdict === 'DROPPED') assert.equal(f.egress_allowed_by ?? f.ingress_allowed_by, undefined);
      for (const ep of [f.source, f.destination]) {
        assert.deepEqual(ep?.labels, [...(ep?.labels ?? [])].sort());
      }
    });
  }
  it('uuids are distinct', () => {
    const ids = Object.values(FLOWS).map((f) => f.uuid);
    assert.equal(new Set(ids).size, ids.length);
  });
  it('the DNS record is an L7 access-log event', () => {
    assert.equal(dnsL7Egress.Type, 'L7');
    assert.equal(dnsL7Egress.event_type?.type, 129);
    assert.ok(dnsL7Egress.l7?.dns !== undefined);
  });
});
