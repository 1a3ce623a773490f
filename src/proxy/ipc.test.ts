import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MapStateEntry } from '../policy/types.ts';
import { lineDecoder, type SideVerdict, type SnapshotEndpoint, sideVerdict } from './ipc.ts';

const pos = { file: 't', line: 1, column: 1 };
const e = (
  verdict: MapStateEntry['verdict'],
  identity: number,
  port: number,
  parser?: 'http' | 'dns',
): MapStateEntry => {
  const out: MapStateEntry = {
    key: { direction: 'INGRESS', identity, proto: 6, portLo: port, portHi: port },
    verdict,
    derivedFrom: [],
  };
  if (parser === 'http') out.l7 = { parser, rules: [{ pos, method: 'GET' }] };
  if (parser === 'dns') out.l7 = { parser, rules: [] };
  return out;
};
const ep = (entries: MapStateEntry[], defaultDeny = true, enforced = true): SnapshotEndpoint => ({
  ip: '10.0.0.2',
  endpoint: 'ns/server',
  namespace: 'ns',
  ingress: { enforced, defaultDeny },
  egress: { enforced: false, defaultDeny: false },
  entries,
});

describe('sideVerdict (the proxy mirror decides a side as decide does)', () => {
  const rows: Array<{
    name: string;
    ep: SnapshotEndpoint | undefined;
    want: SideVerdict['kind'];
    wildcard?: boolean;
  }> = [
    { name: 'not a local endpoint: the other node judges', ep: undefined, want: 'none' },
    { name: 'direction not enforced', ep: ep([], true, false), want: 'none' },
    {
      name: 'redirect only: its L7 rules',
      ep: ep([e('redirect', 256, 80, 'http')]),
      want: 'l7',
      wildcard: false,
    },
    {
      name: 'redirect and allow: the L7 wildcard',
      ep: ep([e('redirect', 256, 80, 'http'), e('allow', 0, 80)]),
      want: 'l7',
      wildcard: true,
    },
    {
      name: 'a deny wins over the redirect',
      ep: ep([e('redirect', 256, 80, 'http'), e('deny', 256, 80)]),
      want: 'deny',
    },
    { name: 'nothing matches, default deny', ep: ep([e('redirect', 999, 80, 'http')]), want: 'deny' },
    { name: 'nothing matches, no default deny', ep: ep([], false), want: 'none' },
    { name: 'plain allow: no L7 on this side', ep: ep([e('allow', 256, 80)]), want: 'none' },
    {
      name: 'another parser only: never judged as http',
      ep: ep([e('redirect', 256, 80, 'dns')]),
      want: 'deny',
    },
    { name: 'another port', ep: ep([e('redirect', 256, 81, 'http')]), want: 'deny' },
    {
      name: 'nothing matches, audited default deny (audit mode): passes',
      ep: { ...ep([]), ingress: { enforced: true, defaultDeny: true, auditDefaultDeny: true } },
      want: 'none',
    },
    {
      name: 'an audit entry denies nothing',
      ep: ep([e('audit', 256, 80), e('allow', 256, 80)]),
      want: 'none',
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const v = sideVerdict(r.ep, 'INGRESS', 256, 6, 80, 'http');
      assert.equal(v.kind, r.want);
      if (v.kind === 'l7') assert.equal(v.wildcard, r.wildcard);
    });
  }
});

describe('lineDecoder', () => {
  it('splits across chunks and reports a bad line without stopping', () => {
    const got: unknown[] = [];
    const bad: string[] = [];
    const feed = lineDecoder<unknown>(
      (m) => got.push(m),
      (l) => bad.push(l),
    );
    feed('{"a":');
    feed('1}\nnot json\n{"b":2}\n');
    assert.deepEqual(got, [{ a: 1 }, { b: 2 }]);
    assert.deepEqual(bad, ['not json']);
  });
});
