// shapeOf: a copy of a template is recognised while it is untouched, and not after any change,
// so the encoders' cached bytes are used only where they are the record's own. The flow log line
// is JSON.stringify's in every row (from the pieces or not).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatTimestamp } from './record.ts';
import {
  copyOfShape,
  flowEventJSON,
  LineBatch,
  registerTemplate,
  sameShape,
  shapedCopy,
  shapeOf,
  spreadCopy,
} from './template.ts';
import { FLOWS } from './testing/flows.ts';
import type { Flow, FlowEvent } from './types.ts';

const tcp = FLOWS.tcpAllowedIngress!;
const ts = { seconds: 1_700_000_000, nanos: 1000 };
/** A copy of `t` (registered as a template first, as RecordCache does). */
const copy = (sport: number | undefined = 41000, t: Flow = tcp): Flow => {
  registerTemplate(t);
  return copyOfShape(t, formatTimestamp(ts), '11111111-2222-4333-8444-555555555555', sport);
};

/** Every record golden and every fixture, by name: the records templates are made from. */
function goldensAndFixtures(): [string, Flow][] {
  const dir = join(import.meta.dirname, 'testdata');
  return [
    ...readdirSync(dir)
      .filter((f) => /^(record|l7|dns)-.*\.golden\.json$/.test(f))
      .map((f): [string, Flow] => [f, JSON.parse(readFileSync(join(dir, f), 'utf8')) as Flow]),
    ...Object.entries(FLOWS).map(([k, v]): [string, Flow] => [`fixture ${k}`, structuredClone(v)]),
  ];
}

