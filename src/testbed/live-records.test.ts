import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Flow } from '../flow/types.ts';
import type { RingEntry } from '../observe/sink.ts';
import { checkRecords } from './live-test.ts';

function rec(traffic_direction: 'INGRESS' | 'EGRESS', verdict: Flow['verdict']): RingEntry {
  const flow: Flow = { time: 't', uuid: 'u', verdict, Type: 'L3_L4', traffic_direction };
  return { seq: 0, event: { flow, time: 't' } };
}

describe('checkRecords', () => {
  const cases: Array<{
    name: string;
    entries: RingEntry[];
    dirs: Array<'INGRESS' | 'EGRESS'>;
    live: 'allowed' | 'denied' | 'audited';
    problems: number;
  }> = [
    {
      name: 'allowed, both directions forwarded',
      entries: [rec('EGRESS', 'FORWARDED'), rec('INGRESS', 'FORWARDED')],
      dirs: ['EGRESS', 'INGRESS'],
      live: 'allowed',
      problems: 0,
    },
    {
      name: 'allowed, ingress record missing',
      entries: [rec('EGRESS', 'FORWARDED')],
      dirs: ['EGRESS', 'INGRESS'],
      live: 'allowed',
      problems: 1,
    },
    {
      name: 'allowed, redirected counts as through',
      entries: [rec('INGRESS', 'REDIRECTED')],
      dirs: ['INGRESS'],
      live: 'allowed',
      problems: 0,
    },
    {
      name: 'allowed but a drop record',
      entries: [rec('INGRESS', 'FORWARDED'), rec('EGRESS', 'DROPPED')],
      dirs: ['INGRESS'],
      live: 'allowed',
      problems: 1,
    },
    {
      name: 'denied at ingress after egress allowed',
      entries: [rec('EGRESS', 'FORWARDED'), rec('INGRESS', 'DROPPED')],
      dirs: ['EGRESS', 'INGRESS'],
      live: 'denied',
      problems: 0,
    },
    {
      name: 'denied without a drop record',
      entries: [rec('EGRESS', 'FORWARDED')],
      dirs: ['EGRESS'],
      live: 'denied',
      problems: 1,
    },
    { name: 'nothing enforced, nothing expected', entries: [], dirs: [], live: 'denied', problems: 0 },
    {
      name: 'audited: an AUDIT record where the audited policy is, FORWARDED on the other side',
      entries: [rec('EGRESS', 'FORWARDED'), rec('INGRESS', 'AUDIT')],
      dirs: ['EGRESS', 'INGRESS'],
      live: 'audited',
      problems: 0,
    },
    {
      name: 'audited but only FORWARDED records',
      entries: [rec('INGRESS', 'FORWARDED')],
      dirs: ['INGRESS'],
      live: 'audited',
      problems: 1,
    },
    {
      name: 'an AUDIT record counts as through for an allowed flow',
      entries: [rec('INGRESS', 'AUDIT')],
      dirs: ['INGRESS'],
      live: 'allowed',
      problems: 0,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = checkRecords(c.entries, c.dirs, c.live);
      assert.equal(r.problems.length, c.problems, r.problems.join('; '));
      assert.equal(r.done, c.problems === 0);
    });
  }
});
