import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { goldenJSON } from '../core/testing/golden.ts';
import type { DirectionDecision, FlowRequest, Verdict } from '../policy/types.ts';
import { type FlowMeta, flowFromVerdict, flowVerdictOf, formatTimestamp, summaryOf } from './record.ts';
import { allowIngress, decision, flowEngine, ref } from './test-support.ts';

const TESTDATA = join(import.meta.dirname, 'testdata');
const golden = (name: string, actual: unknown): void =>
  goldenJSON(join(TESTDATA, `record-${name}.golden.json`), actual);

const fe = { kind: 'endpoint', name: 'frontend', namespace: 'production' } as const;
const be = { kind: 'endpoint', name: 'backend', namespace: 'production' } as const;
const baseMeta: FlowMeta = {
  time: { seconds: 1592083822, nanos: 292379064 },
  nodeName: 'node-1',
  srcIP: '10.0.1.8',
  dstIP: '10.0.1.11',
  sport: 45084,
  uuid: '00000000-0000-4000-8000-000000000001',
  srcEndpointID: 101,
  dstEndpointID: 102,
};

const denied = (v: Partial<Verdict>): Verdict => ({
  allowed: false,
  verdict: 'DROPPED',
  srcIdentity: 1001,
  dstIdentity: 1002,
  explanation: [],
  ...v,
});

const rows: { name: string; req: FlowRequest; verdict: Verdict; meta?: Partial<FlowMeta> }[] = [
  {
    name: 'tcp-allowed-ingress',
    req: { src: fe, dst: be, protocol: 'TCP', dport: 8080 },
    verdict: allowIngress(),
    meta: { policyRevision: 7 },
  },
  {
    name: 'tcp-default-deny-ingress',
    req: { src: fe, dst: be, protocol: 'TCP', dport: 9090 },
    verdict: denied({
      reason: 'POLICY_DENIED',
      decidedBy: 'INGRESS',
      ingress: decision({ direction: 'INGRESS', allowed: false, reason: 'POLICY_DENIED', matchType: 'NONE' }),
    }),
  },
  {
    name: 'tcp-explicit-deny-ingress',
    req: { src: fe, dst: be, protocol: 'TCP', dport: 22 },
    verdict: denied({
      reason: 'POLICY_DENY',
      decidedBy: 'INGRESS',
      ingress: decision({
        direction: 'INGRESS',
        allowed: false,
        reason: 'POLICY_DENY',
        matchType: 'L4_ONLY',
        deniedBy: [ref('CiliumClusterwideNetworkPolicy', 'deny-ssh', undefined, 'ingressDeny')],
      }),
    }),
  },
  {
    name: 'udp-denied-egress-drop-event',
    req: { src: be, dst: { kind: 'ip', ip: '203.0.113.5' }, protocol: 'UDP', dport: 53 },
    verdict: denied({
      reason: 'POLICY_DENIED',
      decidedBy: 'EGRESS',
      srcIdentity: 1002,
      dstIdentity: 16777217,
      egress: decision({ direction: 'EGRESS', allowed: false, reason: 'POLICY_DENIED', matchType: 'NONE' }),
    }),
    meta: { srcIP: '10.0.1.11', dstIP: '203.0.113.5', eventKind: 'drop', srcEndpointID: 102 },
  },
  {
    name: 'icmp-world-egress-allowed',
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
      dstIdentity: 2,
      egress: decision({
        direction: 'EGRESS',
        matchType: 'L3_ONLY',
        allowedBy: [ref('NetworkPolicy', 'allow-world', 'production', 'egress')],
      }),
      explanation: [],
    },
    meta: { dstIP: '198.51.100.7', sport: 0, dstEndpointID: 0, time: new Date('2025-01-02T03:04:05.120Z') },
  },
  {
    name: 'tcp-redirected-to-proxy',
    req: { src: fe, dst: be, protocol: 'TCP', dport: 80 },
    verdict: {
      ...allowIngress(),
      ingress: decision({
        direction: 'INGRESS',
        l7: { parser: 'http', allowed: true },
        allowedBy: [ref('CiliumNetworkPolicy', 'backend-http', 'production', 'ingress')],
      }),
    },
  },
];

