// Reserved identities with Cilium's numbers (pkg/identity/numericidentity.go, cilium-semantics §6).

import { LabelSet, SOURCE_RESERVED } from '../labels/label.ts';

export const ID = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiserver: 7,
  ingress: 8,
  worldIPv4: 9,
  worldIPv6: 10,
} as const;

/** First cluster-scoped identity. */
export const MIN_CLUSTER_IDENTITY = 256;
/** Node-local scope (CIDR and FQDN identities): bit 24. */
export const LOCAL_SCOPE = 0x01000000;
/** Remote-node scope (per-node identities with --enable-node-selector-labels): bit 25. */
export const REMOTE_NODE_SCOPE = 0x02000000;

export const RESERVED_NAMES: ReadonlyArray<readonly [number, string]> = [
  [ID.host, 'host'],
  [ID.world, 'world'],
  [ID.unmanaged, 'unmanaged'],
  [ID.health, 'health'],
  [ID.init, 'init'],
  [ID.remoteNode, 'remote-node'],
  [ID.kubeApiserver, 'kube-apiserver'],
  [ID.ingress, 'ingress'],
  [ID.worldIPv4, 'world-ipv4'],
  [ID.worldIPv6, 'world-ipv6'],
];

export function reservedLabels(name: string): LabelSet {
  return new LabelSet([{ source: SOURCE_RESERVED, key: name, value: '' }]);
}

export function isLocalScope(id: number): boolean {
  return (id & LOCAL_SCOPE) !== 0;
}
