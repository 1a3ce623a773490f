// Validation of one Cilium rule: what the agent's sanitize step and the CRD schema reject
// (cilium-semantics.md §15), each with a stable code and a message that says what to do.

import type {
  CIDRRule,
  EgressDenyRule,
  EgressRule,
  EndpointSelector,
  ICMPRule,
  IngressDenyRule,
  IngressRule,
  PortProtocol,
  PortRule,
  Rule,
} from './types.ts';
import { validateICMP } from './validate-icmp.ts';
import { validateFQDN, validateHTTP, validateKafka } from './validate-l7.ts';
import { validateSelectorLabels } from './validate-meta.ts';
import { goParseUint0, isSvcName, type Prefix, parsePrefix, prefixContains } from './validate-net.ts';
import type { Reporter } from './validate-report.ts';

export type CiliumKind = 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy';

interface RuleCtx {
  r: Reporter;
  /** Host policy (nodeSelector): L7 only as DNS on egress. */
  host: boolean;
}

const SECTIONS = ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const;

export function validateRule(rule: Rule, kind: CiliumKind, r: Reporter): void {
  const hasEP = rule.endpointSelector !== undefined;
  const hasNode = rule.nodeSelector !== undefined;
  if (!hasEP && !hasNode) {
    r.error(
      'missing-subject-selector',
      kind === 'CiliumNetworkPolicy'
        ? 'rule must have one of endpointSelector or nodeSelector; add `endpointSelector: {}` to select every pod of the namespace'
        : 'rule must have one of endpointSelector or nodeSelector; add an endpointSelector (pods) or a nodeSelector (host firewall)',
      rule,
    );
  } else if (hasEP && hasNode) {
    r.error(
      'both-subject-selectors',
      'rule cannot have both endpointSelector and nodeSelector; split it into one rule for pods and one for nodes',
      rule,
      'nodeSelector',
    );
  }
  if (hasNode && kind === 'CiliumNetworkPolicy') {
    r.error(
      'node-selector-in-cnp',
      'a CiliumNetworkPolicy rule cannot have nodeSelector; host policies belong in a CiliumClusterwideNetworkPolicy',
      rule,
      'nodeSelector',
    );
  }
  if (rule.endpointSelector) validateSelector(rule.endpointSelector, r);
  if (rule.nodeSelector) validateSelector(rule.nodeSelector, r);

  let present = 0;
  let nonEmpty = 0;
  let firstPresent: (typeof SECTIONS)[number] | undefined;
  for (const s of SECTIONS) {
    const v = rule[s];
    if (v === undefined) continue;
    present++;
    firstPresent ??= s;
    if (v.length > 0) nonEmpty++;
  }
  if (present === 0) {
    r.error(
      'no-rule-sections',
      'rule has none of ingress, ingressDeny, egress, egressDeny; Cilium 1.18 rejects it. For default deny write `ingress: [{}]` and/or `egress: [{}]`',
      rule,
    );
  } else if (nonEmpty === 0) {
    r.error(
      'empty-rule-sections',
      'every section of this rule is an empty list; Cilium treats `[]` like an absent section, so this policy enforces nothing (Cilium 1.18 rejects the rule: it must have at least one of ingress, ingressDeny, egress, egressDeny). For default deny write `ingress: [{}]` / `egress: [{}]`',
      rule,
      firstPresent,
    );
  }

  const ctx: RuleCtx = { r, host: hasNode && !hasEP };
  for (const x of rule.ingress ?? []) validateIngress(x, false, ctx);
  for (const x of rule.ingressDeny ?? []) validateIngress(x, true, ctx);
  for (const x of rule.egress ?? []) validateEgress(x, false, ctx);
  for (const x of rule.egressDeny ?? []) validateEgress(x, true, ctx);

  const log = rule.log?.value;
  if (rule.log && log !== undefined) {
    if (log.length > 32) {
      r.error(
        'invalid-log-value',
        `log.value is ${log.length} characters; the maximum is 32`,
        rule.log,
        'value',
      );
    } else if (/[\p{C}]/u.test(log)) {
      r.error('invalid-log-value', 'log.value must contain printable characters only', rule.log, 'value');
    }
  }
}

// ---------------------------------------------------------------- selectors

