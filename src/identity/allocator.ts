// Numeric identities for label sets: cluster identities from 256 (one per distinct label set,
// reference-counted by endpoints), node-local CIDR identities (0x01000000|n) for outside prefixes,
// remote-node-scoped identities (0x02000000|n) for nodes with labels (--enable-node-selector-labels),
// and the reserved ones. Listeners (the SelectorCache) hear about every change.

import { type Label, LabelSet, SOURCE_CIDR, SOURCE_FQDN, SOURCE_RESERVED } from '../labels/label.ts';
import type { IdentityAllocatorAPI } from './backend.ts';
import { coveringPrefixes, formatPrefix, type Prefix } from './cidr.ts';
import {
  ID,
  LOCAL_SCOPE,
  MIN_CLUSTER_IDENTITY,
  REMOTE_NODE_SCOPE,
  RESERVED_NAMES,
  reservedLabels,
} from './reserved.ts';

/** `node`: a remote node's own identity (reserved:remote-node plus its node: labels). */
export type IdentityKind = 'reserved' | 'cluster' | 'cidr' | 'node';

export interface Identity {
  readonly id: number;
  readonly kind: IdentityKind;
  /** Current labels (CIDR identities gain/lose fqdn: labels as DNS answers come and go). */
  labels: LabelSet;
  /** Reserved identities: the reserved name (host, world, …). */
  readonly reserved?: string;
  /** CIDR identities and world: the prefix they stand for (world = 0.0.0.0/0). */
  readonly prefix?: Prefix;
  /** DNS names (normalised, fully qualified) whose live answers include this identity's address. */
  fqdnNames?: ReadonlySet<string>;
}

export interface IdentityListener {
  identityAdded(id: Identity): void;
  identityRemoved(id: Identity): void;
  /** Labels changed in place (fqdn names). */
  identityUpdated(id: Identity): void;
}

interface Slot {
  identity: Identity;
  refs: number;
}

/** The memory implementation of IdentityAllocatorAPI (backend.ts). */
export class IdentityAllocator implements IdentityAllocatorAPI {
  private readonly byId = new Map<number, Identity>();
  private readonly byLabels = new Map<string, Slot>();
  private readonly byPrefix = new Map<string, Slot>();
  private readonly listeners = new Set<IdentityListener>();
  private nextCluster = MIN_CLUSTER_IDENTITY;
  private nextLocal = 1;
  private nextNode = 1;

  constructor() {
    for (const [id, name] of RESERVED_NAMES) {
      const identity: Identity =
        id === ID.world
          ? {
              id,
              kind: 'reserved',
              labels: reservedLabels(name),
              reserved: name,
              prefix: { addr: 0, len: 0 },
            }
          : { id, kind: 'reserved', labels: reservedLabels(name), reserved: name };
      this.byId.set(id, identity);
    }
  }

  addListener(l: IdentityListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  get(id: number): Identity | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Identity> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }

  /** Identity for a label set, allocating on first use. Each call takes one reference. */
  allocate(labels: LabelSet): Identity {
    return this.allocateIn(labels, 'cluster');
  }

  /** A remote node's identity (remote-node scope); nodes with equal labels share one. */
  allocateNode(labels: LabelSet): Identity {
    return this.allocateIn(labels, 'node');
  }

  private allocateIn(labels: LabelSet, kind: 'cluster' | 'node'): Identity {
    let slot = this.byLabels.get(labels.key);
    if (slot === undefined) {
      const id = kind === 'node' ? (REMOTE_NODE_SCOPE | this.nextNode++) >>> 0 : this.nextCluster++;
      const identity: Identity = { id, kind, labels };
      slot = { identity, refs: 0 };
      this.byLabels.set(labels.key, slot);
      this.byId.set(identity.id, identity);
      for (const l of this.listeners) l.identityAdded(identity);
    }
    slot.refs++;
    return slot.identity;
  }

  release(identity: Identity): void {
    if (identity.kind === 'cidr') {
      this.releaseCIDR(identity.prefix!);
      return;
    }
    if (identity.kind !== 'cluster' && identity.kind !== 'node') return;
    const slot = this.byLabels.get(identity.labels.key);
    if (slot === undefined || --slot.refs > 0) return;
    this.byLabels.delete(identity.labels.key);
    this.byId.delete(identity.id);
    for (const l of this.listeners) l.identityRemoved(identity);
  }

  /** CIDR identity of a prefix (/0 is world). Each call takes one reference. */
  allocateCIDR(prefix: Prefix): Identity {
    if (prefix.len === 0) return this.byId.get(ID.world)!;
    const key = formatPrefix(prefix);
    let slot = this.byPrefix.get(key);
    if (slot === undefined) {
      const identity: Identity = {
        id: (LOCAL_SCOPE | this.nextLocal++) >>> 0,
        kind: 'cidr',
        labels: cidrLabels(prefix, undefined),
        prefix,
      };
      slot = { identity, refs: 0 };
      this.byPrefix.set(key, slot);
      this.byId.set(identity.id, identity);
      for (const l of this.listeners) l.identityAdded(identity);
    }
    slot.refs++;
    return slot.identity;
  }

  releaseCIDR(prefix: Prefix): void {
    if (prefix.len === 0) return;
    const key = formatPrefix(prefix);
    const slot = this.byPrefix.get(key);
    if (slot === undefined || --slot.refs > 0) return;
    this.byPrefix.delete(key);
    this.byId.delete(slot.identity.id);
    for (const l of this.listeners) l.identityRemoved(slot.identity);
  }

  cidrIdentity(prefix: Prefix): Identity | undefined {
    if (prefix.len === 0) return this.byId.get(ID.world);
    return this.byPrefix.get(formatPrefix(prefix))?.identity;
  }

  /**
   * Sets the DNS names of a CIDR identity. Cilium would move the address to a new identity with
   * the new fqdn: labels; keeping the number and updating labels in place gives the same
   * selections without churning identities.
   */
  setFQDNNames(identity: Identity, names: ReadonlySet<string>): void {
    if (identity.kind !== 'cidr') return;
    identity.fqdnNames = names;
    identity.labels = cidrLabels(identity.prefix!, names);
    for (const l of this.listeners) l.identityUpdated(identity);
  }
}

/** cidr: labels for every covering prefix, reserved:world, and fqdn: labels for learnt names. */
function cidrLabels(prefix: Prefix, names: ReadonlySet<string> | undefined): LabelSet {
  const out: Label[] = coveringPrefixes(prefix).map((p) => ({
    source: SOURCE_CIDR,
    key: formatPrefix(p),
    value: '',
  }));
  out.push({ source: SOURCE_RESERVED, key: 'world', value: '' });
  for (const n of names ?? []) out.push({ source: SOURCE_FQDN, key: n.replace(/\.$/, ''), value: '' });
  return new LabelSet(out);
}
