// Test support for flow records: canned verdicts and the labels of a few identities, served by the
// one fake engine (src/policy/testing/fake-engine.ts).

import { ID } from '../identity/reserved.ts';
import { FakeEngine } from '../policy/testing/fake-engine.ts';
import type { DirectionDecision, FlowRequest, PeerRef, RuleRef, Verdict } from '../policy/types.ts';

export const LABELS: Record<number, string[]> = {
  [ID.world]: ['reserved:world'],
  1001: [
    'k8s:app=frontend',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=default',
    'k8s:io.kubernetes.pod.namespace=production',
  ],
  1002: [
    'k8s:app=backend',
    'k8s:io.cilium.k8s.policy.cluster=default',
    'k8s:io.cilium.k8s.policy.serviceaccount=default',
    'k8s:io.kubernetes.pod.namespace=production',
  ],
  16777217: ['cidr:203.0.113.0/24', 'reserved:world'],
};

export function ref(kind: string, name: string, namespace: string | undefined, section: string): RuleRef {
  const r: RuleRef = {
    kind,
    name,
    ruleIndex: 0,
    section,
    entryIndex: 0,
    pos: { file: 'p.yaml', line: 1, column: 1 },
  };
  if (namespace !== undefined) r.namespace = namespace;
  return r;
}

export function decision(
  p: Partial<DirectionDecision> & Pick<DirectionDecision, 'direction'>,
): DirectionDecision {
  return {
    endpoint: 'production/backend',
    enforced: true,
    allowed: true,
    matchType: 'L3_L4',
    allowedBy: [],
    deniedBy: [],
    explanation: [],
    ...p,
  };
}

/** A fake engine deciding every flow with `verdictFor` (default: allowed at ingress). */
export function flowEngine(verdictFor: (f: FlowRequest) => Verdict = () => allowIngress()): FakeEngine {
  return new FakeEngine({
    decide: verdictFor,
    identityOf: (peer: PeerRef) => {
      if (peer.kind === 'endpoint') return peer.name === 'frontend' ? 1001 : 1002;
      if (peer.kind === 'entity') return peer.entity === 'world' ? ID.world : ID.host;
      return 16777217;
    },
    labelsOf: (id) => LABELS[id] ?? [],
  });
}

export function allowIngress(): Verdict {
  return {
    allowed: true,
    verdict: 'FORWARDED',
    decidedBy: 'INGRESS',
    srcIdentity: 1001,
    dstIdentity: 1002,
    egress: decision({
      direction: 'EGRESS',
      enforced: false,
      matchType: 'ALL',
      endpoint: 'production/frontend',
    }),
    ingress: decision({
      direction: 'INGRESS',
      allowedBy: [
        ref('CiliumNetworkPolicy', 'backend-ingress', 'production', 'ingress'),
        ref('CiliumNetworkPolicy', 'backend-ingress', 'production', 'ingress'),
      ],
    }),
    explanation: [],
  };
}
