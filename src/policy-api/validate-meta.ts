// What the Kubernetes API server refuses in object metadata and label selectors, before Cilium
// ever sees the policy (apimachinery's validation: DNS-1123 names, qualified label keys, label
// values). `kubectl apply` would fail, so `validate` fails too, at the field.

import type { EndpointSelector, ObjectMeta, PolicyObject } from './types.ts';
import type { Reporter } from './validate-report.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = QUALIFIED_NAME;

/** `"a b"`, with control characters (a NUL) escaped, at most 80 characters shown. */
function shown(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/** Why `s` is not a DNS-1123 label (namespaces), or undefined. */
export function dns1123LabelProblem(s: string): string | undefined {
  if (s.length > 63) return `is ${s.length} characters long; the maximum is 63`;
  if (!DNS1123_LABEL.test(s)) {
    return 'must consist of lower-case letters, digits and `-`, and start and end with a letter or digit (a DNS-1123 label)';
  }
  return undefined;
}

/** Why `s` is not a DNS-1123 subdomain (object names, label key prefixes), or undefined. */
export function dns1123SubdomainProblem(s: string): string | undefined {
  if (s.length > 253) return `is ${s.length} characters long; the maximum is 253`;
  // Lengths are bounded above, so the per-label pattern runs on at most 63 characters.
  if (s === '' || s.split('.').some((l) => l.length > 63 || !DNS1123_LABEL.test(l))) {
    return 'must consist of lower-case letters, digits, `-` and `.`, and start and end with a letter or digit (a DNS-1123 subdomain)';
  }
  return undefined;
}

/** Why `k` is not a qualified name (`[prefix/]name`, a Kubernetes label key), or undefined. */
export function qualifiedNameProblem(k: string): string | undefined {
  const parts = k.split('/');
  if (parts.length > 2) return 'has more than one `/`; a label key is [prefix/]name';
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix === '') return 'has an empty prefix before `/`';
    const p = dns1123SubdomainProblem(prefix);
    if (p) return `prefix ${shown(prefix)} ${p}`;
  }
  if (name === '') return 'has an empty name';
  if (name.length > 63) return `has a name part of ${name.length} characters; the maximum is 63`;
  if (!QUALIFIED_NAME.test(name)) {
    return 'must consist of letters, digits, `-`, `_` and `.` (after an optional DNS-1123 prefix and `/`), and start and end with a letter or digit';
  }
  return undefined;
}

/** Kubernetes label value: ≤63 chars, alphanumeric at both ends, `-_.` inside; may be empty. */
export function labelValueProblem(v: string): string | undefined {
  if (v.length > 63) return `is ${v.length} characters long; label values are at most 63`;
  if (v !== '' && !LABEL_VALUE.test(v)) {
    return 'must be empty or consist of letters, digits, `-`, `_` or `.`, and begin and end with a letter or digit';
  }
  return undefined;
}

/**
 * A selector key as the API server (KNP) or Cilium's agent (CNP, CCNP) checks it. Cilium turns
 * `source:key` (or a bare `key`, source `any`) into the extended key `source.key` and validates
 * that as a Kubernetes label key, so the source counts toward the 63-character name.
 */
export function selectorKeyProblem(key: string, keys: 'cilium' | 'k8s'): string | undefined {
  if (keys === 'k8s') return qualifiedNameProblem(key);
  const colon = key.indexOf(':');
  const extended = colon < 0 ? `any.${key}` : `${key.slice(0, colon)}.${key.slice(colon + 1)}`;
  const p = qualifiedNameProblem(extended);
  if (p === undefined) return undefined;
  const bare = qualifiedNameProblem(colon < 0 ? key : key.slice(colon + 1));
  return bare ?? `${p} (Cilium checks it as ${shown(extended)})`;
}

/** Label keys and values of a selector (matchLabels and matchExpressions). */
export function validateSelectorLabels(sel: EndpointSelector, keys: 'cilium' | 'k8s', r: Reporter): void {
  const ml = sel.matchLabels;
  if (ml) {
    for (const [k, v] of Object.entries(ml)) {
      const kp = k === '' ? 'is empty' : selectorKeyProblem(k, keys);
      if (kp) r.errorAtKey('invalid-label-key', `matchLabels key ${shown(k)} ${kp}`, ml, k);
      const vp = labelValueProblem(v);
      if (vp) r.error('invalid-label-value', `matchLabels value of ${shown(k)} ${vp}`, ml, k);
    }
  }
  for (const req of sel.matchExpressions ?? []) {
    const kp = req.key === '' ? 'must not be empty' : selectorKeyProblem(req.key, keys);
    if (kp) r.error('invalid-label-key', `matchExpressions key ${shown(req.key)} ${kp}`, req, 'key');
    const values = req.values ?? [];
    for (let i = 0; i < values.length; i++) {
      const vp = labelValueProblem(values[i]!);
      if (vp)
        r.error('invalid-label-value', `matchExpressions value ${shown(values[i]!)} ${vp}`, req, 'values');
    }
  }
}

/**
 * Seawall's per-policy audit mode: `"true"` turns the policy's denials (its deny rules and the
 * default deny it brings) into AUDIT verdicts; `"false"` or no annotation: it enforces. Any other
 * value is an error (annotations are strings: a YAML `true` unquoted is refused by the decoder).
 */
export const AUDIT_MODE_ANNOTATION = 'policy.seawall.dev/audit-mode';

/** Whether a policy is in audit mode. Anything but exactly "true" enforces (fail closed). */
export function policyAuditMode(policy: PolicyObject): boolean {
  return policy.metadata.annotations?.[AUDIT_MODE_ANNOTATION] === 'true';
}

/** metadata.name, metadata.namespace, metadata.labels and Seawall's annotations of a policy. */
export function validateMeta(policy: PolicyObject, r: Reporter): void {
  const m: ObjectMeta = policy.metadata;
  const np = dns1123SubdomainProblem(m.name);
  if (np) {
    r.error(
      'invalid-name',
      `metadata.name ${shown(m.name)} is not a valid ${policy.kind} name: it ${np}`,
      m,
      'name',
    );
  }
  if (m.namespace !== undefined && m.namespace !== '' && policy.kind !== 'CiliumClusterwideNetworkPolicy') {
    const p = dns1123LabelProblem(m.namespace);
    if (p)
      r.error(
        'invalid-namespace',
        `metadata.namespace ${shown(m.namespace)} is not a valid namespace: it ${p}`,
        m,
        'namespace',
      );
  }
  const labels = m.labels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    const kp = k === '' ? 'is empty' : qualifiedNameProblem(k);
    if (kp) r.errorAtKey('invalid-label-key', `metadata.labels key ${shown(k)} ${kp}`, labels, k);
    const vp = labelValueProblem(v);
    if (vp) r.error('invalid-label-value', `metadata.labels value of ${shown(k)} ${vp}`, labels, k);
  }
  const ann = m.annotations;
  const audit = ann?.[AUDIT_MODE_ANNOTATION];
  if (ann !== undefined && audit !== undefined && audit !== 'true' && audit !== 'false') {
    r.error(
      'invalid-audit-mode',
      `metadata.annotations ${AUDIT_MODE_ANNOTATION} is ${shown(audit)}: it must be "true" (audit: denials pass, reported AUDIT) or "false" (enforce)`,
      ann,
      AUDIT_MODE_ANNOTATION,
    );
  }
}
