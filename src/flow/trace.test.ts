import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tcpAllowedIngress } from './testing/flows.ts';
import { toProxyTrace } from './trace.ts';
import type { Flow } from './types.ts';

describe('toProxyTrace', () => {
  const redirected: Flow = { ...tcpAllowedIngress, verdict: 'REDIRECTED' };
  const t = toProxyTrace(redirected, 'trace-uuid');
  const rows: Array<{ name: string; check: () => void }> = [
    {
      name: 'a trace event, observation point TO_PROXY',
      check: () => assert.deepEqual(t.event_type, { type: 4, sub_type: 1 }),
    },
    { name: 'FORWARDED', check: () => assert.equal(t.verdict, 'FORWARDED') },
    { name: 'its own uuid', check: () => assert.equal(t.uuid, 'trace-uuid') },
    { name: 'observation point named', check: () => assert.equal(t.trace_observation_point, 'TO_PROXY') },
    {
      name: 'same packet: time, addresses, ports, endpoints, direction',
      check: () => {
        for (const k of [
          'time',
          'IP',
          'l4',
          'source',
          'destination',
          'traffic_direction',
          'node_name',
        ] as const)
          assert.deepEqual(t[k], redirected[k], k);
      },
    },
    {
      name: 'no policy fields (the verdict record has them)',
      check: () => {
        assert.equal(t.policy_match_type, undefined);
        assert.equal(t.ingress_allowed_by, undefined);
        assert.equal(t.drop_reason_desc, undefined);
      },
    },
    {
      name: 'keys in flow.proto order (as protojson prints them)',
      check: () =>
        assert.deepEqual(Object.keys(t), [
          'time',
          'uuid',
          'verdict',
          'IP',
          'l4',
          'source',
          'destination',
          'Type',
          'node_name',
          'event_type',
          'traffic_direction',
          'trace_observation_point',
          'is_reply',
          'Summary',
        ]),
    },
  ];
  for (const r of rows) it(r.name, r.check);
});
