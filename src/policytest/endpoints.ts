// The check that identity labels written by hand in a PolicyTest agree with the ones the engine
// derives.

import { setEntry } from '../core/plain.ts';
import type { Cursor } from '../policy-api/cursor.ts';

const NS_KEY = 'io.kubernetes.pod.namespace';
const SA_KEY = 'io.cilium.k8s.policy.serviceaccount';
const CLUSTER_KEY = 'io.cilium.k8s.policy.cluster';
const NS_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';

export interface DerivedContext {
  namespace: string;
  serviceAccount?: string;
  clusterName: string;
  namespaceLabels: Record<string, string>;
}

/**
 * Splits pod labels into plain labels and Cilium identity labels. Identity labels (with or without
 * the `k8s:` source) must equal what the engine derives; a mismatch is reported on the label.
 * Returns the plain labels (the engine derives the others itself).
 */
export function checkIdentityLabels(
  labels: Record<string, string>,
  ctx: DerivedContext,
  labelsCursor: Cursor | undefined,
): Record<string, string> {
  const plain: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(labels)) {
    const at = labelsCursor?.field(rawKey);
    let key = rawKey;
    if (key.startsWith('k8s:')) key = key.slice(4);
    else if (key.includes(':')) {
      at?.error(
        'invalid-label-key',
        `label "${rawKey}": pod labels have no source prefix other than k8s:; reserved: and other sources are assigned by Cilium`,
        true,
      );
      continue;
    }
    const expected = derivedValue(key, ctx);
    if (expected === null) {
      setEntry(plain, key, value);
      continue;
    }
    if (expected !== value) {
      const shown = expected === undefined ? 'no such label' : `"${expected}"`;
      at?.error(
        'identity-label-mismatch',
        `identity label ${key}="${value}" disagrees with the derived value (${shown}); Cilium derives it from the endpoint's namespace, service account and namespace labels`,
        true,
      );
    }
  }
  return plain;
}

/** null: not an identity label; undefined: an identity label Cilium would not set. */
function derivedValue(key: string, ctx: DerivedContext): string | undefined | null {
  if (key === NS_KEY) return ctx.namespace;
  if (key === SA_KEY) return ctx.serviceAccount ?? 'default';
  if (key === CLUSTER_KEY) return ctx.clusterName;
  if (key.startsWith(NS_LABELS_PREFIX)) {
    const nsKey = key.slice(NS_LABELS_PREFIX.length);
    if (nsKey === 'kubernetes.io/metadata.name') return ctx.namespace;
    // Own keys only: `constructor` or `__proto__` must not find Object.prototype's members.
    return Object.hasOwn(ctx.namespaceLabels, nsKey) ? ctx.namespaceLabels[nsKey] : undefined;
  }
  return null;
}