describe('shapeOf: an untouched copy has its shape, a changed one not', () => {
  const rows: { name: string; flow: () => Flow; shaped: boolean }[] = [
    { name: 'a copy with its own port', flow: () => copy(), shaped: true },
    { name: "a copy with the template's port", flow: () => copy(undefined), shaped: true },
    {
      name: 'a copy of a record without ports (ICMP)',
      flow: () => copy(41000, FLOWS.icmpWorldEgress),
      shaped: true,
    },
    {
      name: 'the template itself',
      flow: () => {
        registerTemplate(tcp);
        return tcp;
      },
      shaped: true,
    },
    { name: 'a spread of a copy (the same keys and values)', flow: () => ({ ...copy() }), shaped: true },
    {
      name: 'a record of the same values but its own source object (no template)',
      flow: () => ({ ...copy(), source: { ...tcp.source } }),
      shaped: false,
    },
    {
      name: 'the same keys in another order',
      flow: () => {
        const { uuid, ...rest } = copy();
        return { uuid, ...rest };
      },
      shaped: false,
    },
    {
      name: 'the port pair keys in another order',
      flow: () => {
        const c = copy();
        const { source_port, ...rest } = (c.l4 as { TCP: { source_port: number } }).TCP;
        c.l4 = { TCP: { ...rest, source_port } };
        return c;
      },
      shaped: false,
    },
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
    // time, uuid and port are read from the record itself: changing them keeps the shape
    {
      name: 'the time changed',
      flow: () => Object.assign(copy(), { time: '2025-01-01T00:00:00Z' }),
      shaped: true,
    },
    { name: 'the uuid changed', flow: () => Object.assign(copy(), { uuid: 'x"y\u2028' }), shaped: true },
    { name: 'a time that is no string', flow: () => Object.assign(copy(), { time: 5 }), shaped: false },
    {
      name: 'the port changed in place',
      flow: () => {
        const c = copy();
        (c.l4 as { TCP: { source_port: number } }).TCP.source_port = 1;
        return c;
      },
      shaped: true,
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
      shaped: true,
    },
    { name: 'a non-integer port is not templated', flow: () => copy(1.5), shaped: false },
    {
      name: 'a port past uint32',
      flow: () => {
        const c = copy();
        (c.l4 as { TCP: { source_port: number } }).TCP.source_port = 2 ** 32;
        return c;
      },
      shaped: false,
    },
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

describe("copyOfShape: a template's copy function gives the spread's copy (values and key order)", () => {
  const templates = goldensAndFixtures();
  for (const [name, t] of templates) {
    it(name, () => {
      registerTemplate(t);
      for (const sport of [undefined, 0, 1, 65535]) {
        const got = copyOfShape(t, '2025-01-02T03:04:05Z', 'u-1', sport);
        const want = spreadCopy(t, '2025-01-02T03:04:05Z', 'u-1', sport);
        assert.deepStrictEqual(got, want);
        assert.deepStrictEqual(Object.keys(got), Object.keys(want));
        assert.equal(JSON.stringify(got), JSON.stringify(want));
        assert.ok(shapeOf(got));
      }
    });
  }
});

describe('shapedCopy: the copy of copyOfShape, with the shape shapeOf gives it', () => {
  const dir = join(import.meta.dirname, 'testdata');
  const rows: [string, Flow, boolean][] = [
    ...readdirSync(dir)
      .filter((f) => /^(record|l7|dns)-.*\.golden\.json$/.test(f))
      .map((f): [string, Flow, boolean] => [f, JSON.parse(readFileSync(join(dir, f), 'utf8')) as Flow, true]),
    ...Object.entries(FLOWS).map(([k, v]): [string, Flow, boolean] => [
      `fixture ${k}`,
      structuredClone(v),
      true,
    ]),
    ['a record that is no template', structuredClone(tcp), false],
  ];
  for (const [name, t, register] of rows) {
    it(name, () => {
      if (register) registerTemplate(t);
      for (const sport of [undefined, 0, 1, 41000, 65535]) {
        const { flow, shape } = shapedCopy(t, '2025-01-02T03:04:05Z', 'u-1', sport);
        assert.deepStrictEqual(flow, copyOfShape(t, '2025-01-02T03:04:05Z', 'u-1', sport));
        assert.deepStrictEqual(Object.keys(flow), Object.keys(spreadCopy(t, '', '', sport)));
        const want = shapeOf(flow);
        assert.equal(shape?.template, want?.template, `sport ${sport}: the template`);
        assert.equal(shape?.sport, want?.sport, `sport ${sport}: the port`);
        assert.equal(shape !== undefined, register && t.source !== undefined, `sport ${sport}`);
        const event: FlowEvent = { flow, node_name: 'n', time: flow.time };
        assert.equal(flowEventJSON(event, shape), JSON.stringify(event));
      }
    });
  }
});

describe('sameShape: records that differ only in time, uuid and source port', () => {
  const t = FLOWS.tcpAllowedIngress!;
  const rows: { name: string; other: () => Flow; same: boolean }[] = [
    {
      name: 'another time, uuid and port',
      other: () => spreadCopy(t, '2025-01-01T00:00:00Z', 'u', 9),
      same: true,
    },
    { name: 'an equal record of its own objects', other: () => structuredClone(t), same: true },
    {
      name: 'another label',
      other: () => ({ ...t, source: { ...t.source, labels: ['k8s:app=x'] } }),
      same: false,
    },
    {
      name: 'another destination port',
      other: () => ({ ...t, l4: { TCP: { destination_port: 1 } } }),
      same: false,
    },
    {
      name: 'the same keys in another order',
      other: () => {
        const { verdict, ...rest } = t;
        return { ...rest, verdict } as Flow;
      },
      same: false,
    },
    { name: 'one field more', other: () => ({ ...t, destination_names: ['a.example'] }), same: false },
  ];
  for (const r of rows) it(r.name, () => assert.equal(sameShape(t, r.other()), r.same));
});

describe("LineBatch: flowEventJSON's text and a newline, line for line", () => {
  const templates = goldensAndFixtures();
  const wide = structuredClone(tcp);
  wide.source = { ...wide.source!, labels: ['k8s:app=café-ü-日本', `k8s:pad=${'x'.repeat(5000)}`] };
  templates.push(['labels beyond ASCII, and a line larger than the batch', wide]);
  for (const [name, t] of templates) {
    it(name, () => {
      registerTemplate(t);
      // a small batch: lines grow it, and views of lines stay exact
      const batch = new LineBatch(64);
      const want: string[] = [];
      // a uuid JSON must escape (none of ours; any string is written as JSON.stringify does)
      for (const [sport, uuid] of [
        [undefined, 'u-1'],
        [1, 'u-1'],
        [41000, 'u-1'],
        [9, 'u"é\\\u0001'],
        [4294967295, 'u-2'],
      ] as const) {
        const { flow, shape } = shapedCopy(t, '2025-01-02T03:04:05.123Z', uuid, sport);
        for (const event of [
          { flow, node_name: 'node-1', time: flow.time },
          { flow, node_name: 'node-2', time: flow.time }, // another node: its own pieces
          { flow, time: flow.time }, // not FlowSink's keys: written whole
        ] as FlowEvent[]) {
          batch.add(event, shape);
          batch.add(event); // shapeOf's shape
          want.push(JSON.stringify(event), JSON.stringify(event));
        }
      }
      assert.equal(batch.bytes().toString('utf8'), `${want.join('\n')}\n`);
      assert.equal(batch.lines, want.length);
      for (let i = 0; i < want.length; i++) assert.equal(batch.line(i).toString('utf8'), `${want[i]}\n`);
      batch.clear();
      assert.equal(batch.bytes().length, 0);
    });
  }
});
