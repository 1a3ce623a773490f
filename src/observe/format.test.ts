import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { golden } from '../core/testing/golden.ts';
import { FLOWS, tcpAllowedIngress, udpExplicitDenyEgress } from '../flow/testing/flows.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';
import {
  compactTime,
  DICT_SEPARATOR,
  escapeControl,
  flowEventProblem,
  formatCompact,
  formatDict,
  formatTable,
  type PrintOptions,
} from './format.ts';

const event = (flow: Flow): FlowEvent => ({ time: flow.time, flow });

describe('hubble printer (pkg/printer): compact, dict, table, time formats (golden)', () => {
  const reply: Flow = {
    ...tcpAllowedIngress,
    is_reply: true,
    event_type: { type: 4 },
    Summary: 'TCP Flags: SYN, ACK',
  };
  const rows: { name: string; flows: Flow[]; opts?: PrintOptions }[] = [
    { name: 'compact', flows: Object.values(FLOWS) },
    {
      name: 'compact reply and trace',
      flows: [reply, { ...tcpAllowedIngress, event_type: { type: 4, sub_type: 3 } }],
    },
    {
      name: 'compact node and policy names',
      flows: [tcpAllowedIngress, udpExplicitDenyEgress],
      opts: { nodeName: true, policyNames: true },
    },
    { name: 'compact numeric', flows: [tcpAllowedIngress], opts: { numeric: true } },
    { name: 'compact RFC3339Nano', flows: [tcpAllowedIngress], opts: { timeFormat: 'RFC3339Nano' } },
    { name: 'compact RFC1123Z', flows: [tcpAllowedIngress], opts: { timeFormat: 'RFC1123Z' } },
  ];
  const out: string[] = [];
  for (const r of rows) {
    out.push(`## ${r.name}`);
    for (const f of r.flows) out.push(formatCompact({ ...event(f), node_name: 'node-1' }, r.opts));
  }
  out.push('## dict');
  out.push(formatDict(event(tcpAllowedIngress)), DICT_SEPARATOR, formatDict(event(udpExplicitDenyEgress)));
  out.push('## table');
  out.push(...formatTable(Object.values(FLOWS).map(event)));
  it('matches the golden output', () =>
    golden(join(import.meta.dirname, 'testdata', 'printer.golden.txt'), `${out.join('\n')}\n`));

  it("the issue's compact line", () =>
    assert.match(
      formatCompact(event(tcpAllowedIngress)),
      /^Jan {2}2 03:04:05\.678: production\/frontend:40000 \(ID:\d+\) -> production\/backend:8080 \(ID:\d+\) policy-verdict:L3-L4 INGRESS ALLOWED \(TCP Flags: SYN\)$/,
    ));
  it('color wraps the verdict, fields stay escaped', () => {
    const l = formatCompact(event({ ...tcpAllowedIngress, Summary: '\u001b[2J' }), { color: true });
    assert.match(l, /\u001b\[32mALLOWED\u001b\[0m/);
    assert.match(l, /\(\\x1b\[2J\)$/);
  });
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
