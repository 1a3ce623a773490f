// Peer selectors: what a rule's from*/to* fields select, as predicates over identities.
// Each has a canonical key so the SelectorCache matches each distinct selector once.

import { compileFQDNSelector, fqdnSelectorKey } from '../fqdn/pattern.ts';
import type { Identity } from '../identity/allocator.ts';
import { formatPrefix, type Prefix, prefixContains } from '../identity/cidr.ts';
import { SOURCE_K8S, SOURCE_RESERVED } from '../labels/label.ts';
import { LABEL_CLUSTER } from '../labels/pod.ts';
import { type CompiledSelector, compileRequirements, type Requirement } from '../labels/selector.ts';
import type { FQDNSelector } from '../policy-api/types.ts';

export type PeerKind = 'endpoint' | 'cidr' | 'entity' | 'fqdn' | 'node' | 'wildcard' | 'none';

export interface PeerSelector {
  readonly key: string;
  readonly kind: PeerKind;
  matches(id: Identity): boolean;
  /** A label (`key=value`) every selected identity carries, for the SelectorCache index. */
  readonly indexLabel?: string;
  /** Prefixes that need CIDR identities so the LPM ipcache can tell them apart. */
  readonly prefixes?: readonly Prefix[];
}

export const WILDCARD: PeerSelector = { key: '*', kind: 'wildcard', matches: () => true };
export const NONE: PeerSelector = { key: 'none', kind: 'none', matches: () => false };

export function endpointPeer(sel: CompiledSelector): PeerSelector {
  const matches = (id: Identity) => sel.matches(id.labels);
  // two literals, not a spread: this runs for every selector of every rule upserted
  return sel.indexLabel === undefined
    ? { key: `ep:${sel.key}`, kind: 'endpoint', matches }
    : { key: `ep:${sel.key}`, kind: 'endpoint', matches, indexLabel: sel.indexLabel };
}

/** A prefix minus its excepts. Selects CIDR identities (and world for /0), never pods. */
export function cidrPeer(prefix: Prefix, except: readonly Prefix[]): PeerSelector {
  const ex = [...except].sort((a, b) => a.addr - b.addr || a.len - b.len);
  const key = `cidr:${formatPrefix(prefix)}${ex.length > 0 ? ` except ${ex.map(formatPrefix).join(',')}` : ''}`;
  const peer: PeerSelector = {
    key,
    kind: 'cidr',
    prefixes: [prefix, ...ex],
    matches: (id) => {
      const p = id.prefix;
      if (p === undefined) return false;
      if (!prefixContains(prefix, p)) return false;
      for (const e of ex) if (prefixContains(e, p)) return false;
      return true;
    },
  };
  // Every CIDR identity carries a `cidr:` label for each prefix covering it, so the SelectorCache
  // finds the identities inside this prefix, and the selectors covering a new CIDR identity, by
  // that label (not every identity against every CIDR selector). /0 also selects world, which
  // carries no such label: it stays unindexed.
  return prefix.len === 0 ? peer : { ...peer, indexLabel: `${formatPrefix(prefix)}=` };
}

const RESERVED_IN_CLUSTER = new Set([
  'host',
  'remote-node',
  'init',
  'ingress',
  'health',
  'unmanaged',
  'kube-apiserver',
]);
const WORLD_NAMES = new Set(['world', 'world-ipv4', 'world-ipv6']);

/** Entities (§6). `all` is the wildcard; `cluster` needs the local cluster name. */
export function entityPeer(entity: string, clusterName: string): PeerSelector {
  switch (entity) {
    case 'all':
      return WILDCARD;
    case 'none':
      return NONE;
    case 'world':
      return {
        key: 'entity:world',
        kind: 'entity',
        matches: (id) => id.kind === 'cidr' || (id.reserved !== undefined && WORLD_NAMES.has(id.reserved)),
      };
    case 'cluster':
      return {
        key: `entity:cluster=${clusterName}`,
        kind: 'entity',
        matches: (id) =>
          id.kind === 'cluster'
            ? id.labels.has(SOURCE_K8S, LABEL_CLUSTER, clusterName)
            : id.kind === 'node' || (id.reserved !== undefined && RESERVED_IN_CLUSTER.has(id.reserved)),
      };
    default:
      return {
        key: `entity:${entity}`,
        kind: 'entity',
        matches: (id) => id.reserved === entity || id.labels.has(SOURCE_RESERVED, entity),
      };
  }
}

/**
 * from/toNodes: a node label selector (keys any-source, so they match the `node:` labels) ANDed
 * with `reserved:remote-node`, so `{}` selects every remote node (identity 6 and per-node ones).
 */
export function nodePeer(reqs: readonly Requirement[]): PeerSelector {
  const sel = compileRequirements([
    ...reqs,
    { source: SOURCE_RESERVED, key: 'remote-node', operator: 'Exists', values: [] },
  ]);
  const base = {
    key: `node:${sel.key}`,
    kind: 'node' as const,
    matches: (id: Identity) => sel.matches(id.labels),
  };
  return sel.indexLabel === undefined ? base : { ...base, indexLabel: sel.indexLabel };
}

/** toFQDNs: CIDR identities whose address a live DNS answer for a matching name pointed at. */
export function fqdnPeer(sel: Pick<FQDNSelector, 'matchName' | 'matchPattern'>): PeerSelector {
  const match = compileFQDNSelector(sel);
  return {
    key: `fqdn:${fqdnSelectorKey(sel)}`,
    kind: 'fqdn',
    matches: (id) => {
      if (id.kind !== 'cidr' || id.fqdnNames === undefined) return false;
      for (const n of id.fqdnNames) if (match(n)) return true;
      return false;
    },
  };
}
