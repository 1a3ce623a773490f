// Test support: a stand-in for the policy engine (src/policy/engine.ts is built in parallel),
// implementing the PolicyEngineAPI contract with canned verdicts.

import { ID } from '../identity/reserved.ts';
import type {
  DirectionDecision,
  EndpointPolicy,
  EngineConfig,
  FlowRequest,
  PeerRef,
  PolicyEngineAPI,
  RuleRef,
  Verdict,
} from '../policy/types.ts';

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

export class FakeEngine implements PolicyEngineAPI {
  readonly config: EngineConfig = { enforcementMode: 'default', clusterName: 'default', localNode: 'node-1' };
  constructor(private readonly verdictFor: (f: FlowRequest) => Verdict = () => allowIngress()) {}
  upsertNamespace(): void {}
  upsertEndpoint(): void {}
  removeEndpoint(): void {}
  upsertPolicy(): [] {
    return [];
  }
  removePolicy(): void {}
  learnDNS(): void {}
  decide(flow: FlowRequest): Verdict {
    return this.verdictFor(flow);
  }
  endpointPolicy(): EndpointPolicy {
    throw new Error('not in the fake');
  }
  identityOf(peer: PeerRef): number {
    if (peer.kind === 'endpoint') return peer.name === 'frontend' ? 1001 : 1002;
    if (peer.kind === 'entity') return peer.entity === 'world' ? ID.world : ID.host;
    return 16777217;
  }
  labelsOf(id: number): string[] {
    return LABELS[id] ?? [];
  }
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
