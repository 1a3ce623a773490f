// lint: warnings for policies Cilium accepts but that probably do not do what their author meant.
// Same Issue shape as validation, severity 'warning'.

import { isPartial } from './decode-util.ts';
import type { Issue } from './issue.ts';
import type {
  CiliumClusterwideNetworkPolicy,
  CiliumNetworkPolicy,
  EndpointSelector,
  PolicyObject,
  PortProtocol,
  PortRule,
  PortRuleHTTP,
  PortRuleKafka,
  Rule,
} from './types.ts';
import { goParseUint0, isSvcName } from './validate-net.ts';
import { Reporter } from './validate-report.ts';

const NS_KEYS = new Set([
  'k8s:io.kubernetes.pod.namespace',
  'io.kubernetes.pod.namespace',
  'any:io.kubernetes.pod.namespace',
]);
const SECTIONS = ['ingress', 'ingressDeny', 'egress', 'egressDeny'] as const;

interface KafkaPort {
  /** Some rule on this port admits every API key (no apiKey, or a role). */
  open: boolean;
  keys: Set<string>;
  first?: PortRuleKafka;
}

/** Lints one policy; warnings are appended to `issues`. */
export function lintPolicy(policy: PolicyObject, issues: Issue[], object?: string): void {
  if (policy.kind === 'NetworkPolicy') return;
  const r = new Reporter(issues, policy.pos, object);
  const kafka = new Map<string, KafkaPort>();
  const rules = [...(policy.spec ? [policy.spec] : []), ...(policy.specs ?? [])];
  for (const rule of rules) lintRule(rule, policy, r, kafka);
  for (const k of kafka.values()) {
    if (k.open || !k.first) continue;
    const missing = ['apiversions', 'metadata'].filter((n) => !k.keys.has(n));
    if (missing.length === 0) continue;
    r.warn(
      'kafka-missing-bootstrap-keys',
      `no kafka rule on this port allows ${missing.join(' or ')}; a real Kafka client sends ApiVersions and Metadata before anything else, so it cannot even connect. Use \`role: consume\` / \`role: produce\` (they include both) or add rules with apiKey: apiversions and apiKey: metadata`,
      k.first,
      'apiKey',
    );
  }
}

function lintRule(
  rule: Rule,
  policy: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy,
  r: Reporter,
  kafka: Map<string, KafkaPort>,
): void {
  const cnp = policy.kind === 'CiliumNetworkPolicy';
  let nonEmpty = false;
  for (const s of SECTIONS) if ((rule[s]?.length ?? 0) > 0) nonEmpty = true;
  if (nonEmpty) {
    for (const s of SECTIONS) {
      if (rule[s]?.length !== 0) continue;
      r.warn(
        'empty-section-list',
        `\`${s}: []\` does nothing: Cilium treats an empty list like an absent section. Remove it, or write \`${s}: [{}]\` for default deny in that direction`,
        rule,
        s,
      );
    }
  }
  if (cnp && rule.endpointSelector) lintSubjectNamespace(rule.endpointSelector, policy.metadata.namespace, r);

  const emptyPeer = (list: EndpointSelector[] | undefined, field: string, owner: object): void => {
    if (!cnp || !list) return;
    for (const s of list) {
      if (!isEmptySelector(s)) continue;
      r.warn(
        'from-endpoints-empty-selector',
        `\`${field}: [{}]\` in a CiliumNetworkPolicy selects only the pods of the policy's own namespace, not everyone; for every pod of the cluster use \`${field.startsWith('from') ? 'fromEntities' : 'toEntities'}: [cluster]\`, for every peer including outside the cluster use \`[all]\``,
        owner,
        field,
      );
      return;
    }
  };
  const groups = (list: unknown[] | undefined, field: string, owner: object): void => {
    if (list === undefined) return;
    r.warn(
      'peer-not-resolvable-offline',
      `\`${field}\` names cloud-provider (AWS security) groups, which Seawall cannot resolve: this peer selects nothing here. Use \`${field.startsWith('from') ? 'fromCIDRSet' : 'toCIDRSet'}\` with the groups' addresses (or a CiliumCIDRGroup) to test it`,
      owner,
      field,
    );
  };
  for (const sec of ['ingress', 'ingressDeny'] as const) {
    for (const ir of rule[sec] ?? []) {
      emptyPeer(ir.fromEndpoints, 'fromEndpoints', ir);
      groups(ir.fromGroups, 'fromGroups', ir);
      for (const pr of ir.toPorts ?? []) lintPortRule(pr as PortRule, `${sec}`, r, kafka);
    }
  }
  for (const sec of ['egress', 'egressDeny'] as const) {
    for (const er of rule[sec] ?? []) {
      emptyPeer(er.toEndpoints, 'toEndpoints', er);
      groups(er.toGroups, 'toGroups', er);
      for (const pr of er.toPorts ?? []) lintPortRule(pr as PortRule, `${sec}`, r, kafka);
    }
  }
}

function isEmptySelector(s: EndpointSelector): boolean {
  return (
    (s.matchLabels === undefined || Object.keys(s.matchLabels).length === 0) &&
    (s.matchExpressions === undefined || (s.matchExpressions.length === 0 && !isPartial(s.matchExpressions)))
  );
}