describe('flowFromVerdict', () => {
  for (const r of rows) {
    it(r.name, () => {
      const flow = flowFromVerdict(flowEngine(), r.req, r.verdict, { ...baseMeta, ...r.meta });
      golden(r.name, flow);
    });
  }

  it('observation direction wins over the deciding direction', () => {
    const flow = flowFromVerdict(
      flowEngine(),
      { src: fe, dst: be, protocol: 'TCP', dport: 8080 },
      allowIngress(),
      { ...baseMeta, observationDirection: 'EGRESS' },
    );
    assert.equal(flow.traffic_direction, 'EGRESS');
    assert.equal(flow.policy_match_type, 4);
    assert.equal(flow.ingress_allowed_by, undefined);
  });

  it('a random uuid without one given', () => {
    const { uuid: _u, ...meta } = baseMeta;
    const f = flowFromVerdict(
      flowEngine(),
      { src: fe, dst: be, protocol: 'TCP', dport: 1 },
      allowIngress(),
      meta,
    );
    assert.match(f.uuid, /^[0-9a-f-]{36}$/);
  });
});

describe('flowVerdictOf', () => {
  const redirect = decision({ direction: 'INGRESS', l7: { parser: 'http', allowed: true } });
  const cases: { name: string; v: Verdict; d?: DirectionDecision; want: string }[] = [
    { name: 'allowed', v: allowIngress(), want: 'FORWARDED' },
    { name: 'dropped', v: denied({ reason: 'POLICY_DENIED' }), want: 'DROPPED' },
    { name: 'to the proxy', v: allowIngress(), d: redirect, want: 'REDIRECTED' },
    { name: 'audited (policy audit mode)', v: { ...allowIngress(), verdict: 'AUDIT' }, want: 'AUDIT' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(flowVerdictOf(c.v, c.d), c.want));

  it('an audited flow is no drop: no drop reason, its allowing policies kept', () => {
    const f = flowFromVerdict(
      flowEngine(),
      { src: fe, dst: be, protocol: 'TCP', dport: 8080 },
      { ...allowIngress(), verdict: 'AUDIT' },
      baseMeta,
    );
    assert.equal(f.verdict, 'AUDIT');
    assert.equal(f.drop_reason, undefined);
    assert.equal(f.ingress_allowed_by?.length, 1);
  });
});

describe('formatTimestamp', () => {
  const cases: { name: string; in: { seconds: number; nanos: number }; out: string }[] = [
    { name: 'whole seconds', in: { seconds: 0, nanos: 0 }, out: '1970-01-01T00:00:00Z' },
    { name: 'millis', in: { seconds: 1, nanos: 5_000_000 }, out: '1970-01-01T00:00:01.005Z' },
    { name: 'micros', in: { seconds: 1, nanos: 436_128_000 }, out: '1970-01-01T00:00:01.436128Z' },
    { name: 'nanos', in: { seconds: 1592083822, nanos: 292379064 }, out: '2020-06-13T21:30:22.292379064Z' },
  ];
  for (const c of cases) it(c.name, () => assert.equal(formatTimestamp(c.in), c.out));
});

describe('summaryOf', () => {
  const cases = [
    { name: 'syn', l4: { TCP: { flags: { SYN: true } } }, out: 'TCP Flags: SYN' },
    { name: 'syn-ack', l4: { TCP: { flags: { ACK: true, SYN: true } } }, out: 'TCP Flags: SYN, ACK' },
    { name: 'udp', l4: { UDP: { destination_port: 53 } }, out: 'UDP' },
    { name: 'icmp echo', l4: { ICMPv4: { type: 8 } }, out: 'ICMPv4 EchoRequest' },
    { name: 'icmpv6 echo', l4: { ICMPv6: { type: 128 } }, out: 'ICMPv6 EchoRequest' },
  ] as const;
  for (const c of cases) it(c.name, () => assert.equal(summaryOf(c.l4), c.out));
});
