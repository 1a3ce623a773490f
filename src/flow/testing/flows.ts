// Named Hubble flow records for tests (the way hubble-ui keeps src/testing/data/flows.ts): one
// small cluster, production/frontend (identity 1001, 10.0.1.10) and production/backend (1002,
// 10.0.1.20) on node-1, kube-system/coredns (1003, 10.0.0.10), and the world. Each record is
// what flowFromVerdict makes for its case (flows.test.ts checks the invariants), so tests that
// filter, format or count flows read realistic records instead of building them by hand.
// Spread a fixture to change one field: `{ ...tcpAllowedIngress, verdict: 'DROPPED' }`.

import { ID } from '../../identity/reserved.ts';
import { policyUID } from '../record.ts';
import type { Flow, FlowEndpoint, FlowPolicy } from '../types.ts';

const TIME = '2025-01-02T03:04:05.678901Z';

const podLabels = (app: string, namespace: string): string[] => [
  `k8s:app=${app}`,
  'k8s:io.cilium.k8s.policy.cluster=default',
  'k8s:io.cilium.k8s.policy.serviceaccount=default',
  `k8s:io.kubernetes.pod.namespace=${namespace}`,
];

export const frontend: FlowEndpoint = {
  ID: 101,
  identity: 1001,
  cluster_name: 'default',
  namespace: 'production',
  labels: podLabels('frontend', 'production'),
  pod_name: 'frontend',
};

export const backend: FlowEndpoint = {
  ID: 102,
  identity: 1002,
  cluster_name: 'default',
  namespace: 'production',
  labels: podLabels('backend', 'production'),
  pod_name: 'backend',
};

export const coredns: FlowEndpoint = {
  ID: 103,
  identity: 1003,
  cluster_name: 'default',
  namespace: 'kube-system',
  labels: podLabels('coredns', 'kube-system'),
  pod_name: 'coredns',
};

export const world: FlowEndpoint = { identity: ID.world, labels: ['reserved:world'] };

/** A CIDR identity for 203.0.113.0/24 (node-local scope). */
export const worldCIDR: FlowEndpoint = {
  identity: 16777217,
  labels: ['cidr:203.0.113.0/24', 'reserved:world'],
};

/** A policy as flow.proto's Policy names it, with Cilium's derived labels. */
export function policy(kind: string, name: string, namespace?: string): FlowPolicy {
  const labels = [
    `k8s:io.cilium.k8s.policy.derived-from=${kind}`,
    `k8s:io.cilium.k8s.policy.name=${name}`,
    ...(namespace !== undefined ? [`k8s:io.cilium.k8s.policy.namespace=${namespace}`] : []),
    `k8s:io.cilium.k8s.policy.uid=${policyUID(namespace !== undefined ? { kind, name, namespace } : { kind, name })}`,
  ];
  return namespace !== undefined ? { name, namespace, labels, kind } : { name, labels, kind };
}

/** frontend → backend:8080, allowed at ingress by CNP production/backend-ingress (L3/L4 match). */
export const tcpAllowedIngress: Flow = {
  time: TIME,
  uuid: '00000000-0000-4000-8000-000000000001',
  verdict: 'FORWARDED',
  IP: { source: '10.0.1.10', destination: '10.0.1.20', ipVersion: 'IPv4' },
  l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
  source: frontend,
  destination: backend,
  Type: 'L3_L4',
  node_name: 'node-1',
  event_type: { type: 5 },
  traffic_direction: 'INGRESS',
  policy_match_type: 2,
  is_reply: false,
  Summary: 'TCP Flags: SYN',
  ingress_allowed_by: [policy('CiliumNetworkPolicy', 'backend-ingress', 'production')],
};

/** frontend → backend, ICMP echo dropped at ingress: no rule allows it (default deny). */
export const icmpDefaultDenyIngress: Flow = {
  time: '2025-12-25T23:59:59Z',
  uuid: '00000000-0000-4000-8000-000000000002',
  verdict: 'DROPPED',
  drop_reason: 133,
  IP: { source: '10.0.1.10', destination: '10.0.1.20', ipVersion: 'IPv4' },
  l4: { ICMPv4: { type: 8 } },
  source: frontend,
  destination: backend,
  Type: 'L3_L4',
  node_name: 'node-1',
  event_type: { type: 5 },
  traffic_direction: 'INGRESS',
  drop_reason_desc: 'POLICY_DENIED',
  Summary: 'ICMPv4 EchoRequest',
};

