import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { registerTemplate, shapedCopy } from '../flow/template.ts';
import { dnsL7Egress, FLOWS, tcpAllowedIngress, udpDefaultDenyEgress } from '../flow/testing/flows.ts';
import type { Flow } from '../flow/types.ts';
import { ID } from '../identity/reserved.ts';
import { FlowMetrics, parseMetricsConfig } from './metrics.ts';

function withoutReply(f: Flow): Flow {
  const { is_reply: _, ...rest } = f;
  return rest;
}

const base: Flow = { time: '2025-01-01T00:00:00Z', uuid: 'u', verdict: 'FORWARDED', Type: 'L3_L4' };

describe('FlowMetrics', () => {
  const rows: { name: string; config?: string; flows: Flow[]; expect: string[]; absent?: string[] }[] = [
    {
      name: 'forwarded policy verdict',
      flows: [tcpAllowedIngress],
      expect: [
        'hubble_flows_processed_total{protocol="TCP",type="PolicyVerdict",subtype="",verdict="FORWARDED"} 1',
        'hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="forwarded"} 1',
      ],
      absent: ['hubble_drop_total{'],
    },
    {
      name: 'default-deny drop, twice',
      flows: [udpDefaultDenyEgress, udpDefaultDenyEgress],
      expect: [
        'hubble_drop_total{reason="POLICY_DENIED",protocol="UDP"} 2',
        'hubble_policy_verdicts_total{direction="egress",match="none",action="dropped"} 2',
      ],
    },
    {
      name: 'audited policy verdict: action audit, no drop',
      flows: [{ ...tcpAllowedIngress, verdict: 'AUDIT' }],
      expect: [
        'hubble_flows_processed_total{protocol="TCP",type="PolicyVerdict",subtype="",verdict="AUDIT"} 1',
        'hubble_policy_verdicts_total{direction="ingress",match="l3-l4",action="audit"} 1',
      ],
      absent: ['hubble_drop_total{'],
    },
    {
      name: 'drop event counts a drop but no policy verdict',
      flows: [
        {
          ...base,
          verdict: 'DROPPED',
          drop_reason_desc: 'POLICY_DENY',
          event_type: { type: 1, sub_type: 181 },
          l4: { ICMPv4: { type: 8 } },
        },
      ],
      expect: [
        'hubble_flows_processed_total{protocol="ICMPv4",type="Drop",subtype="",verdict="DROPPED"} 1',
        'hubble_drop_total{reason="POLICY_DENY",protocol="ICMPv4"} 1',
      ],
      absent: ['hubble_policy_verdicts_total{'],
    },
    {
      name: 'verdicts from the host are not counted, ingress or egress (policy/handler.go)',
      flows: [
        {
          ...base,
          event_type: { type: 5 },
          traffic_direction: 'INGRESS',
          source: { identity: ID.host },
          policy_match_type: 4,
        },
        {
          ...base,
          event_type: { type: 5 },
          traffic_direction: 'EGRESS',
          source: { identity: ID.host },
          policy_match_type: 4,
        },
      ],
      expect: [
        'hubble_flows_processed_total{protocol="Unknown L4",type="PolicyVerdict",subtype="",verdict="FORWARDED"} 2',
      ],
      absent: ['hubble_policy_verdicts_total{'],
    },
    {
      name: 'L7 DNS access log: an L7 flow and an l7/dns policy verdict',
      flows: [dnsL7Egress],
      expect: [
        'hubble_flows_processed_total{protocol="DNS",type="L7",subtype="DNS",verdict="FORWARDED"} 1',
        'hubble_policy_verdicts_total{direction="egress",match="l7/dns",action="forwarded"} 1',
      ],
      absent: ['hubble_drop_total{'],
    },
    {
      name: 'redirected',
      flows: [
        {
          ...base,
          verdict: 'REDIRECTED',
          event_type: { type: 5 },
          traffic_direction: 'INGRESS',
          policy_match_type: 3,
        },
      ],
      expect: ['hubble_policy_verdicts_total{direction="ingress",match="l4-only",action="redirected"} 1'],
    },
    {
      name: 'a drop without l4: Unknown L4 (api/v1 FlowProtocol)',
      flows: [
        {
          ...base,
          verdict: 'DROPPED',
          drop_reason_desc: 'POLICY_DENIED',
          event_type: { type: 1, sub_type: 133 },
        },
      ],
      expect: ['hubble_drop_total{reason="POLICY_DENIED",protocol="Unknown L4"} 1'],
    },
    {
      name: 'trace subtype is the observation point',
      flows: [{ ...tcpAllowedIngress, event_type: { type: 4, sub_type: 3 } }],
      expect: [
        'hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-stack",verdict="FORWARDED"} 1',
      ],
    },
    {
      name: 'tcp: SYN, SYN-ACK, FIN, RST of forwarded flows only (tcp/handler.go)',
      config: 'tcp',
      flows: [
        tcpAllowedIngress,
        { ...tcpAllowedIngress, l4: { TCP: { flags: { SYN: true, ACK: true } } } },
        { ...tcpAllowedIngress, l4: { TCP: { flags: { FIN: true, RST: true, ACK: true } } } },
        { ...tcpAllowedIngress, verdict: 'DROPPED' },
      ],
      expect: [
        'hubble_tcp_flags_total{flag="SYN",family="IPv4"} 1',
        'hubble_tcp_flags_total{flag="SYN-ACK",family="IPv4"} 1',
        'hubble_tcp_flags_total{flag="FIN",family="IPv4"} 1',
        'hubble_tcp_flags_total{flag="RST",family="IPv4"} 1',
      ],
      absent: ['hubble_flows_processed_total{'],
    },
    {
      name: 'icmp: type as gopacket names it (icmp/handler.go)',
      config: 'icmp',
      flows: [
        { ...base, event_type: { type: 5 }, l4: { ICMPv4: { type: 3, code: 3 } } },
        { ...base, event_type: { type: 5 }, l4: { ICMPv4: { type: 8 } } },
      ],
      expect: [
        'hubble_icmp_total{family="IPv4",type="DestinationUnreachable(Port)"} 1',
        'hubble_icmp_total{family="IPv4",type="EchoRequest"} 1',
      ],
    },
    {
      name: 'port-distribution: forwarded, not a reply, is_reply known (port-distribution/handler.go)',
      config: 'port-distribution',
      flows: [
        tcpAllowedIngress,
        { ...tcpAllowedIngress, is_reply: true },
        { ...withoutReply(tcpAllowedIngress) },
        { ...tcpAllowedIngress, verdict: 'DROPPED' },
      ],
      expect: ['hubble_port_distribution_total{protocol="TCP",port="8080"} 1'],
    },
    {
      name: 'flows-to-world: policy denials and forwarded non-replies; with port and syn-only',
      config: 'flows-to-world:port;syn-only',
      flows: [
        { ...tcpAllowedIngress, destination: { identity: 2, labels: ['reserved:world'] } },
        { ...tcpAllowedIngress, destination: { identity: 2, labels: ['reserved:world'] }, is_reply: true },
        {
          ...tcpAllowedIngress,
          destination: { identity: 2, labels: ['reserved:world'] },
          l4: { TCP: { destination_port: 443, flags: { ACK: true } } },
        },
        tcpAllowedIngress,
      ],
      expect: ['hubble_flows_to_world_total{protocol="TCP",verdict="FORWARDED",port="8080"} 1'],
    },
    {
      name: 'context: sourceContext first non-empty, destinationContext, labelsContext in Hubble order',
      config:
        'drop:sourceContext=dns|pod;destinationContext=namespace;labelsContext=traffic_direction,source_app',
      flows: [udpDefaultDenyEgress],
      expect: [
        'hubble_drop_total{source_app="frontend",traffic_direction="egress",source="production/frontend",destination="",reason="POLICY_DENIED",protocol="UDP"} 1',
      ],
    },
    {
      name: 'context: reserved-identity and workload names',
      config: 'flow:sourceContext=reserved-identity;labelsContext=destination_workload',
      flows: [
        {
          ...tcpAllowedIngress,
          source: { identity: 2, labels: ['reserved:world'] },
          destination: { workloads: [{ name: 'api', kind: 'Deployment' }] },
        },
      ],
      expect: [
        'hubble_flows_processed_total{protocol="TCP",type="PolicyVerdict",subtype="",verdict="FORWARDED",destination_workload="api",source="reserved:world"} 1',
      ],
    },
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const m = new FlowMetrics(undefined, r.config);
      for (const f of r.flows) m.observe(f);
      const text = await m.text();
      for (const e of r.expect) assert.ok(text.includes(e), `missing ${e} in\n${text}`);
      for (const a of r.absent ?? []) assert.ok(!text.includes(a), `unexpected ${a}`);
    });
  }
  it('lost events', async () => {
    const m = new FlowMetrics();
    m.addLost('hubble_ring_buffer', 3);
    assert.ok((await m.text()).includes('hubble_lost_events_total{source="hubble_ring_buffer"} 3'));
  });
});

