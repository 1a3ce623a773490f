// Seawall's records against what Cilium's Hubble parser emits for the same traffic. Each golden
// record was derived by hand from Cilium's code, cited per row:
//   P  = cilium/cilium pkg/hubble/parser/threefour/parser.go (Parser.Decode and its decode* helpers)
//   C  = cilium/cilium pkg/policy/correlation/correlation.go (CorrelatePolicy, toProto, populate)
//   G  = google/gopacket layers/icmp4.go, icmp6.go (ICMPv4TypeCode/ICMPv6TypeCode String), which
//        P calls for the Summary
// and Cilium's monitor aggregation `medium` (bpf/lib/trace.h emit_trace_notify: no FROM_* points,
// a trace only when the conntrack entry's state changes).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { goldenJSON } from '../core/testing/golden.ts';
import { LOCALHOST_REF } from '../policy/endpoint.ts';
import type { MapStateEntry, PeerRef, Verdict } from '../policy/types.ts';
import { ConntrackTracer, parseConntrackLine, traceRecordOf } from './conntrack.ts';
import { datapathMatchType, recordFromKernelEvent } from './kernel.ts';
import type { KernelEvent } from './nflog.ts';
import { policiesOf, summaryOf } from './record.ts';
import { allowIngress, decision, flowEngine, kernelEvent, ref, resolvePeer } from './test-support.ts';
import type { Flow, FlowLayer4 } from './types.ts';

const TESTDATA = join(import.meta.dirname, 'testdata');
const resolve = resolvePeer;
const endpointIdOf = (p: PeerRef): number | undefined =>
  p.kind === 'endpoint' ? (p.name === 'frontend' ? 101 : 102) : undefined;
const workloadsOf = (p: PeerRef) =>
  p.kind === 'endpoint' && p.name === 'backend' ? [{ name: 'backend', kind: 'Deployment' }] : undefined;
const ev = kernelEvent;
const UUID = '00000000-0000-4000-8000-00000000c111';
const fixed = (f: Flow | undefined): Flow => ({ ...f!, uuid: UUID });

const deny = (reason: 'POLICY_DENY' | 'POLICY_DENIED'): Verdict => ({
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
    matchType: reason === 'POLICY_DENY' ? 'L3_L4' : 'NONE',
    deniedBy:
      reason === 'POLICY_DENY' ? [ref('CiliumNetworkPolicy', 'no-9090', 'production', 'ingressDeny')] : [],
  }),
  explanation: [],
});

