// Test support for flow records: canned verdicts and the labels of a few identities, served by the
// one fake engine (src/policy/testing/fake-engine.ts).

import { ID } from '../identity/reserved.ts';
import { FakeEngine } from '../policy/testing/fake-engine.ts';
import type { DirectionDecision, FlowRequest, PeerRef, RuleRef, Verdict } from '../policy/types.ts';
import type { KernelEvent } from './nflog.ts';

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

/** The two pods the kernel-event tests name: frontend 10.0.1.8, backend 10.0.1.11. */
export const PEERS: Record<string, PeerRef> = {
  '10.0.1.8': { kind: 'endpoint', name: 'frontend', namespace: 'production' },
  '10.0.1.11': { kind: 'endpoint', name: 'backend', namespace: 'production' },
};
/** The ipcache of those tests: PEERS, any other address a bare IP. */
export const resolvePeer = (ip: string): PeerRef => PEERS[ip] ?? { kind: 'ip', ip };

/**
 * A kernel event: a TCP SYN frontend → backend:8080 into endpoint 102, changed by `p`; keys given
 * as undefined are left out (no source port, no flags, ...).
 */
export function kernelEvent(p: { [K in keyof KernelEvent]?: KernelEvent[K] | undefined } = {}): KernelEvent {
  const e: Record<string, unknown> = {
    time: { seconds: 1_700_000_000, nanos: 1000 },
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
  };
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k];
  return e as unknown as KernelEvent;
}
