// Named UI flows for the domain, server and browser tests: the shared fixture flows of
// flow/testing (production/frontend, backend, kube-system/coredns, the world) plus the cases the
// map and filter need (an HTTP request, a reply, host and remote-node traffic, an audit), each
// with the rule hits the engine would attach. Spread one to change a field.

import {
  backend,
  dnsL7Egress,
  frontend,
  icmpDefaultDenyIngress,
  icmpWorldEgress,
  policy,
  tcpAllowedIngress,
  udpExplicitDenyEgress,
} from '../../../flow/testing/flows.ts';
import type { Flow, FlowEndpoint } from '../../../flow/types.ts';
import type { RuleHit, UIFlow } from '../types.ts';

export const host: FlowEndpoint = { identity: 1, labels: ['reserved:host'] };
export const remoteNode: FlowEndpoint = { identity: 6, labels: ['reserved:remote-node'] };

/** frontend → backend GET /api/users through the HTTP proxy (L7 record). */
export const httpGet: Flow = {
  ...tcpAllowedIngress,
  uuid: '00000000-0000-4000-8000-0000000000a1',
  verdict: 'FORWARDED',
  Type: 'L7',
  l7: {
    type: 'REQUEST',
    http: { method: 'GET', url: 'http://backend:8080/api/users?id=1', protocol: 'HTTP/1.1' },
  },
  event_type: { type: 129 },
  Summary: 'HTTP/1.1 GET http://backend:8080/api/users?id=1',
};

/** backend's SYN-ACK back to frontend: a reply, never an arrow of its own. */
export const tcpReply: Flow = {
  ...tcpAllowedIngress,
  uuid: '00000000-0000-4000-8000-0000000000a2',
  IP: { source: '10.0.1.20', destination: '10.0.1.10', ipVersion: 'IPv4' },
  l4: { TCP: { source_port: 8080, destination_port: 40000, flags: { SYN: true, ACK: true } } },
  source: backend,
  destination: frontend,
  is_reply: true,
  Summary: 'TCP Flags: SYN, ACK',
};

/** The node's kubelet probing backend:8080 (host traffic, hidden by the host toggle). */
export const hostProbe: Flow = {
  ...tcpAllowedIngress,
  uuid: '00000000-0000-4000-8000-0000000000a3',
  IP: { source: '10.0.0.1', destination: '10.0.1.20', ipVersion: 'IPv4' },
  source: host,
  ingress_allowed_by: [policy('CiliumNetworkPolicy', 'backend-ingress', 'production')],
};

/** A pod on another node reaching backend:9090, dropped. */
export const remoteNodeDrop: Flow = {
  ...icmpDefaultDenyIngress,
  uuid: '00000000-0000-4000-8000-0000000000a4',
  IP: { source: '10.0.2.1', destination: '10.0.1.20', ipVersion: 'IPv4' },
  l4: { TCP: { source_port: 41000, destination_port: 9090, flags: { SYN: true } } },
  source: remoteNode,
  Summary: 'TCP Flags: SYN',
};

/** frontend → backend:8080 under an audit-mode policy: would drop, passes. */
export const tcpAudit: Flow = (({ ingress_allowed_by: _, ...rest }) => ({
  ...rest,
  uuid: '00000000-0000-4000-8000-0000000000a5',
  verdict: 'AUDIT' as const,
  l4: { TCP: { source_port: 40001, destination_port: 8443, flags: { SYN: true as const } } },
}))(tcpAllowedIngress);

const FILE = 'policies/production.yaml';
export const hitBackendIngress: RuleHit = {
  kind: 'CiliumNetworkPolicy',
  name: 'backend-ingress',
  namespace: 'production',
  ruleIndex: 0,
  section: 'ingress',
  entryIndex: 0,
  file: FILE,
  line: 9,
  column: 7,
  direction: 'INGRESS',
  effect: 'allow',
};
export const hitBackendFromHost: RuleHit = { ...hitBackendIngress, entryIndex: 1, line: 20 };
export const hitNoDNS: RuleHit = {
  kind: 'CiliumNetworkPolicy',
  name: 'no-dns',
  namespace: 'production',
  ruleIndex: 0,
  section: 'egressDeny',
  entryIndex: 0,
  file: FILE,
  line: 30,
  column: 7,
  direction: 'EGRESS',
  effect: 'deny',
};
export const hitFrontendDNS: RuleHit = {
  ...hitNoDNS,
  name: 'frontend-dns',
  section: 'egress',
  line: 44,
  effect: 'allow',
};

/** The fixtures as the UI holds them, in arrival order. */
export function uiFlows(): UIFlow[] {
  const rows: [Flow, RuleHit[]][] = [
    [tcpAllowedIngress, [hitBackendIngress]],
    [tcpReply, []],
    [httpGet, [hitBackendIngress]],
    [icmpDefaultDenyIngress, []],
    [udpExplicitDenyEgress, [hitNoDNS]],
    [icmpWorldEgress, []],
    [dnsL7Egress, [hitFrontendDNS]],
    [hostProbe, [hitBackendFromHost]],
    [remoteNodeDrop, []],
    [tcpAudit, []],
  ];
  return rows.map(([flow, rules], i) => ({ seq: i + 1, flow, node_name: 'node-1', time: flow.time, rules }));
}

/** `n` flows over `workloads` workloads in `namespaces` namespaces, for the scale tests and bench. */
export function manyFlows(n: number, workloads = 200, namespaces = 4): UIFlow[] {
  const out: UIFlow[] = [];
  for (let i = 0; i < n; i++) {
    const a = i % workloads;
    const b = (i * 7 + 3) % workloads;
    const ep = (w: number): FlowEndpoint => {
      const ns = `ns-${w % namespaces}`;
      return {
        ID: 1000 + w,
        identity: 10000 + w,
        namespace: ns,
        pod_name: `app-${w}-5d9c`,
        labels: [`k8s:app=app-${w}`, `k8s:io.kubernetes.pod.namespace=${ns}`],
      };
    };
    const dropped = i % 5 === 0;
    const port = 8000 + (i % 3);
    const flow: Flow = {
      ...tcpAllowedIngress,
      uuid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      verdict: dropped ? 'DROPPED' : 'FORWARDED',
      IP: {
        source: `10.1.${a >> 8}.${a & 255}`,
        destination: `10.1.${b >> 8}.${b & 255}`,
        ipVersion: 'IPv4',
      },
      l4: { TCP: { source_port: 30000 + (i % 20000), destination_port: port, flags: { SYN: true } } },
      source: ep(a),
      destination: ep(b),
      ...(dropped ? { drop_reason: 133, drop_reason_desc: 'POLICY_DENIED' } : {}),
    };
    if (dropped) delete flow.ingress_allowed_by;
    out.push({ seq: i + 1, flow, node_name: 'node-1', time: flow.time, rules: [] });
  }
  return out;
}
