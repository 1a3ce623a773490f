import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { icmpDefaultDenyIngress, tcpAllowedIngress, udpExplicitDenyEgress } from '../flow/testing/flows.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';
import { compactTime, escapeControl, flowEventProblem, formatCompact } from './format.ts';

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

describe('escapeControl (observe: ANSI escapes)', () => {
  const rows: Array<[name: string, input: string, want: string]> = [
    ['plain text unchanged', 'shop/frontend 10.0.0.1:80', 'shop/frontend 10.0.0.1:80'],
    ['ESC of a CSI sequence', '\u001b[31mred', '\\x1b[31mred'],
    ['OSC title with BEL', '\u001b]0;t\u0007', '\\x1b]0;t\\x07'],
    ['CR and LF', 'a\r\nb', 'a\\x0d\\x0ab'],
    ['NUL and DEL', '\u0000\u007f', '\\x00\\x7f'],
    ['C1 CSI', '\u009b2J', '\\x9b2J'],
    ['bidi override', 'abc\u202edef', 'abc\\u202edef'],
    ['a backslash is escaped so escapes are ours', 'a\\x1b', 'a\\\\x1b'],
    ['non-ASCII letters unchanged', 'café 😀', 'café 😀'],
  ];
  for (const [name, input, want] of rows) it(name, () => assert.equal(escapeControl(input), want));
});

describe('flowEventProblem (observe: malformed records)', () => {
  const ok = { time: 't', flow: { verdict: 'FORWARDED' } };
  const rows: Array<[name: string, v: unknown, want: string | undefined]> = [
    ['a minimal record', ok, undefined],
    ['null', null, 'not a JSON object'],
    ['an array', [ok], 'not a JSON object'],
    ['no time', { flow: ok.flow }, 'no `time`'],
    ['flow not an object', { time: 't', flow: 5 }, 'no `flow` object'],
    ['no verdict', { time: 't', flow: {} }, 'no `flow.verdict`'],
    ['IP a number', { time: 't', flow: { verdict: 'X', IP: 3 } }, '`flow.IP` is not an object'],
    ['l4 a string', { time: 't', flow: { verdict: 'X', l4: 'x' } }, '`flow.l4` is not an object'],
    [
      'l4 TCP null',
      { time: 't', flow: { verdict: 'X', l4: { TCP: null } } },
      '`flow.l4` is not one protocol object',
    ],
    [
      'labels not strings',
      { time: 't', flow: { verdict: 'X', source: { labels: [1] } } },
      '`flow.source.labels` is not a list of strings',
    ],
    ['Summary a number', { time: 't', flow: { verdict: 'X', Summary: 1 } }, '`flow.Summary` is not a string'],
  ];
  for (const [name, v, want] of rows) it(name, () => assert.equal(flowEventProblem(v), want));
});
