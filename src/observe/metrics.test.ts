import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dnsL7Egress, tcpAllowedIngress, udpDefaultDenyEgress } from '../flow/testing/flows.ts';
import type { Flow } from '../flow/types.ts';
import { ID } from '../identity/reserved.ts';
import { FlowMetrics } from './metrics.ts';

const base: Flow = { time: '2025-01-01T00:00:00Z', uuid: 'u', verdict: 'FORWARDED', Type: 'L3_L4' };

describe('FlowMetrics', () => {
  const rows: { name: string; flows: Flow[]; expect: string[]; absent?: string[] }[] = [
    {
      name: 'forwarded policy verdict',
      flows: [tcpAllowedIngress],
      expect: [
        'hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="FORWARDED"} 1',
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
        'hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="AUDIT"} 1',
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
        'hubble_flows_processed_total{type="Drop",subtype="",verdict="DROPPED"} 1',
        'hubble_drop_total{reason="POLICY_DENY",protocol="ICMPv4"} 1',
      ],
      absent: ['hubble_policy_verdicts_total{'],
    },
    {
      name: 'ingress verdicts from the host are not counted',
      flows: [
        {
          ...base,
          event_type: { type: 5 },
          traffic_direction: 'INGRESS',
          source: { identity: ID.host },
          policy_match_type: 4,
        },
      ],
      expect: ['hubble_flows_processed_total{type="PolicyVerdict",subtype="",verdict="FORWARDED"} 1'],
      absent: ['hubble_policy_verdicts_total{'],
    },
    {
      name: 'L7 DNS access log: an L7 flow and an l7/dns policy verdict',
      flows: [dnsL7Egress],
      expect: [
        'hubble_flows_processed_total{type="L7",subtype="DNS",verdict="FORWARDED"} 1',
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
  ];
  for (const r of rows) {
    it(r.name, async () => {
      const m = new FlowMetrics();
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
