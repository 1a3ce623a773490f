// `seawall demo`: the offline part (what runs without root), and the per-step view of the live
// part (only the flows whose verdict a step changed, with the rule that decided them).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DirectionDecision, RuleRef, Verdict } from '../policy/types.ts';
import { changedVerdicts, type DemoVerdict, decidingRules, runDemo } from './demo.ts';

it('runDemo offline: validation of the originals, then the offline verdicts, exit 0', async () => {
  const lines: string[] = [];
  const code = await runDemo((l) => lines.push(l), { live: false });
  assert.equal(code, 0);
  assert.ok(lines[0]?.startsWith('== 1. What `seawall validate` says'), lines[0]);
  assert.ok(lines.some((l) => l.startsWith('== 2. Offline verdicts')));
  assert.ok(lines.some((l) => /^ {2}(ALLOWED|DENIED) /.test(l)));
});

const v = (flow: number, live: DemoVerdict['live']): DemoVerdict => ({
  flow,
  text: `a -> b TCP/${flow}`,
  live,
  offline: live,
  rules: 'r',
});

describe('changedVerdicts', () => {
  const rows: Array<{
    name: string;
    before: DemoVerdict[];
    now: DemoVerdict[];
    want: Array<[number, string]>;
  }> = [
    { name: 'nothing changed', before: [v(1, 'DROPPED')], now: [v(1, 'DROPPED')], want: [] },
    {
      name: 'one flipped to DROPPED, one unchanged',
      before: [v(1, 'FORWARDED'), v(2, 'FORWARDED')],
      now: [v(1, 'DROPPED'), v(2, 'FORWARDED')],
      want: [[1, 'FORWARDED']],
    },
    {
      name: 'flipped back to FORWARDED',
      before: [v(3, 'DROPPED')],
      now: [v(3, 'FORWARDED')],
      want: [[3, 'DROPPED']],
    },
    { name: 'a flow not in the earlier pass is not a change', before: [], now: [v(4, 'DROPPED')], want: [] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      assert.deepEqual(
        changedVerdicts(r.before, r.now).map((c) => [c.flow, c.was]),
        r.want,
      );
    });
  }
});

const rule = (name: string, namespace?: string): RuleRef => ({
  kind: 'CiliumNetworkPolicy',
  name,
  ...(namespace !== undefined ? { namespace } : {}),
  ruleIndex: 0,
  section: 'ingress',
  entryIndex: 0,
  pos: { file: 'f', line: 1, column: 1 },
});

const dec = (d: 'INGRESS' | 'EGRESS', o: Partial<DirectionDecision>): DirectionDecision =>
  ({
    direction: d,
    endpoint: 'shop/db',
    enforced: true,
    allowed: true,
    matchType: 'l3-l4',
    allowedBy: [],
    deniedBy: [],
    explanation: [],
    ...o,
  }) as DirectionDecision;

describe('decidingRules', () => {
  const base: Verdict = {
    allowed: true,
    verdict: 'FORWARDED',
    srcIdentity: 1,
    dstIdentity: 2,
    explanation: [],
  };
  const rows: Array<{ name: string; v: Verdict; want: string }> = [
    { name: 'nothing enforced', v: base, want: 'no policy selects either end' },
    {
      name: 'ingress allowed by two entries of one policy',
      v: { ...base, ingress: dec('INGRESS', { allowedBy: [rule('x', 'shop'), rule('x', 'shop')] }) },
      want: 'ingress_allowed_by shop/x',
    },
    {
      name: 'egress default deny',
      v: { ...base, egress: dec('EGRESS', { allowed: false, endpoint: 'shop/web' }) },
      want: 'egress default deny of shop/web',
    },
    {
      name: 'an explicit deny names its (cluster-wide) policy',
      v: { ...base, ingress: dec('INGRESS', { allowed: false, deniedBy: [rule('ccnp')] }) },
      want: 'ingress_denied_by ccnp',
    },
    {
      name: 'both directions, egress first',
      v: {
        ...base,
        egress: dec('EGRESS', { allowedBy: [rule('e', 'shop')] }),
        ingress: dec('INGRESS', { allowed: false }),
      },
      want: 'egress_allowed_by shop/e; ingress default deny of shop/db',
    },
  ];
  for (const r of rows) it(r.name, () => assert.equal(decidingRules(r.v), r.want));
});