/** `keys`: Cilium's selectors take `source:key`; a NetworkPolicy's take plain Kubernetes keys. */
export function validateSelector(
  sel: EndpointSelector,
  r: Reporter,
  keys: 'cilium' | 'k8s' = 'cilium',
): void {
  validateSelectorLabels(sel, keys, r);
  for (const req of sel.matchExpressions ?? []) {
    const n = req.values?.length ?? 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && n === 0) {
      r.error(
        'selector-values-required',
        `invalid label selector: values must be specified when \`operator\` is 'In' or 'NotIn' (key ${JSON.stringify(req.key)}); to test presence use Exists`,
        req,
        req.values ? 'values' : undefined,
      );
    } else if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && n > 0) {
      r.error(
        'selector-values-forbidden',
        `invalid label selector: values must be empty when \`operator\` is '${req.operator}'; remove \`values\` or use In/NotIn`,
        req,
        'values',
      );
    }
  }
}

// ---------------------------------------------------------------- peers

/** Peer kinds of an ingress rule (at most one per rule); fromRequires only narrows them. */
export const INGRESS_PEERS = [
  'fromEndpoints',
  'fromCIDR',
  'fromCIDRSet',
  'fromEntities',
  'fromNodes',
  'fromGroups',
] as const;
/** Peer kinds of an egress rule (at most one per rule); toRequires only narrows them. */
export const EGRESS_PEERS = [
  'toEndpoints',
  'toCIDR',
  'toCIDRSet',
  'toEntities',
  'toServices',
  'toFQDNs',
  'toGroups',
  'toNodes',
] as const;

function checkPeerKinds(rule: object, kinds: readonly string[], r: Reporter): void {
  let first: string | undefined;
  for (const k of kinds) {
    const v = (rule as Record<string, unknown[] | undefined>)[k];
    if (v === undefined || v.length === 0) continue;
    if (first === undefined) {
      first = k;
      continue;
    }
    r.error(
      'combined-peer-kinds',
      `combining ${first} and ${k} in one rule is not supported yet; write two rules (entries of the list are ORed anyway)`,
      rule,
      k,
    );
    return;
  }
}

function validateIngress(rule: IngressRule | IngressDenyRule, deny: boolean, ctx: RuleCtx): void {
  const { r } = ctx;
  checkPeerKinds(rule, INGRESS_PEERS, r);
  for (const s of rule.fromEndpoints ?? []) validateSelector(s, r);
  for (const s of rule.fromNodes ?? []) validateSelector(s, r);
  requires(rule, 'fromRequires', rule.fromRequires, r);
  cidrStrings(rule.fromCIDR, r);
  for (const c of rule.fromCIDRSet ?? []) validateCIDRRule(c, r);
  icmps(rule, rule.icmps, r);
  for (const pr of rule.toPorts ?? []) validatePortRule(pr as PortRule, { ingress: true, deny }, ctx);
}

function validateEgress(rule: EgressRule | EgressDenyRule, deny: boolean, ctx: RuleCtx): void {
  const { r } = ctx;
  checkPeerKinds(rule, EGRESS_PEERS, r);
  for (const s of rule.toEndpoints ?? []) validateSelector(s, r);
  for (const s of rule.toNodes ?? []) validateSelector(s, r);
  requires(rule, 'toRequires', rule.toRequires, r);
  cidrStrings(rule.toCIDR, r);
  for (const c of rule.toCIDRSet ?? []) validateCIDRRule(c, r);
  for (const svc of rule.toServices ?? []) {
    if (svc.k8sServiceSelector) validateSelector(svc.k8sServiceSelector.selector, r);
  }
  for (const f of (rule as EgressRule).toFQDNs ?? []) validateFQDN(f, r);
  icmps(rule, rule.icmps, r);
  for (const pr of rule.toPorts ?? []) validatePortRule(pr as PortRule, { ingress: false, deny }, ctx);
}

function requires(rule: object, field: string, list: EndpointSelector[] | undefined, r: Reporter): void {
  if (!list || list.length === 0) return;
  r.warn(
    'requires-deprecated',
    `${field} is deprecated since Cilium 1.17 and removed in 1.19 (the CRD then rejects a non-empty list); AND the extra labels into each ${field === 'fromRequires' ? 'fromEndpoints' : 'toEndpoints'} selector instead`,
    rule,
    field,
  );
  for (const s of list) validateSelector(s, r);
}

function icmps(rule: IngressRule | EgressRule, list: ICMPRule[] | undefined, r: Reporter): void {
  if (!list) return;
  if (list.length > 0 && (rule.toPorts?.length ?? 0) > 0) {
    r.error(
      'icmps-with-toports',
      'the ICMPs block may only be present without toPorts; put icmps and toPorts in two separate rules',
      rule,
      'icmps',
    );
  }
  for (const ic of list) validateICMP(ic, r);
}

