// The identity labels Cilium derives for a pod (cilium-semantics.md §3): pod labels plus the
// k8s metadata labels the agent adds.

import { type Label, LabelSet, SOURCE_K8S } from './label.ts';

export const LABEL_NAMESPACE = 'io.kubernetes.pod.namespace';
export const LABEL_NS_LABELS_PREFIX = 'io.cilium.k8s.namespace.labels.';
export const LABEL_SERVICE_ACCOUNT = 'io.cilium.k8s.policy.serviceaccount';
export const LABEL_CLUSTER = 'io.cilium.k8s.policy.cluster';
export const LABEL_NS_NAME = 'kubernetes.io/metadata.name';

export interface PodIdentityInput {
  namespace: string;
  labels: Record<string, string>;
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  cluster?: string;
}

export function podIdentityLabels(p: PodIdentityInput): LabelSet {
  const out: Label[] = [];
  for (const [key, value] of Object.entries(p.labels)) {
    // A pod listing Cilium's own labels (allowed by PolicyTest files) must not double them.
    const { key: k } = stripK8s(key);
    out.push({ source: SOURCE_K8S, key: k, value });
  }
  const nsLabels: Record<string, string> = { ...(p.namespaceLabels ?? {}), [LABEL_NS_NAME]: p.namespace };
  for (const [k, v] of Object.entries(nsLabels)) {
    out.push({ source: SOURCE_K8S, key: LABEL_NS_LABELS_PREFIX + k, value: v });
  }
  out.push({ source: SOURCE_K8S, key: LABEL_NAMESPACE, value: p.namespace });
  out.push({ source: SOURCE_K8S, key: LABEL_SERVICE_ACCOUNT, value: p.serviceAccount ?? 'default' });
  out.push({ source: SOURCE_K8S, key: LABEL_CLUSTER, value: p.cluster ?? 'default' });
  return new LabelSet(out);
}

function stripK8s(key: string): { key: string } {
  return key.startsWith('k8s:') ? { key: key.slice(4) } : { key };
}
