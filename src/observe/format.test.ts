import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { icmpDefaultDenyIngress, tcpAllowedIngress, udpExplicitDenyEgress } from '../flow/testing/flows.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';
import { compactTime, formatCompact } from './format.ts';

const event = (flow: Flow): FlowEvent => ({ time: flow.time, flow });

describe('formatCompact', () => {
  const cases: Array<{ name: string; event: FlowEvent; want: string }> = [
    {
      name: 'forwarded with its policy',
      event: event(tcpAllowedIngress),
      want: 'Jan  2 03:04:05.678  10.0.1.10:40000 (production/frontend) -> 10.0.1.20:8080 (production/backend)  FORWARDED  (TCP Flags: SYN)  INGRESS allowed by production/backend-ingress',
    },
    {
      name: 'explicit deny to the world',
      event: event(udpExplicitDenyEgress),
      want: 'Jan  2 03:04:05.678  10.0.1.10:5353 (production/frontend) -> 203.0.113.10:53 (world)  DROPPED  (UDP)  EGRESS POLICY_DENY denied by production/no-dns, ccnp',
    },
    {
      name: 'icmp default deny, no ports',
      event: event(icmpDefaultDenyIngress),
      want: 'Dec 25 23:59:59.000  10.0.1.10 (production/frontend) -> 10.0.1.20 (production/backend)  DROPPED  (ICMPv4 EchoRequest)  INGRESS POLICY_DENIED',
    },
  ];
  for (const c of cases) it(c.name, () => assert.equal(formatCompact(c.event), c.want));
});

describe('compactTime', () => {
  it('keeps an unparsable time as it is', () => assert.equal(compactTime('yesterday'), 'yesterday'));
});