// ---------------------------------------------------------------- CIDR

function cidrStrings(list: string[] | undefined, r: Reporter): void {
  if (!list) return;
  for (let i = 0; i < list.length; i++) parseCIDROrReport(list[i]!, r, list, i);
}

function parseCIDROrReport(s: string, r: Reporter, obj: object, field: string | number): Prefix | undefined {
  const p = parsePrefix(s);
  if (p.ok) return p.value;
  const fix = p.bareIP
    ? `; write ${s}/${s.includes(':') ? 128 : 32} (the CRD requires prefix notation)`
    : '; write a prefix such as 10.0.0.0/8 or 2001:db8::/32';
  r.error('invalid-cidr', `unable to parse CIDR ${JSON.stringify(s)}: ${p.reason}${fix}`, obj, field);
  return undefined;
}

function validateCIDRRule(c: CIDRRule, r: Reporter): void {
  const n =
    (c.cidr !== undefined ? 1 : 0) + (c.cidrGroupRef !== undefined ? 1 : 0) + (c.cidrGroupSelector ? 1 : 0);
  if (n !== 1) {
    r.error(
      'cidrset-source-count',
      n === 0
        ? 'a CIDR set entry needs exactly one of cidr, cidrGroupRef or cidrGroupSelector; it has none'
        : 'a CIDR set entry needs exactly one of cidr, cidrGroupRef or cidrGroupSelector; split it into one entry per source',
      c,
    );
  }
  if (c.cidrGroupSelector) validateSelector(c.cidrGroupSelector, r);
  const base = c.cidr !== undefined ? parseCIDROrReport(c.cidr, r, c, 'cidr') : undefined;
  const except = c.except ?? [];
  for (let i = 0; i < except.length; i++) {
    const e = parseCIDROrReport(except[i]!, r, except, i);
    if (!e || !base) continue;
    checkExcept(base, e, c.cidr!, except[i]!, r, except, i);
  }
}

/** Reports an except prefix that is not inside its allow prefix (other family included). */
export function checkExcept(
  base: Prefix,
  e: Prefix,
  baseText: string,
  exceptText: string,
  r: Reporter,
  obj: object,
  field: string | number,
  strict = false,
): void {
  if (base.family !== e.family) {
    r.error(
      'cidr-except-family-mismatch',
      `except ${exceptText} is IPv${e.family} but its cidr ${baseText} is IPv${base.family}; an except must be inside its own cidr`,
      obj,
      field,
    );
  } else if (!prefixContains(base, e) || (strict && e.bits === base.bits)) {
    r.error(
      'cidr-except-outside',
      `allow CIDR prefix ${baseText} does not contain exclude CIDR prefix ${exceptText}; an except must be a narrower prefix inside its cidr`,
      obj,
      field,
    );
  }
}

// ---------------------------------------------------------------- toPorts

const MAX_PORTS = 40;
const BASIC_PROTOS = new Set(['TCP', 'UDP', 'SCTP', 'ANY']);

