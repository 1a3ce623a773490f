// Shared by the live tests: the skip condition, MapState entries for the fake engine's
// EndpointPolicies (src/policy/testing/fake-engine.ts: datapath tests independent of the policy
// engine), and per-test node names.

import { liveUnavailable } from '../../src/datapath/preflight.ts';
import type { MapStateEntry } from '../../src/policy/types.ts';

/** Why live tests cannot run here, or undefined when they can (the datapath's own preflight). */
export function liveSkipReason(): string | undefined {
  return liveUnavailable(['ip', 'nft']);
}

let seq = 0;
/** A node namespace name unique to this process and test. */
export function testNode(tag: string): string {
  seq++;
  return `seawall-t${process.pid % 100000}-${tag}${seq}`.slice(0, 40);
}

export function entry(
  direction: 'INGRESS' | 'EGRESS',
  identity: number,
  proto: number,
  portLo: number,
  portHi = portLo,
  verdict: MapStateEntry['verdict'] = 'allow',
): MapStateEntry {
  return { key: { direction, identity, proto, portLo, portHi }, verdict, derivedFrom: [] };
}
