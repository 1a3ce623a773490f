// DNS L7 rules (toPorts[].rules.dns): which query names the DNS proxy forwards (§12).
// Only the query name is checked (not the qtype); a miss is answered REFUSED by the proxy.

import {
  compileFQDNSelector,
  isWildcardOnly,
  type NameMatcher,
  normalizeName,
  validMatchPattern,
} from '../fqdn/pattern.ts';
import type { PortRuleDNS } from '../policy-api/types.ts';

export { normalizeName } from '../fqdn/pattern.ts';

export interface DNSPolicy {
  rules: NameMatcher[];
  /** No rules at all: the proxy forwards every query (see compileDNSRules). */
  allowAll: boolean;
}

export interface DNSMatch {
  allowed: boolean;
  /** Index of the first rule that admitted the query (absent when there are no rules). */
  ruleIndex?: number;
  /** The query name as compared (lower-case, fully qualified). */
  qname: string;
}

const anyName: NameMatcher = () => true;

/**
 * Compiles once. As in Cilium's DNS proxy: an empty list (a peer that reaches a redirected DNS port
 * through a rule without DNS rules) forwards every query, and a `*`-only matchPattern forwards every
 * query whatever its characters (unlike toFQDNs, whose `*` needs a well-formed name). Invalid rules
 * (bad chars, both or neither field) match nothing.
 */
export function compileDNSRules(rules: readonly PortRuleDNS[]): DNSPolicy {
  return {
    allowAll: rules.length === 0,
    rules: rules.map((r) =>
      !r.matchName && r.matchPattern && validMatchPattern(r.matchPattern) && isWildcardOnly(r.matchPattern)
        ? anyName
        : compileFQDNSelector(r),
    ),
  };
}

/** Rules are ORed. */
export function matchDNS(policy: DNSPolicy, qname: string): DNSMatch {
  if (typeof qname !== 'string') return { allowed: false, qname: '' };
  const name = normalizeName(qname);
  if (policy.allowAll) return { allowed: true, qname: name };
  for (let i = 0; i < policy.rules.length; i++) {
    if (policy.rules[i]!(name)) return { allowed: true, ruleIndex: i, qname: name };
  }
  return { allowed: false, qname: name };
}