describe("parseMetricsConfig (Hubble's --hubble-metrics string)", () => {
  const rows: { name: string; s: string; want: [string, Record<string, string>][] | RegExp }[] = [
    {
      name: 'names separated by spaces',
      s: 'flow drop  tcp',
      want: [
        ['flow', {}],
        ['drop', {}],
        ['tcp', {}],
      ],
    },
    {
      name: 'names separated by commas',
      s: 'flow,drop',
      want: [
        ['flow', {}],
        ['drop', {}],
      ],
    },
    {
      name: 'options; a comma inside labelsContext stays',
      s: 'drop:sourceContext=pod;labelsContext=source_pod,destination_pod icmp',
      want: [
        ['drop', { sourceContext: 'pod', labelsContext: 'source_pod,destination_pod' }],
        ['icmp', {}],
      ],
    },
    {
      name: 'valueless option',
      s: 'flows-to-world:any-drop',
      want: [['flows-to-world', { 'any-drop': '' }]],
    },
    { name: 'empty', s: '', want: [] },
    { name: 'unknown metric', s: 'flow bogus', want: /unknown metric 'bogus'/ },
    { name: 'unknown option', s: 'tcp:port', want: /tcp: unknown option 'port'/ },
    { name: 'twice', s: 'flow flow', want: /given twice/ },
    {
      name: 'unknown context',
      s: 'drop:sourceContext=pod|bogus',
      want: /sourceContext: unknown context 'bogus'/,
    },
    {
      name: 'unknown labelsContext label',
      s: 'drop:labelsContext=source_ip2',
      want: /labelsContext: invalid value source_ip2/,
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      if (r.want instanceof RegExp) {
        assert.throws(() => new FlowMetrics(undefined, r.s), r.want);
        return;
      }
      assert.deepEqual(
        parseMetricsConfig(r.s).map((m) => [m.name, Object.fromEntries(m.options)]),
        r.want,
      );
    });
  }
});

