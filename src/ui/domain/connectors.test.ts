import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  connectorLabel,
  connectorPath,
  connectorStatus,
  spreadAnchors,
  undecidedConnector,
} from './connectors.ts';

describe('connector status of a rule card', () => {
  const rows: { name: string; effect: 'allow' | 'deny'; flows: number[]; want: string }[] = [
    { name: 'an allow entry that decided flows', effect: 'allow', flows: [1, 2], want: 'allowed' },
    { name: 'a deny entry that decided flows', effect: 'deny', flows: [3], want: 'denied' },
    { name: 'an allow entry with no flow in the group', effect: 'allow', flows: [], want: 'nothing' },
    { name: 'a deny entry with no flow in the group', effect: 'deny', flows: [], want: 'nothing' },
  ];
  for (const r of rows) it(r.name, () => assert.equal(connectorStatus(r), r.want));
});

describe('connector label', () => {
  const rows: { name: string; ports: string[]; l7: string[]; want: string }[] = [
    { name: 'ports', ports: ['8080/TCP', '8443/TCP'], l7: [], want: '8080/TCP, 8443/TCP' },
    { name: 'no ports: all of them', ports: [], l7: [], want: 'all ports' },
    { name: 'one L7 rule', ports: ['53/UDP'], l7: ['DNS *'], want: '53/UDP + 1 L7 rule' },
    {
      name: 'several L7 rules',
      ports: ['8080/TCP'],
      l7: ['HTTP GET /a', 'HTTP POST /b'],
      want: '8080/TCP + 2 L7 rules',
    },
  ];
  for (const r of rows) it(r.name, () => assert.equal(connectorLabel(r), r.want));
});

describe('the line of the flows no entry decided', () => {
  const rows: {
    name: string;
    enforced: boolean;
    defaultDeny: boolean;
    verdicts: string[];
    want: [string, string];
  }[] = [
    {
      name: 'default deny dropped them',
      enforced: true,
      defaultDeny: true,
      verdicts: ['DROPPED', 'DROPPED'],
      want: ['denied', 'default deny'],
    },
    {
      name: 'audit mode: the policy denied, the flow passed',
      enforced: true,
      defaultDeny: true,
      verdicts: ['AUDIT', 'DROPPED'],
      want: ['denied', 'default deny'],
    },
    {
      name: 'host traffic passes a default-deny side without a rule',
      enforced: true,
      defaultDeny: true,
      verdicts: ['FORWARDED'],
      want: ['allowed', 'allowed without a rule'],
    },
    {
      name: 'some dropped, some let through',
      enforced: true,
      defaultDeny: true,
      verdicts: ['DROPPED', 'FORWARDED', 'FORWARDED'],
      want: ['mixed', 'default deny ×1, allowed ×2'],
    },
    {
      name: 'not enforced lets them through',
      enforced: false,
      defaultDeny: false,
      verdicts: ['FORWARDED'],
      want: ['allowed', 'not enforced'],
    },
    {
      name: 'the flows left the page: the policy says',
      enforced: true,
      defaultDeny: true,
      verdicts: [],
      want: ['denied', 'default deny'],
    },
    {
      name: 'the flows left the page, nothing enforced',
      enforced: false,
      defaultDeny: false,
      verdicts: [],
      want: ['allowed', 'not enforced'],
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const c = undecidedConnector(r, r.verdicts);
      assert.deepEqual([c.status, c.label], r.want);
    });
});

describe('connector geometry', () => {
  it('spreads anchors evenly down the chosen side of the endpoint box', () => {
    const box = { left: 100, top: 40, width: 200, height: 120 };
    assert.deepEqual(spreadAnchors(box, 'left', 3), [
      { x: 100, y: 70 },
      { x: 100, y: 100 },
      { x: 100, y: 130 },
    ]);
    assert.deepEqual(spreadAnchors(box, 'right', 1), [{ x: 300, y: 100 }]);
    assert.deepEqual(spreadAnchors(box, 'left', 0), []);
  });
  it('draws a curve that leaves and enters horizontally, from the first point to the second', () => {
    assert.equal(connectorPath({ x: 0, y: 10 }, { x: 100, y: 50 }), 'M 0 10 C 50 10, 50 50, 100 50');
    // Short hops still bend: the control points stay at least 24 px out.
    assert.equal(connectorPath({ x: 0, y: 0 }, { x: 20, y: 30 }), 'M 0 0 C 24 0, -4 30, 20 30');
  });
});
