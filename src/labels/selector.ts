// EndpointSelector matching (matchLabels and matchExpressions ANDed, Kubernetes operator
// semantics), compiled once into a predicate with a canonical key so equal selectors share a cache
// slot. Keys carry a source (`k8s:app`); an unprefixed key means `any:` (Cilium's sanitisation).

import type { LabelSelectorRequirement, SelectorOperator } from '../policy-api/types.ts';
import { type LabelSet, parseKey, SOURCE_ANY } from './label.ts';

export interface Requirement {
  source: string;
  key: string;
  operator: SelectorOperator;
  values: readonly string[];
}

/** The selector shape shared by EndpointSelector and the Kubernetes LabelSelector. */
export interface SelectorInput {
  matchLabels?: Record<string, string>;
  matchExpressions?: ReadonlyArray<Pick<LabelSelectorRequirement, 'key' | 'operator' | 'values'>>;
}

export interface CompiledSelector {
  /** Canonical text: equal selectors have equal keys. `{}` for the match-everything selector. */
  readonly key: string;
  readonly requirements: readonly Requirement[];
  matches(labels: LabelSet): boolean;
  /**
   * A label every match must carry (`key=value`, source-less), for indexing selectors by label;
   * absent when the selector has no positive single-value requirement.
   */
  readonly indexLabel?: string;
}

/** Namespace/cluster keys select too many identities to be a useful index. */
const WEAK_INDEX_KEYS = new Set(['io.kubernetes.pod.namespace', 'io.cilium.k8s.policy.cluster']);

export function requirementsOf(sel: SelectorInput, defaultSource: string = SOURCE_ANY): Requirement[] {
  const reqs: Requirement[] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    const { source, key } = parseKey(k, defaultSource);
    reqs.push({ source, key, operator: 'In', values: [v] });
  }
  for (const e of sel.matchExpressions ?? []) {
    const { source, key } = parseKey(e.key, defaultSource);
    reqs.push({ source, key, operator: e.operator, values: [...new Set(e.values ?? [])].sort() });
  }
  return reqs;
}

function reqKey(r: Requirement): string {
  return `${r.source}:${r.key} ${r.operator} (${r.values.join(',')})`;
}

function matchRequirement(r: Requirement, labels: LabelSet): boolean {
  switch (r.operator) {
    case 'In':
      for (const v of labels.values(r.source, r.key)) if (r.values.includes(v)) return true;
      return false;
    case 'NotIn':
      // Kubernetes: an absent key satisfies NotIn.
      for (const v of labels.values(r.source, r.key)) if (r.values.includes(v)) return false;
      return true;
    case 'Exists':
      return labels.has(r.source, r.key);
    case 'DoesNotExist':
      return !labels.has(r.source, r.key);
    default:
      return false; // unknown operator: fail closed
  }
}

export function compileRequirements(input: readonly Requirement[]): CompiledSelector {
  const byKey = new Map<string, Requirement>();
  for (const r of input) byKey.set(reqKey(r), r);
  const keys = [...byKey.keys()].sort();
  const requirements = keys.map((k) => byKey.get(k)!);
  let indexLabel: string | undefined;
  for (const r of requirements) {
    if (r.operator !== 'In' || r.values.length !== 1) continue;
    const cand = `${r.key}=${r.values[0]}`;
    if (indexLabel === undefined || !WEAK_INDEX_KEYS.has(r.key)) indexLabel = cand;
    if (!WEAK_INDEX_KEYS.has(r.key)) break;
  }
  const key = requirements.length === 0 ? '{}' : `{${keys.join('; ')}}`;
  const n = requirements.length;
  const matches =
    n === 0
      ? () => true
      : (labels: LabelSet) => {
          for (let i = 0; i < n; i++) if (!matchRequirement(requirements[i]!, labels)) return false;
          return true;
        };
  return indexLabel === undefined
    ? { key, requirements, matches }
    : { key, requirements, matches, indexLabel };
}

export function compileSelector(sel: SelectorInput, defaultSource: string = SOURCE_ANY): CompiledSelector {
  return compileRequirements(requirementsOf(sel, defaultSource));
}

/** True when some requirement names `key` (any source fitting `sources`). */
export function mentionsKey(reqs: readonly Requirement[], key: string, sources: readonly string[]): boolean {
  return reqs.some((r) => r.key === key && sources.includes(r.source));
}
