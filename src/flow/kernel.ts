// Kernel event → flow record: the kernel says what happened to the packet (its verdict is the
// truth of the live path); the engine says why (the policies that allowed or denied it).
// Disagreement between the two is reported, never hidden: it means the datapath is wrong.

import type {
  FlowProtocol,
  FlowRequest,
  PeerRef,
  PolicyEngineAPI,
  TrafficDirection,
} from '../policy/types.ts';
import type { KernelEvent, KernelVerdict } from './nflog.ts';
import { type FlowMeta, flowFromVerdict } from './record.ts';
import type { DropReasonName, Flow, FlowVerdict } from './types.ts';

const PROTOCOL: Record<number, FlowProtocol> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 58: 'ICMPv6', 132: 'SCTP' };

export const KERNEL_VERDICT: Record<KernelVerdict, FlowVerdict> = {
  fwd: 'FORWARDED',
  redir: 'REDIRECTED',
  deny: 'DROPPED',
  denied: 'DROPPED',
};

const KERNEL_REASON: Partial<Record<KernelVerdict, DropReasonName>> = {
  deny: 'POLICY_DENY',
  denied: 'POLICY_DENIED',
};

/** The FlowRequest the engine decides for a kernel event; undefined for protocols it has no name for. */
export function flowRequestOf(ev: KernelEvent, src: PeerRef, dst: PeerRef): FlowRequest | undefined {
  const protocol = PROTOCOL[ev.proto];
  if (protocol === undefined) return undefined;
  const req: FlowRequest = { src, dst, protocol };
  if (ev.icmp !== undefined) req.icmp = { type: ev.icmp.type, family: ev.proto === 58 ? 'IPv6' : 'IPv4' };
  else if (ev.dport !== undefined) req.dport = ev.dport;
  return req;
}

export interface KernelRecord {
  flow: Flow;
  /** True when the engine, asked about the same flow, reaches the kernel's verdict and reason. */
  agrees: boolean;
  engineVerdict: FlowVerdict;
}

export interface KernelRecordOptions {
  nodeName: string;
  /** Maps an address to the peer the engine knows (endpoint, entity or plain IP). */
  resolve: (ip: string) => PeerRef;
  /** Endpoint id of a local endpoint by peer, for the ID of the non-subject side. */
  endpointIdOf?: (peer: PeerRef) => number | undefined;
  policyRevision?: number;
}

export function recordFromKernelEvent(
  engine: PolicyEngineAPI,
  ev: KernelEvent,
  o: KernelRecordOptions,
): KernelRecord | undefined {
  const src = o.resolve(ev.srcIP);
  const dst = o.resolve(ev.dstIP);
  const req = flowRequestOf(ev, src, dst);
  if (req === undefined) return undefined;
  const verdict = engine.decide(req, ev.time.seconds * 1000);
  const direction: TrafficDirection = ev.dir === 'in' ? 'INGRESS' : 'EGRESS';
  const kernelVerdict = KERNEL_VERDICT[ev.verdict];
  const decision = direction === 'INGRESS' ? verdict.ingress : verdict.egress;

  let engineVerdict: FlowVerdict;
  let engineReason: DropReasonName | undefined;
  if (decision === undefined) engineVerdict = verdict.allowed ? 'FORWARDED' : 'DROPPED';
  else if (!decision.allowed) engineVerdict = 'DROPPED';
  else engineVerdict = decision.l7 !== undefined ? 'REDIRECTED' : 'FORWARDED';
  if (engineVerdict === 'DROPPED') {
    engineReason = (decision?.reason ?? verdict.reason) === 'POLICY_DENY' ? 'POLICY_DENY' : 'POLICY_DENIED';
  }
  const kernelReason = KERNEL_REASON[ev.verdict];

  const meta: FlowMeta = {
    time: ev.time,
    nodeName: o.nodeName,
    srcIP: ev.srcIP,
    dstIP: ev.dstIP,
    observationDirection: direction,
    verdictOverride: kernelVerdict,
  };
  if (kernelReason !== undefined) meta.dropReasonOverride = kernelReason;
  if (ev.sport !== undefined) meta.sport = ev.sport;
  if (ev.dport !== undefined) meta.dport = ev.dport;
  if (ev.tcpFlags !== undefined) meta.tcpFlags = ev.tcpFlags;
  if (ev.icmp !== undefined && ev.icmp.code !== 0) meta.icmpCode = ev.icmp.code;
  if (o.policyRevision !== undefined) meta.policyRevision = o.policyRevision;
  const other = o.endpointIdOf?.(direction === 'INGRESS' ? src : dst);
  if (direction === 'INGRESS') {
    meta.dstEndpointID = ev.endpointId;
    if (other !== undefined) meta.srcEndpointID = other;
  } else {
    meta.srcEndpointID = ev.endpointId;
    if (other !== undefined) meta.dstEndpointID = other;
  }
  const flow = flowFromVerdict(engine, req, verdict, meta);
  // A kernel event never carries an L7 request, so the engine answers FORWARDED where the kernel
  // sent the connection to the proxy (REDIRECTED): at L3/L4 that is the same verdict.
  const sameVerdict =
    engineVerdict === kernelVerdict || (kernelVerdict === 'REDIRECTED' && engineVerdict === 'FORWARDED');
  return { flow, agrees: sameVerdict && engineReason === kernelReason, engineVerdict };
}