function validatePortRule(pr: PortRule, dir: { ingress: boolean; deny: boolean }, ctx: RuleCtx): void {
  const { r } = ctx;
  const rules = pr.rules;
  const nHTTP = rules?.http?.length ?? 0;
  const nKafka = rules?.kafka?.length ?? 0;
  const nDNS = rules?.dns?.length ?? 0;
  const hasL7Proto = rules?.l7proto !== undefined && rules.l7proto !== '';
  const hasL7 = nHTTP + nKafka + nDNS > 0 || hasL7Proto;
  const hasDNS = nDNS > 0;
  const ports = pr.ports ?? [];

  if (rules && hasL7) {
    const types = [nHTTP > 0, nKafka > 0, nDNS > 0, hasL7Proto].filter(Boolean).length;
    if (types > 1) {
      r.error(
        'multiple-l7-types',
        'multiple L7 protocol rule types specified in single rule; use one of http, kafka, dns per toPorts entry (write separate entries)',
        rules,
      );
    }
    if (ctx.host && !hasDNS) {
      r.error(
        'l7-in-host-policy',
        'L7 rules are not supported in host policies (nodeSelector), except DNS rules on egress',
        rules,
      );
    }
    if (hasDNS && dir.ingress) {
      r.error(
        'dns-rules-on-ingress',
        'DNS rules are not allowed on ingress; put them in an egress rule towards the DNS server',
        rules,
        'dns',
      );
    }
    if (hasDNS && ports.length === 0) {
      r.error(
        'dns-rules-without-ports',
        'port 53 must be specified for DNS rules: add `ports: [{port: "53", protocol: ANY}]` to this toPorts entry',
        pr,
      );
    }
    if ((pr.serverNames?.length ?? 0) > 0 && pr.terminatingTLS === undefined) {
      r.error(
        'servernames-l7-without-tls',
        'serverNames are not allowed with L7 rules without TLS termination; add terminatingTLS or drop the L7 rules',
        pr,
        'serverNames',
      );
    }
    if (rules.l7 !== undefined && rules.l7.length > 0 && !hasL7Proto) {
      r.error('l7-without-l7proto', '`l7` rules need `l7proto` naming the proxylib parser', rules, 'l7');
    }
  }
  if (pr.listener) {
    if (dir.ingress) {
      r.error(
        'listener-on-ingress',
        'listener is not allowed on ingress; use it in an egress rule',
        pr,
        'listener',
      );
    }
    if (hasL7) {
      r.error(
        'listener-with-rules',
        'listener is not compatible with L7 rules; remove `rules` or the listener',
        pr,
        'listener',
      );
    }
  }
  const sn = pr.serverNames ?? [];
  for (let i = 0; i < sn.length; i++) {
    if (sn[i] === '') r.error('empty-server-name', 'empty server name is not allowed in serverNames', sn, i);
  }

  if (ports.length > MAX_PORTS) {
    r.error(
      'too-many-ports',
      `too many ports (${ports.length}), the max is ${MAX_PORTS}; split them over several toPorts entries or use endPort ranges`,
      pr,
      'ports',
    );
  }
  let zero = false;
  for (const p of ports) {
    const n = validatePort(p, hasDNS, r);
    if (n === 0) zero = true;
    if (hasL7 && !hasDNS && p.protocol !== 'TCP') {
      r.error(
        'l7-requires-tcp',
        `L7 rules can only apply to TCP (not ${p.protocol ?? 'ANY'}) except for DNS rules; set \`protocol: TCP\`${p.protocol === undefined ? ' (an omitted protocol means ANY)' : ''}`,
        p,
        p.protocol === undefined ? undefined : 'protocol',
      );
    }
  }
  if (hasL7 && zero && rules) {
    r.error(
      'l7-port-zero',
      'L7 rules can not be used when a port is 0; name the ports the L7 traffic uses',
      rules,
    );
  }

  if (rules) {
    for (const h of rules.http ?? []) validateHTTP(h, r);
    for (const k of rules.kafka ?? []) validateKafka(k, r);
    for (const d of rules.dns ?? []) validateFQDN(d, r);
  }
}

/** Validates one port entry; returns the numeric port (undefined for names or errors). */
function validatePort(p: PortProtocol, hasDNS: boolean, r: Reporter): number | undefined {
  let num: number | undefined;
  // A port written with the wrong type (`port: 80`) was reported by the decoder already.
  const mistyped = p.port === undefined && r.locate(p, 'port')?.isNull === false;
  if (p.port === undefined || p.port === '') {
    if (!mistyped && (p.protocol === undefined || BASIC_PROTOS.has(p.protocol))) {
      r.error(
        'port-missing',
        'port must be specified; write "0" to allow all ports of the protocol',
        p,
        p.port === undefined ? undefined : 'port',
      );
    }
  } else if (!isSvcName(p.port)) {
    const res = goParseUint0(p.port, 16);
    if (!res.ok) {
      r.error(
        'invalid-port',
        `unable to parse port ${JSON.stringify(p.port)}: ${res.reason}; use a number 0-65535 or an IANA service name (1-15 letters, digits and single hyphens, at least one letter)`,
        p,
        'port',
      );
    } else {
      num = res.value;
      if (p.port.length > 1 && p.port[0] === '0' && String(num) !== p.port) {
        r.warn(
          'port-not-decimal',
          `port ${JSON.stringify(p.port)} is read the way Go reads numbers (a leading 0 means octal, 0x hex): it means port ${num}; write ${JSON.stringify(String(num))} if that is what you want`,
          p,
          'port',
        );
      }
    }
  }
  if (p.endPort !== undefined) {
    if (p.endPort < 0 || p.endPort > 65535) {
      r.error('invalid-end-port', `endPort ${p.endPort} is out of range 0-65535`, p, 'endPort');
    } else if (hasDNS && num !== undefined && p.endPort > num) {
      r.error(
        'dns-rules-port-range',
        'DNS rules do not support port ranges; remove endPort and list the DNS port (53)',
        p,
        'endPort',
      );
    }
  }
  return num;
}
