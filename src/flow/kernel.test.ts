import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PeerRef, Verdict } from '../policy/types.ts';
import { recordFromKernelEvent } from './kernel.ts';
import type { KernelEvent } from './nflog.ts';
import { allowIngress, decision, flowEngine, ref } from './test-support.ts';

const peers: Record<string, PeerRef> = {
  '10.0.1.8': { kind: 'endpoint', name: 'frontend', namespace: 'production' },
  '10.0.1.11': { kind: 'endpoint', name: 'backend', namespace: 'production' },
};
const resolve = (ip: string): PeerRef => peers[ip] ?? { kind: 'ip', ip };
const ev = (p: Partial<KernelEvent>): KernelEvent => ({
  time: { seconds: 1700000000, nanos: 1000 },
  verdict: 'fwd',
  dir: 'in',
  endpointId: 102,
  srcIP: '10.0.1.8',
  dstIP: '10.0.1.11',
  proto: 6,
  sport: 40000,
  dport: 8080,
  tcpFlags: { SYN: true },
  ...p,
});
const denyIngress = (reason: 'POLICY_DENY' | 'POLICY_DENIED'): Verdict => ({
  allowed: false,
  verdict: 'DROPPED',
  reason,
  decidedBy: 'INGRESS',
  srcIdentity: 1001,
  dstIdentity: 1002,
  ingress: decision({
    direction: 'INGRESS',
    allowed: false,
    reason,
    matchType: 'NONE',
    deniedBy:
      reason === 'POLICY_DENY' ? [ref('CiliumNetworkPolicy', 'no-9090', 'production', 'ingressDeny')] : [],
  }),
  explanation: [],
});

describe('recordFromKernelEvent', () => {
  const rows: {
    name: string;
    ev: KernelEvent;
    verdict: Verdict;
    want: { verdict: string; reason?: string; agrees: boolean; dir: string };
  }[] = [
    {
      name: 'allowed, engine agrees',
      ev: ev({}),
      verdict: allowIngress(),
      want: { verdict: 'FORWARDED', agrees: true, dir: 'INGRESS' },
    },
    {
      name: 'explicit deny, engine agrees',
      ev: ev({ verdict: 'deny', dport: 9090 }),
      verdict: denyIngress('POLICY_DENY'),
      want: { verdict: 'DROPPED', reason: 'POLICY_DENY', agrees: true, dir: 'INGRESS' },
    },
    {
      name: 'kernel default-deny but engine says explicit deny: disagreement',
      ev: ev({ verdict: 'denied', dport: 9090 }),
      verdict: denyIngress('POLICY_DENY'),
      want: { verdict: 'DROPPED', reason: 'POLICY_DENIED', agrees: false, dir: 'INGRESS' },
    },
    {
      name: 'kernel forwards what the engine denies: disagreement, kernel verdict kept',
      ev: ev({}),
      verdict: denyIngress('POLICY_DENIED'),
      want: { verdict: 'FORWARDED', agrees: false, dir: 'INGRESS' },
    },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const out = recordFromKernelEvent(
        flowEngine(() => r.verdict),
        r.ev,
        {
          nodeName: 'node-1',
          resolve,
        },
      );
      assert.ok(out !== undefined);
      assert.equal(out.flow.verdict, r.want.verdict);
      assert.equal(out.flow.drop_reason_desc, r.want.reason);
      assert.equal(out.flow.traffic_direction, r.want.dir);
      assert.equal(out.agrees, r.want.agrees);
      assert.equal(out.flow.destination?.ID, 102);
      assert.equal(out.flow.time, '2023-11-14T22:13:20.000001Z');
    });
  }
  it('egress event names the source endpoint id; unknown protocols are skipped', () => {
    const out = recordFromKernelEvent(flowEngine(), ev({ dir: 'eg', endpointId: 101 }), {
      nodeName: 'n',
      resolve,
    });
    assert.equal(out?.flow.source?.ID, 101);
    assert.equal(out?.flow.traffic_direction, 'EGRESS');
    assert.equal(
      recordFromKernelEvent(flowEngine(), ev({ proto: 47 }), { nodeName: 'n', resolve }),
      undefined,
    );
  });
});