function lintSubjectNamespace(sel: EndpointSelector, ns: string | undefined, r: Reporter): void {
  const own =
    ns === undefined ? 'the namespace the policy is applied in' : `its own namespace ${JSON.stringify(ns)}`;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (!NS_KEYS.has(k) || v === ns) continue;
    r.warn(
      'endpoint-selector-namespace-overwritten',
      `endpointSelector names namespace ${JSON.stringify(v)}, but Cilium overwrites the namespace of a CiliumNetworkPolicy's endpointSelector with ${own}: this policy can never select pods of another namespace. Create the policy in ${JSON.stringify(v)} instead`,
      sel.matchLabels!,
      k,
    );
  }
  for (const req of sel.matchExpressions ?? []) {
    if (!NS_KEYS.has(req.key)) continue;
    r.warn(
      'endpoint-selector-namespace-overwritten',
      `endpointSelector tests the namespace label, but Cilium replaces it with ${own} in a CiliumNetworkPolicy; use a CiliumClusterwideNetworkPolicy to select pods across namespaces`,
      req,
    );
  }
}

function lintPortRule(pr: PortRule, dir: string, r: Reporter, kafka: Map<string, KafkaPort>): void {
  for (const p of pr.ports ?? []) lintEndPort(p, r);
  const rules = pr.rules;
  if (!rules) return;
  for (const h of rules.http ?? []) lintHTTP(h, r);
  const k = rules.kafka;
  if (k !== undefined && k.length > 0) {
    r.warn(
      'kafka-deprecated',
      'Kafka L7 rules are deprecated in Cilium 1.18 and removed in 1.19; plan a replacement (e.g. broker-side ACLs) before upgrading',
      rules,
      'kafka',
    );
    const ports = pr.ports && pr.ports.length > 0 ? pr.ports : [undefined];
    for (const p of ports) {
      const key = `${dir}|${p?.port ?? '*'}|${p?.protocol ?? 'ANY'}`;
      let kp = kafka.get(key);
      if (!kp) {
        kp = { open: false, keys: new Set() };
        kafka.set(key, kp);
      }
      for (const rule of k) {
        if (!rule.apiKey) kp.open = true;
        else {
          kp.keys.add(rule.apiKey.toLowerCase());
          kp.first ??= rule;
        }
      }
    }
  }
}

function lintEndPort(p: PortProtocol, r: Reporter): void {
  if (p.endPort === undefined || p.endPort === 0 || p.port === undefined) return;
  let why: string | undefined;
  if (isSvcName(p.port)) why = `port ${JSON.stringify(p.port)} is a named port, and ranges need numbers`;
  else {
    const n = goParseUint0(p.port, 16);
    if (!n.ok) return;
    if (n.value === 0) why = 'port is 0, which already means every port';
    else if (p.endPort <= n.value) {
      why = `endPort ${p.endPort} is not above port ${n.value}, so only port ${n.value} is opened`;
    }
  }
  if (why === undefined) return;
  r.warn('endport-ignored', `endPort is ignored: ${why}`, p, 'endPort');
}

function lintHTTP(h: PortRuleHTTP, r: Reporter): void {
  const headers = h.headers ?? [];
  for (let i = 0; i < headers.length; i++) {
    const entry = headers[i]!;
    const sp = entry.indexOf(' ');
    if (sp < 0) continue;
    let name = entry.slice(0, sp);
    if (name.endsWith(':')) name = name.slice(0, -1);
    const value = entry.slice(sp + 1);
    const quoted = value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0];
    if (!quoted && !looksLikeRegex(value)) continue;
    r.warn(
      'header-value-looks-like-regex',
      `header value ${value} is compared exactly, not as a regex: this rule only matches requests whose ${name} header is the literal text ${value}${quoted ? ' (quotes included)' : ''}. For presence write \`headers: [${JSON.stringify(name)}]\`; for an exact value use \`headerMatches: [{name: ${name}, value: ...}]\``,
      headers,
      i,
    );
  }
  if (h.path !== undefined && h.path !== '' && pathCannotMatch(h.path)) {
    r.warn(
      'path-cannot-match',
      `path ${JSON.stringify(h.path)} can never match: request paths always start with "/" and path is matched against the whole path; write ${JSON.stringify(`/${h.path.replace(/^\^/, '')}`)}`,
      h,
      'path',
    );
  }
  if (h.host !== undefined && hasUnescapedDot(h.host)) {
    r.warn(
      'host-unescaped-dot',
      `host ${JSON.stringify(h.host)} is a regex: an unescaped "." matches any character (so ${JSON.stringify(h.host)} also matches e.g. ${JSON.stringify(h.host.replace('.', 'X'))}); write \\. for a literal dot: ${JSON.stringify(escapeDots(h.host))}`,
      h,
      'host',
    );
  }
}

function looksLikeRegex(v: string): boolean {
  if (v.includes('.*') || v.includes('.+') || v.startsWith('^') || v.endsWith('$')) return true;
  if (/\\[dwsDWS.]/.test(v)) return true;
  const lb = v.indexOf('[');
  if (lb >= 0 && v.indexOf(']', lb) > lb) return true;
  const lp = v.indexOf('(');
  return lp >= 0 && v.indexOf('|', lp) > lp && v.indexOf(')', lp) > lp;
}

/** True when the regex's first atom is a literal other than "/" that must appear. */
function pathCannotMatch(p: string): boolean {
  if (p.includes('|')) return false;
  let i = 0;
  while (p[i] === '^') i++;
  const c = p[i];
  if (c === undefined || c === '/') return false;
  if ('.[(\\'.includes(c)) return false;
  const next = p[i + 1];
  if (next === '?' || next === '*' || next === '{') return false;
  return true;
}

function hasUnescapedDot(s: string): boolean {
  let inClass = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') inClass = true;
    else if (c === '.') {
      const next = s[i + 1];
      if (next !== '*' && next !== '+' && next !== '?' && next !== '{') return true;
    }
  }
  return false;
}

function escapeDots(s: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\') {
      out += c + (s[i + 1] ?? '');
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') inClass = true;
    const next = s[i + 1];
    out += c === '.' && next !== '*' && next !== '+' && next !== '?' && next !== '{' ? '\\.' : c;
  }
  return out;
}
