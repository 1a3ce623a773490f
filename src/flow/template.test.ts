// shapeOf: a copy of a template is recognised while it is untouched, and not after any change,
// so the encoders' cached bytes are used only where they are the record's own. The flow log line
// is JSON.stringify's in every row (from the pieces or not).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatTimestamp } from './record.ts';
import { copyOfShape, flowEventJSON, shapeOf } from './template.ts';
import { FLOWS } from './testing/flows.ts';
import type { Flow, FlowEvent } from './types.ts';

const tcp = FLOWS.tcpAllowedIngress!;
const ts = { seconds: 1_700_000_000, nanos: 1000 };
const copy = (sport: number | undefined = 41000, t: Flow = tcp): Flow =>
  copyOfShape(t, ts, formatTimestamp(ts), '11111111-2222-4333-8444-555555555555', sport);

describe('shapeOf: an untouched copy has its shape, a changed one not', () => {
  const rows: { name: string; flow: () => Flow; shaped: boolean }[] = [
    { name: 'a copy with its own port', flow: () => copy(), shaped: true },
    { name: "a copy with the template's port", flow: () => copy(undefined), shaped: true },
    {
      name: 'a copy of a record without ports (ICMP)',
      flow: () => copy(41000, FLOWS.icmpWorldEgress),
      shaped: true,
    },
    { name: 'the template itself', flow: () => tcp, shaped: false },
    { name: 'a spread of a copy (a new object)', flow: () => ({ ...copy() }), shaped: false },
    {
      name: 'destination_names added',
      flow: () => Object.assign(copy(), { destination_names: ['api.example.com'] }),
      shaped: false,
    },
    { name: 'a field replaced', flow: () => Object.assign(copy(), { verdict: 'DROPPED' }), shaped: false },
    {
      name: 'a field removed',
      flow: () => {
        const c = copy();
        delete c.Summary;
        return c;
      },
      shaped: false,
    },
    {
      name: 'the time changed',
      flow: () => Object.assign(copy(), { time: '2025-01-01T00:00:00Z' }),
      shaped: false,
    },
    { name: 'the uuid changed', flow: () => Object.assign(copy(), { uuid: 'x' }), shaped: false },
    {
      name: 'the port changed in place',
      flow: () => {
        const c = copy();
        (c.l4 as { TCP: { source_port: number } }).TCP.source_port = 1;
        return c;
      },
      shaped: false,
    },
    {
      name: 'a port pair field added',
      flow: () => {
        const c = copy();
        Object.assign((c.l4 as { TCP: object }).TCP, { destination_port: 1 });
        return c;
      },
      shaped: false,
    },
    {
      name: 'the l4 replaced by an equal object',
      flow: () => {
        const c = copy();
        c.l4 = structuredClone(c.l4!);
        return c;
      },
      shaped: false,
    },
    {
      name: "the template's l4 given to a copy made with a port",
      flow: () => Object.assign(copy(), { l4: tcp.l4 }),
      shaped: false,
    },
    { name: 'a non-integer port is not templated', flow: () => copy(1.5), shaped: false },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const f = r.flow();
      assert.equal(shapeOf(f) !== undefined, r.shaped);
      const event: FlowEvent = { flow: f, node_name: 'node-1', time: f.time };
      assert.equal(flowEventJSON(event), JSON.stringify(event));
    });
  }
});

describe('flowEventJSON: events the pieces were not cut for', () => {
  const rows: { name: string; event: () => FlowEvent }[] = [
    {
      name: 'keys in another order',
      event: () => {
        const f = copy();
        return { time: f.time, flow: f, node_name: 'node-1' } as FlowEvent;
      },
    },
    { name: 'no node name', event: () => ({ flow: copy(), time: copy().time }) },
    {
      name: 'no node name, then a name (one template)',
      event: () => {
        const f = copy(42000);
        flowEventJSON({ flow: f, time: f.time });
        return { flow: copy(43000), node_name: 'node-9', time: f.time };
      },
    },
    {
      name: 'an extra key',
      event: () => {
        const f = copy();
        return { flow: f, node_name: 'node-1', time: f.time, extra: 1 } as FlowEvent;
      },
    },
    {
      name: 'a node name that needs escaping',
      event: () => {
        const f = copy();
        return { flow: f, node_name: 'a"b\u2028', time: f.time };
      },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const e = r.event();
      assert.equal(flowEventJSON(e), JSON.stringify(e));
    });
  }
});
