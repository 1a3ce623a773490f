import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FlowEvent } from '../flow/types.ts';
import { compactTime, formatCompact } from './format.ts';

const base = {
  time: '2025-01-02T03:04:05.678901Z',
  uuid: 'u',
  IP: { source: '10.0.1.10', destination: '10.0.1.20', ipVersion: 'IPv4' as const },
  source: { identity: 1001, namespace: 'production', pod_name: 'frontend' },
  destination: { identity: 1002, namespace: 'production', pod_name: 'backend' },
  Type: 'L3_L4' as const,
};

describe('formatCompact', () => {
  const cases: Array<{ name: string; event: FlowEvent; want: string }> = [
    {
      name: 'forwarded with its policy',
      event: {
        time: base.time,
        flow: {
          ...base,
          verdict: 'FORWARDED',
          l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
          traffic_direction: 'INGRESS',
          Summary: 'TCP Flags: SYN',
          ingress_allowed_by: [{ name: 'backend-ingress', namespace: 'production' }],
        },
      },
      want: 'Jan  2 03:04:05.678  10.0.1.10:40000 (production/frontend) -> 10.0.1.20:8080 (production/backend)  FORWARDED  (TCP Flags: SYN)  INGRESS allowed by production/backend-ingress',
    },
    {
      name: 'explicit deny to the world',
      event: {
        time: base.time,
        flow: {
          ...base,
          verdict: 'DROPPED',
          IP: { source: '10.0.1.10', destination: '203.0.113.10', ipVersion: 'IPv4' },
          destination: { identity: 16777217, labels: ['cidr:203.0.113.0/24', 'reserved:world'] },
          l4: { UDP: { source_port: 5353, destination_port: 53 } },
          traffic_direction: 'EGRESS',
          drop_reason_desc: 'POLICY_DENY',
          egress_denied_by: [{ name: 'no-dns', namespace: 'production' }, { name: 'ccnp' }],
        },
      },
      want: 'Jan  2 03:04:05.678  10.0.1.10:5353 (production/frontend) -> 203.0.113.10:53 (world)  DROPPED  (UDP)  EGRESS POLICY_DENY denied by production/no-dns, ccnp',
    },
    {
      name: 'icmp default deny, no ports',
      event: {
        time: '2025-12-25T23:59:59Z',
        flow: {
          ...base,
          verdict: 'DROPPED',
          l4: { ICMPv4: { type: 8 } },
          traffic_direction: 'INGRESS',
          drop_reason_desc: 'POLICY_DENIED',
        },
      },
      want: 'Dec 25 23:59:59.000  10.0.1.10 (production/frontend) -> 10.0.1.20 (production/backend)  DROPPED  (ICMPv4 EchoRequest)  INGRESS POLICY_DENIED',
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(formatCompact(c.event), c.want));
});

describe('compactTime', () => {
  it('keeps an unparsable time as it is', () => assert.equal(compactTime('yesterday'), 'yesterday'));
});