describe('Cilium events: policy verdicts and drops (golden records)', () => {
  const rows: { name: string; cite: string; ev: KernelEvent; verdict: Verdict; files: string[] }[] = [
    {
      name: 'default deny: a policy verdict (type 5), then a drop (type 1, sub_type 133)',
      cite: 'P Decode: dn → event_type {1, dn.SubType}, decodeIsReply nil for drops and denied verdicts, no policy_match_type without pvn; C CorrelatePolicy: policy verdicts only',
      ev: ev({ verdict: 'denied', dport: 9090 }),
      verdict: deny('POLICY_DENIED'),
      files: [
        'record-cilium-default-deny-verdict.golden.json',
        'record-cilium-default-deny-drop.golden.json',
      ],
    },
    {
      name: 'explicit deny: verdict with ingress_denied_by (POLICY_DENY only), then drop sub_type 181',
      cite: 'C CorrelatePolicy: denied = DROPPED && drop_reason_desc == POLICY_DENY; P decodeDropReason: -pvn.Verdict',
      ev: ev({ verdict: 'deny', dport: 9090 }),
      verdict: deny('POLICY_DENY'),
      files: [
        'record-cilium-explicit-deny-verdict.golden.json',
        'record-cilium-explicit-deny-drop.golden.json',
      ],
    },
    {
      name: 'forwarded: is_reply false, policy labels with the uid, workloads',
      cite: 'P decodeIsReply: pvn.Verdict >= 0 → false; C toProto/populate: labels k8s:io.cilium.k8s.policy.{derived-from,name,namespace,uid}, revision on each',
      ev: ev({}),
      verdict: allowIngress(),
      files: ['record-cilium-forwarded-verdict.golden.json'],
    },
  ];
  for (const r of rows) {
    it(`${r.name} [${r.cite}]`, () => {
      const out = recordFromKernelEvent(
        flowEngine(() => r.verdict),
        r.ev,
        { nodeName: 'node-1', resolve, endpointIdOf, workloadsOf, policyRevision: 7 },
      );
      const got = [out.flow, out.drop].filter((f) => f !== undefined).map(fixed);
      assert.equal(got.length, r.files.length);
      for (const [i, f] of got.entries()) goldenJSON(join(TESTDATA, r.files[i]!), f);
    });
  }

  it('a drop is absent for forwarded verdicts and its uuid is its own', () => {
    const fwd = recordFromKernelEvent(flowEngine(), ev({}), { nodeName: 'n', resolve });
    assert.equal(fwd.drop, undefined);
    const d = recordFromKernelEvent(
      flowEngine(() => deny('POLICY_DENIED')),
      ev({ verdict: 'denied' }),
      { nodeName: 'n', resolve },
    );
    assert.notEqual(d.drop?.uuid, d.flow.uuid);
  });

  it('allow-localhost: labelled reserved:io.cilium.policy.derived-from=allow-localhost-ingress, no name or kind [C populate: no k8s: labels, no name]', () => {
    assert.deepEqual(policiesOf([LOCALHOST_REF], 3), [
      { labels: ['reserved:io.cilium.policy.derived-from=allow-localhost-ingress'], revision: '3' },
    ]);
  });
});

describe('policy_match_type as the datapath finds it (L3-Proto 5, Proto-only 6)', () => {
  const e = (identity: number, proto: number, portLo: number, portHi: number): MapStateEntry => ({
    key: { direction: 'INGRESS', identity, proto, portLo, portHi },
    verdict: 'allow',
    derivedFrom: [],
  });
  const rows: {
    name: string;
    entries: MapStateEntry[];
    proto: number;
    port: number;
    want: number | undefined;
  }[] = [
    {
      name: 'identity + TCP any port: L3-Proto',
      entries: [e(1001, 6, 0, 65535)],
      proto: 6,
      port: 80,
      want: 5,
    },
    {
      name: 'any peer + TCP any port: Proto-only',
      entries: [e(0, 6, 0, 65535)],
      proto: 6,
      port: 80,
      want: 6,
    },
    { name: 'identity + port: L3-L4', entries: [e(1001, 6, 80, 80)], proto: 6, port: 80, want: 2 },
    { name: 'port only: L4-only', entries: [e(0, 6, 80, 80)], proto: 6, port: 80, want: 3 },
    { name: 'identity, any protocol: L3-only', entries: [e(1001, 0, 0, 65535)], proto: 6, port: 80, want: 1 },
    { name: 'everything: all', entries: [e(0, 0, 0, 65535)], proto: 6, port: 80, want: 4 },
    {
      name: 'L3-L4 wins over L3-Proto (lookup order)',
      entries: [e(1001, 6, 0, 65535), e(1001, 6, 80, 80)],
      proto: 6,
      port: 80,
      want: 2,
    },
    {
      name: 'L4-only wins over L3-Proto',
      entries: [e(1001, 6, 0, 65535), e(0, 6, 80, 80)],
      proto: 6,
      port: 80,
      want: 3,
    },
    { name: 'ICMP type wildcard 0-255: Proto-only', entries: [e(0, 1, 0, 255)], proto: 1, port: 8, want: 6 },
    {
      name: 'another identity: no match',
      entries: [e(1002, 6, 0, 65535)],
      proto: 6,
      port: 80,
      want: undefined,
    },
  ];
  for (const r of rows)
    it(r.name, () => assert.equal(datapathMatchType(r.entries, 'INGRESS', 1001, r.proto, r.port), r.want));

  it('the record carries it', () => {
    const out = recordFromKernelEvent(flowEngine(), ev({}), {
      nodeName: 'n',
      resolve,
      entriesOf: () => [e(1001, 6, 0, 65535)],
    });
    assert.equal(out.flow.policy_match_type, 5);
  });
});