/** frontend → 203.0.113.10:53/UDP dropped at egress: frontend's egress allows nothing there. */
export const udpDefaultDenyEgress: Flow = {
  time: TIME,
  uuid: '00000000-0000-4000-8000-000000000003',
  verdict: 'DROPPED',
  drop_reason: 133,
  IP: { source: '10.0.1.10', destination: '203.0.113.10', ipVersion: 'IPv4' },
  l4: { UDP: { source_port: 5353, destination_port: 53 } },
  source: frontend,
  destination: worldCIDR,
  Type: 'L3_L4',
  node_name: 'node-1',
  event_type: { type: 5 },
  traffic_direction: 'EGRESS',
  drop_reason_desc: 'POLICY_DENIED',
  Summary: 'UDP',
};

/** The same packet denied by explicit egressDeny rules (CNP production/no-dns and CCNP ccnp). */
export const udpExplicitDenyEgress: Flow = {
  time: TIME,
  uuid: '00000000-0000-4000-8000-000000000004',
  verdict: 'DROPPED',
  drop_reason: 181,
  IP: { source: '10.0.1.10', destination: '203.0.113.10', ipVersion: 'IPv4' },
  l4: { UDP: { source_port: 5353, destination_port: 53 } },
  source: frontend,
  destination: worldCIDR,
  Type: 'L3_L4',
  node_name: 'node-1',
  event_type: { type: 5 },
  traffic_direction: 'EGRESS',
  policy_match_type: 1,
  drop_reason_desc: 'POLICY_DENY',
  Summary: 'UDP',
  egress_denied_by: [
    policy('CiliumNetworkPolicy', 'no-dns', 'production'),
    policy('CiliumClusterwideNetworkPolicy', 'ccnp'),
  ],
};

/** frontend → 198.51.100.7 ICMP echo, allowed at egress by KNP production/allow-world (L3 only). */
export const icmpWorldEgress: Flow = {
  time: TIME,
  uuid: '00000000-0000-4000-8000-000000000005',
  verdict: 'FORWARDED',
  IP: { source: '10.0.1.10', destination: '198.51.100.7', ipVersion: 'IPv4' },
  l4: { ICMPv4: { type: 8 } },
  source: frontend,
  destination: world,
  Type: 'L3_L4',
  node_name: 'node-1',
  event_type: { type: 5 },
  traffic_direction: 'EGRESS',
  policy_match_type: 1,
  is_reply: false,
  Summary: 'ICMPv4 EchoRequest',
  egress_allowed_by: [policy('NetworkPolicy', 'allow-world', 'production')],
};

/** frontend's DNS query for api.github.com through the DNS proxy (an egress L7 DNS rule allowed it). */
export const dnsL7Egress: Flow = {
  time: TIME,
  uuid: '00000000-0000-4000-8000-000000000006',
  verdict: 'FORWARDED',
  IP: { source: '10.0.1.10', destination: '10.0.0.10', ipVersion: 'IPv4' },
  l4: { UDP: { source_port: 41234, destination_port: 53 } },
  source: frontend,
  destination: coredns,
  Type: 'L7',
  node_name: 'node-1',
  l7: { type: 'REQUEST', dns: { query: 'api.github.com.', qtypes: ['A'], observation_source: 'proxy' } },
  event_type: { type: 129 },
  traffic_direction: 'EGRESS',
  is_reply: false,
  Summary: 'DNS Query api.github.com. A',
  egress_allowed_by: [policy('CiliumNetworkPolicy', 'frontend-dns', 'production')],
};

/** Every fixture by name, for table-driven tests over all of them. */
export const FLOWS: Readonly<Record<string, Flow>> = {
  tcpAllowedIngress,
  icmpDefaultDenyIngress,
  udpDefaultDenyEgress,
  udpExplicitDenyEgress,
  icmpWorldEgress,
  dnsL7Egress,
};
