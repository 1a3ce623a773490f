// Cluster objects that policies refer to by name or label rather than by selecting identities:
// Services (toServices) and CiliumCIDRGroups (cidrGroupRef / cidrGroupSelector). Cilium resolves
// these references by rewriting the rule (Services → toEndpoints or toCIDRSet, groups → their
// prefixes) and recomputes a policy when a referenced object changes; so do we.

import { LabelSet, SOURCE_CIDRGROUP, SOURCE_K8S } from '../labels/label.ts';
import { compileSelector } from '../labels/selector.ts';
import type { CIDRRule, PolicyObject, Rule, Service } from '../policy-api/types.ts';

export interface ServiceInfo {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Pod selector; absent or empty ⇒ a selector-less Service (its addresses become CIDR peers). */
  selector?: Record<string, string>;
  /** Backend addresses (EndpointSlice/Endpoints), used only for selector-less Services. */
  addresses: string[];
}

export interface CIDRGroupInfo {
  name: string;
  labels: Record<string, string>;
  cidrs: string[];
}

export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function hasPodSelector(s: ServiceInfo): boolean {
  return s.selector !== undefined && Object.keys(s.selector).length > 0;
}

/**
 * Whether a toServices entry refers to a Service. As in Cilium (pkg/policy/k8s/service.go), an
 * omitted namespace matches Services of every namespace, in a CNP as in a CCNP.
 */
export function serviceMatches(ref: Service, svc: ServiceInfo): boolean {
  if (ref.k8sServiceSelector !== undefined) {
    const ns = ref.k8sServiceSelector.namespace;
    if (ns !== undefined && ns !== '' && ns !== svc.namespace) return false;
    return compileSelector(ref.k8sServiceSelector.selector).matches(labelSet(svc.labels, SOURCE_K8S));
  }
  if (ref.k8sService !== undefined) {
    const ns = ref.k8sService.namespace;
    if (ns !== undefined && ns !== '' && ns !== svc.namespace) return false;
    return ref.k8sService.serviceName === svc.name;
  }
  return false;
}

/** Whether a CIDR rule refers to a group (by name, or by the group's labels). */
export function cidrGroupMatches(rule: CIDRRule, g: CIDRGroupInfo): boolean {
  if (rule.cidrGroupRef !== undefined) return rule.cidrGroupRef === g.name;
  // Cilium gives the selector's keys the cidrgroup: source, as the group's labels have.
  if (rule.cidrGroupSelector !== undefined)
    return compileSelector(rule.cidrGroupSelector, SOURCE_CIDRGROUP).matches(
      labelSet(g.labels, SOURCE_CIDRGROUP),
    );
  return false;
}

function labelSet(m: Record<string, string>, source: string): LabelSet {
  return new LabelSet(Object.entries(m).map(([key, value]) => ({ source, key, value })));
}

/** Every toServices entry of a policy (egress and egressDeny of every rule). */
export function serviceRefsOf(p: PolicyObject): Service[] {
  const out: Service[] = [];
  for (const r of rulesOf(p)) {
    for (const e of [...(r.egress ?? []), ...(r.egressDeny ?? [])]) out.push(...(e.toServices ?? []));
  }
  return out;
}

/** Every CIDR-set entry of a policy that refers to CIDR groups. */
export function cidrGroupRefsOf(p: PolicyObject): CIDRRule[] {
  const out: CIDRRule[] = [];
  for (const r of rulesOf(p)) {
    const sets = [
      ...(r.ingress ?? []).map((e) => e.fromCIDRSet),
      ...(r.ingressDeny ?? []).map((e) => e.fromCIDRSet),
      ...(r.egress ?? []).map((e) => e.toCIDRSet),
      ...(r.egressDeny ?? []).map((e) => e.toCIDRSet),
    ];
    for (const s of sets)
      for (const c of s ?? [])
        if (c.cidrGroupRef !== undefined || c.cidrGroupSelector !== undefined) out.push(c);
  }
  return out;
}

function rulesOf(p: PolicyObject): Rule[] {
  if (p.kind === 'NetworkPolicy') return [];
  return [...(p.spec === undefined ? [] : [p.spec]), ...(p.specs ?? [])];
}

/** What rule translation reads: the known Services and CIDR groups, in a stable order. */
export interface ClusterLookup {
  services(): Iterable<ServiceInfo>;
  cidrGroups(): Iterable<CIDRGroupInfo>;
}

export const EMPTY_CLUSTER: ClusterLookup = { services: () => [], cidrGroups: () => [] };