describe('Summary as Hubble writes it [P decodeLayers, getTCPFlags; G TypeCode String]', () => {
  const rows: { name: string; l4: FlowLayer4; want: string }[] = [
    {
      name: 'SYN ACK in getTCPFlags order',
      l4: { TCP: { flags: { ACK: true, SYN: true } } },
      want: 'TCP Flags: SYN, ACK',
    },
    {
      name: 'every flag in order',
      l4: {
        TCP: {
          flags: {
            NS: true,
            CWR: true,
            ECE: true,
            URG: true,
            PSH: true,
            FIN: true,
            RST: true,
            ACK: true,
            SYN: true,
          },
        },
      },
      want: 'TCP Flags: SYN, ACK, RST, FIN, PSH, URG, ECE, CWR, NS',
    },
    { name: 'FIN ACK', l4: { TCP: { flags: { FIN: true, ACK: true } } }, want: 'TCP Flags: ACK, FIN' },
    {
      name: 'port unreachable',
      l4: { ICMPv4: { type: 3, code: 3 } },
      want: 'ICMPv4 DestinationUnreachable(Port)',
    },
    { name: 'echo request', l4: { ICMPv4: { type: 8 } }, want: 'ICMPv4 EchoRequest' },
    {
      name: 'code on a type without codes',
      l4: { ICMPv4: { type: 8, code: 1 } },
      want: 'ICMPv4 EchoRequest(Code: 1)',
    },
    {
      name: 'unknown code',
      l4: { ICMPv4: { type: 3, code: 99 } },
      want: 'ICMPv4 DestinationUnreachable(Code: 99)',
    },
    { name: 'unknown type', l4: { ICMPv4: { type: 42 } }, want: 'ICMPv4 42(0)' },
    { name: 'TTL exceeded', l4: { ICMPv4: { type: 11 } }, want: 'ICMPv4 TimeExceeded(TTLExceeded)' },
    {
      name: 'ICMPv6 port unreachable',
      l4: { ICMPv6: { type: 1, code: 4 } },
      want: 'ICMPv6 DestinationUnreachable(PortUnreachable)',
    },
    { name: 'ICMPv6 echo reply', l4: { ICMPv6: { type: 129 } }, want: 'ICMPv6 EchoReply' },
  ];
  for (const r of rows) it(r.name, () => assert.equal(summaryOf(r.l4), r.want));
});