describe("FlowMetrics.observe with a record's shape: the counts of observing it whole", () => {
  // every L3/L4 plugin (context options on some), and the L7 ones, which count per record
  const configs = [
    'flow drop policy http dns kafka',
    'flow:sourceContext=pod|ip;destinationContext=namespace drop:labelsContext=source_namespace,destination_pod,traffic_direction policy:sourceContext=identity tcp icmp port-distribution flows-to-world:port;any-drop',
  ];
  const templates = Object.entries(FLOWS).map(([k, v]): [string, Flow] => [k, structuredClone(v)]);
  for (const config of configs) {
    it(config, async () => {
      const byShape = new FlowMetrics(undefined, config);
      const whole = new FlowMetrics(undefined, config);
      let shaped = 0;
      for (let round = 0; round < 3; round++) {
        for (const [, t] of templates) {
          registerTemplate(t);
          for (const sport of [undefined, 40000 + round]) {
            const { flow, shape } = shapedCopy(t, `2025-01-01T00:00:0${round}Z`, `u-${round}`, sport);
            if (shape !== undefined) shaped++;
            byShape.observe(flow, shape);
            whole.observe(flow);
          }
        }
        // read between rounds: counts already handed to prom-client are not handed again
        assert.equal(await byShape.text(), await whole.text(), `round ${round}`);
      }
      assert.ok(shaped > templates.length, 'copies were observed by their shape');
    });
  }
});