describe('trace events (type 4) from conntrack, at monitor aggregation medium', () => {
  const line = (type: string, rest: string): string => `[1700000000.000001]\t [${type}] ${rest}`;
  const tcpNew = line(
    'NEW',
    'tcp      6 120 SYN_SENT src=10.0.1.8 dst=10.0.1.11 sport=40000 dport=8080 [UNREPLIED] src=10.0.1.11 dst=10.0.1.8 sport=8080 dport=40000 id=11',
  );
  const tcpSynRecv = line(
    'UPDATE',
    'tcp      6 60 SYN_RECV src=10.0.1.8 dst=10.0.1.11 sport=40000 dport=8080 src=10.0.1.11 dst=10.0.1.8 sport=8080 dport=40000 id=11',
  );
  const tcpEst = line(
    'UPDATE',
    'tcp      6 432000 ESTABLISHED src=10.0.1.8 dst=10.0.1.11 sport=40000 dport=8080 src=10.0.1.11 dst=10.0.1.8 sport=8080 dport=40000 [ASSURED] id=11',
  );
  const tcpFin = line(
    'UPDATE',
    'tcp      6 120 FIN_WAIT src=10.0.1.8 dst=10.0.1.11 sport=40000 dport=8080 src=10.0.1.11 dst=10.0.1.8 sport=8080 dport=40000 [ASSURED] id=11',
  );
  const worldNew = line(
    'NEW',
    'udp      17 30 src=10.0.1.8 dst=203.0.113.5 sport=5353 dport=53 [UNREPLIED] src=203.0.113.5 dst=10.0.1.8 sport=53 dport=5353 id=12',
  );
  const worldReply = line(
    'UPDATE',
    'udp      17 30 src=10.0.1.8 dst=203.0.113.5 sport=5353 dport=53 src=203.0.113.5 dst=10.0.1.8 sport=53 dport=5353 id=12',
  );
  const icmpNew = line(
    'NEW',
    'icmp     1 30 src=10.0.1.8 dst=10.0.1.11 type=8 code=0 id=23548 [UNREPLIED] src=10.0.1.11 dst=10.0.1.8 type=0 code=0 id=23548 id=13',
  );
  const hostOnly = line(
    'NEW',
    'tcp      6 120 SYN_SENT src=10.0.0.1 dst=203.0.113.5 sport=1 dport=2 [UNREPLIED] src=203.0.113.5 dst=10.0.0.1 sport=2 dport=1 id=14',
  );

  it('parses conntrack -E lines (ICMP echo id is not the entry id)', () => {
    const n = parseConntrackLine(tcpNew);
    assert.deepEqual(n, {
      time: { seconds: 1700000000, nanos: 1000 },
      type: 'NEW',
      proto: 6,
      state: 'SYN_SENT',
      unreplied: true,
      orig: { src: '10.0.1.8', dst: '10.0.1.11', sport: 40000, dport: 8080 },
      reply: { src: '10.0.1.11', dst: '10.0.1.8', sport: 8080, dport: 40000 },
      id: 11,
    });
    const i = parseConntrackLine(icmpNew);
    assert.equal(i?.id, 13);
    assert.deepEqual(i?.orig.icmp, { type: 8, code: 0 });
    for (const bad of [
      '',
      'conntrack v1.4.7 (conntrack-tools): 10 flow events have been shown.',
      '[x] [NEW] tcp',
    ])
      assert.equal(parseConntrackLine(bad), undefined, bad);
  });

  const rows: { name: string; cite: string; lines: string[]; golden: string[] }[] = [
    {
      name: 'pod → pod TCP: SYN to the endpoint, SYN-ACK back (reply), the handshake ACK; nothing for FIN',
      cite: 'P Decode: obs 0 → TO_ENDPOINT; decodeIsReply: CT reply reason; decodeTrafficDirection: EGRESS iff (tn.Source == src EP) != reply',
      lines: [tcpNew, tcpSynRecv, tcpEst, tcpFin],
      golden: [
        'record-cilium-trace-syn.golden.json',
        'record-cilium-trace-synack-reply.golden.json',
        'record-cilium-trace-ack.golden.json',
      ],
    },
    {
      name: 'pod → world UDP: to the stack (sub_type 3), the reply to the endpoint',
      cite: 'P Decode: event_type {4, obs point}; trace_observation_point TO_STACK',
      lines: [worldNew, worldReply, worldReply],
      golden: ['record-cilium-trace-to-stack.golden.json', 'record-cilium-trace-world-reply.golden.json'],
    },
    {
      name: 'the node’s own connection: no trace (no endpoint program sees it)',
      cite: 'bpf_lxc/bpf_host: traces from endpoint programs',
      lines: [hostOnly],
      golden: [],
    },
  ];
  for (const r of rows) {
    it(`${r.name} [${r.cite}]`, () => {
      const tracer = new ConntrackTracer();
      const out: Flow[] = [];
      for (const l of r.lines) {
        const c = parseConntrackLine(l)!;
        for (const p of tracer.points(c)) {
          const f = traceRecordOf(flowEngine(), c, p, {
            nodeName: 'node-1',
            resolve,
            endpointIdOf,
            workloadsOf,
            uuid: UUID,
          });
          if (f !== undefined) out.push(f);
        }
      }
      assert.equal(out.length, r.golden.length);
      for (const [i, f] of out.entries()) goldenJSON(join(TESTDATA, r.golden[i]!), f);
    });
  }
});
