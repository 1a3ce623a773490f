// Decodes one Cilium rule (a CNP/CCNP `spec` or `specs[i]`) into the typed API objects, with type
// checks and enum checks. Semantic checks that span fields live in validate-*.ts.

import type { Cursor } from './cursor.ts';
import {
  bool,
  type DecodeCtx,
  eachField,
  enumStr,
  fieldSet,
  int,
  list,
  put,
  remember,
  str,
  strList,
  strMap,
} from './decode-util.ts';
import type {
  Authentication,
  CIDRRule,
  DefaultDenyConfig,
  EgressDenyRule,
  EgressRule,
  EndpointSelector,
  Entity,
  FQDNSelector,
  Groups,
  HeaderMatch,
  ICMPField,
  ICMPRule,
  IngressDenyRule,
  IngressRule,
  L4Proto,
  L7Rules,
  LabelSelectorRequirement,
  Listener,
  PortDenyRule,
  PortProtocol,
  PortRule,
  PortRuleDNS,
  PortRuleHTTP,
  PortRuleKafka,
  Rule,
  SelectorOperator,
  Service,
  TLSContext,
} from './types.ts';

export const ENTITIES: readonly Entity[] = [
  'all',
  'world',
  'cluster',
  'host',
  'init',
  'ingress',
  'unmanaged',
  'remote-node',
  'health',
  'none',
  'kube-apiserver',
];
const ENTITY_SET = new Set<string>(ENTITIES);

export const OPERATORS: readonly SelectorOperator[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

export const L4_PROTOCOLS: readonly L4Proto[] = [
  'TCP',
  'UDP',
  'SCTP',
  'ANY',
  'VRRP',
  'IGMP',
  'GRE',
  'IPIP',
  'IPV6',
  'ESP',
  'AH',
];
const L4_SET = new Set<string>(L4_PROTOCOLS);

// ---------------------------------------------------------------- selectors

const SELECTOR_FIELDS = fieldSet('matchLabels', 'matchExpressions');
const REQUIREMENT_FIELDS = fieldSet('key', 'operator', 'values');

export function decodeSelector(
  c: Cursor,
  ctx: DecodeCtx,
  what = 'label selector',
): EndpointSelector | undefined {
  if (c.isNull) return undefined;
  const out: EndpointSelector = { pos: c.pos() };
  const ok = eachField(c, ctx, what, SELECTOR_FIELDS, (key, f) => {
    if (key === 'matchLabels') put(out, 'matchLabels', strMap(f, ctx));
    else
      put(
        out,
        'matchExpressions',
        list(f, ctx, (i) => decodeRequirement(i, ctx)),
      );
  });
  return ok ? remember(out, c) : undefined;
}

function decodeRequirement(c: Cursor, ctx: DecodeCtx): LabelSelectorRequirement | undefined {
  let key: string | undefined;
  let operator: SelectorOperator | undefined;
  let values: string[] | undefined;
  let opSeen = false;
  const ok = eachField(c, ctx, 'matchExpressions entry', REQUIREMENT_FIELDS, (k, f) => {
    if (k === 'key') key = str(f);
    else if (k === 'operator') {
      opSeen = true;
      operator = enumStr(
        f,
        OPERATORS,
        'invalid-selector-operator',
        'operator',
        ' (invalid label selector: not a valid selector operator)',
      );
    } else values = strList(f, ctx);
  });
  if (!ok) return undefined;
  if (key === undefined) {
    c.error('missing-field', 'matchExpressions entry needs a `key`');
    return undefined;
  }
  if (operator === undefined) {
    if (!opSeen) c.error('invalid-selector-operator', 'matchExpressions entry needs an `operator`');
    return undefined;
  }
  const out: LabelSelectorRequirement = { pos: c.pos(), key, operator };
  put(out, 'values', values);
  return remember(out, c);
}

// ---------------------------------------------------------------- rule

const RULE_FIELDS = fieldSet(
  'endpointSelector',
  'nodeSelector',
  'ingress',
  'ingressDeny',
  'egress',
  'egressDeny',
  'enableDefaultDeny',
  'labels',
  'description',
  'log',
);

export function decodeRule(c: Cursor, ctx: DecodeCtx): Rule | undefined {
  const out: Rule = { pos: c.pos() };
  const ok = eachField(c, ctx, 'rule', RULE_FIELDS, (key, f) => {
    switch (key) {
      case 'endpointSelector':
        put(out, 'endpointSelector', decodeSelector(f, ctx, 'endpointSelector'));
        break;
      case 'nodeSelector':
        put(out, 'nodeSelector', decodeSelector(f, ctx, 'nodeSelector'));
        break;
      case 'ingress':
        put(
          out,
          'ingress',
          list(f, ctx, (i) => decodeIngress(i, ctx, false) as IngressRule | undefined),
        );
        break;
      case 'ingressDeny':
        put(
          out,
          'ingressDeny',
          list(f, ctx, (i) => decodeIngress(i, ctx, true) as IngressDenyRule | undefined),
        );
        break;
      case 'egress':
        put(
          out,
          'egress',
          list(f, ctx, (i) => decodeEgress(i, ctx, false) as EgressRule | undefined),
        );
        break;
      case 'egressDeny':
        put(
          out,
          'egressDeny',
          list(f, ctx, (i) => decodeEgress(i, ctx, true) as EgressDenyRule | undefined),
        );
        break;
      case 'enableDefaultDeny':
        put(out, 'enableDefaultDeny', decodeDefaultDeny(f, ctx));
        break;
      case 'labels':
        put(
          out,
          'labels',
          list(f, ctx, (i) => decodeRuleLabel(i, ctx)),
        );
        break;
      case 'description':
        put(out, 'description', str(f));
        break;
      case 'log':
        put(out, 'log', decodeLog(f, ctx));
        break;
    }
  });
  return ok ? remember(out, c) : undefined;
}

const DEFAULT_DENY_FIELDS = fieldSet('ingress', 'egress');
function decodeDefaultDeny(c: Cursor, ctx: DecodeCtx): DefaultDenyConfig | undefined {
  if (c.isNull) return undefined;
  const out: DefaultDenyConfig = {};
  const ok = eachField(c, ctx, 'enableDefaultDeny', DEFAULT_DENY_FIELDS, (key, f) => {
    put(out, key as 'ingress' | 'egress', bool(f));
  });
  return ok ? remember(out, c) : undefined;
}

const RULE_LABEL_FIELDS = fieldSet('key', 'value', 'source');
function decodeRuleLabel(
  c: Cursor,
  ctx: DecodeCtx,
): { key: string; value?: string; source?: string } | undefined {
  let key: string | undefined;
  let value: string | undefined;
  let source: string | undefined;
  const ok = eachField(c, ctx, 'rule label', RULE_LABEL_FIELDS, (k, f) => {
    if (k === 'key') key = str(f);
    else if (k === 'value') value = str(f);
    else source = str(f);
  });
  if (!ok) return undefined;
  if (key === undefined) {
    c.error('missing-field', 'a rule label needs a `key`');
    return undefined;
  }
  const out: { key: string; value?: string; source?: string } = { key };
  put(out, 'value', value);
  put(out, 'source', source);
  return remember(out, c);
}

const LOG_FIELDS = fieldSet('value');
function decodeLog(c: Cursor, ctx: DecodeCtx): { value?: string } | undefined {
  if (c.isNull) return undefined;
  const out: { value?: string } = {};
  const ok = eachField(c, ctx, 'log', LOG_FIELDS, (_k, f) => put(out, 'value', str(f)));
  return ok ? remember(out, c) : undefined;
}

// ---------------------------------------------------------------- ingress / egress

const INGRESS_COMMON = [
  'fromEndpoints',
  'fromRequires',
  'fromCIDR',
  'fromCIDRSet',
  'fromEntities',
  'fromNodes',
  'fromGroups',
  'icmps',
  'toPorts',
];
const INGRESS_FIELDS = fieldSet(...INGRESS_COMMON, 'authentication');
const INGRESS_DENY_FIELDS = fieldSet(...INGRESS_COMMON);

function decodeIngress(c: Cursor, ctx: DecodeCtx, deny: boolean): IngressRule | IngressDenyRule | undefined {
  const out: IngressRule = { pos: c.pos() };
  const what = deny ? 'ingressDeny rule' : 'ingress rule';
  const ok = eachField(
    c,
    ctx,
    what,
    deny ? INGRESS_DENY_FIELDS : INGRESS_FIELDS,
    (key, f) => {
      switch (key) {
        case 'fromEndpoints':
        case 'fromRequires':
        case 'fromNodes':
          put(
            out,
            key,
            list(f, ctx, (i) => decodeSelector(i, ctx, key)),
          );
          break;
        case 'fromCIDR':
          put(out, 'fromCIDR', strList(f, ctx));
          break;
        case 'fromCIDRSet':
          put(
            out,
            'fromCIDRSet',
            list(f, ctx, (i) => decodeCIDRRule(i, ctx)),
          );
          break;
        case 'fromEntities':
          put(out, 'fromEntities', decodeEntities(f, ctx));
          break;
        case 'fromGroups':
          put(
            out,
            'fromGroups',
            list(f, ctx, (i) => decodeGroups(i, ctx)),
          );
          break;
        case 'icmps':
          put(
            out,
            'icmps',
            list(f, ctx, (i) => decodeICMPRule(i, ctx)),
          );
          break;
        case 'toPorts':
          put(
            out,
            'toPorts',
            list(f, ctx, (i) => (deny ? decodePortDenyRule(i, ctx) : decodePortRule(i, ctx))),
          );
          break;
        case 'authentication':
          put(out, 'authentication', decodeAuthentication(f, ctx));
          break;
      }
    },
    (key, f) => denyOnlyField(key, f, deny, what),
  );
  return ok ? remember(out, c) : undefined;
}

const EGRESS_COMMON = [
  'toEndpoints',
  'toRequires',
  'toCIDR',
  'toCIDRSet',
  'toEntities',
  'toServices',
  'toNodes',
  'toGroups',
  'icmps',
  'toPorts',
];
const EGRESS_FIELDS = fieldSet(...EGRESS_COMMON, 'toFQDNs', 'authentication');
const EGRESS_DENY_FIELDS = fieldSet(...EGRESS_COMMON);

function decodeEgress(c: Cursor, ctx: DecodeCtx, deny: boolean): EgressRule | EgressDenyRule | undefined {
  const out: EgressRule = { pos: c.pos() };
  const what = deny ? 'egressDeny rule' : 'egress rule';
  const ok = eachField(
    c,
    ctx,
    what,
    deny ? EGRESS_DENY_FIELDS : EGRESS_FIELDS,
    (key, f) => {
      switch (key) {
        case 'toEndpoints':
        case 'toRequires':
        case 'toNodes':
          put(
            out,
            key,
            list(f, ctx, (i) => decodeSelector(i, ctx, key)),
          );
          break;
        case 'toCIDR':
          put(out, 'toCIDR', strList(f, ctx));
          break;
        case 'toCIDRSet':
          put(
            out,
            'toCIDRSet',
            list(f, ctx, (i) => decodeCIDRRule(i, ctx)),
          );
          break;
        case 'toEntities':
          put(out, 'toEntities', decodeEntities(f, ctx));
          break;
        case 'toServices':
          put(
            out,
            'toServices',
            list(f, ctx, (i) => decodeService(i, ctx)),
          );
          break;
        case 'toGroups':
          put(
            out,
            'toGroups',
            list(f, ctx, (i) => decodeGroups(i, ctx)),
          );
          break;
        case 'icmps':
          put(
            out,
            'icmps',
            list(f, ctx, (i) => decodeICMPRule(i, ctx)),
          );
          break;
        case 'toPorts':
          put(
            out,
            'toPorts',
            list(f, ctx, (i) => (deny ? decodePortDenyRule(i, ctx) : decodePortRule(i, ctx))),
          );
          break;
        case 'toFQDNs':
          put(
            out,
            'toFQDNs',
            list(f, ctx, (i) => decodeFQDN(i, ctx, 'toFQDNs entry') as FQDNSelector | undefined),
          );
          break;
        case 'authentication':
          put(out, 'authentication', decodeAuthentication(f, ctx));
          break;
      }
    },
    (key, f) => denyOnlyField(key, f, deny, what),
  );
  return ok ? remember(out, c) : undefined;
}

/** Fields of allow rules written in a deny rule get a precise message instead of a did-you-mean. */
function denyOnlyField(key: string, f: Cursor, deny: boolean, what: string): boolean {
  if (!deny || (key !== 'toFQDNs' && key !== 'authentication')) return false;
  f.error(
    'unknown-field',
    `${key} is not allowed in an ${what}: deny rules select peers by endpoints, CIDRs, entities, services, nodes or groups only (the API server would drop it)`,
    true,
  );
  return true;
}

function decodeEntities(c: Cursor, ctx: DecodeCtx): Entity[] | undefined {
  return list(c, ctx, (i) => {
    const s = i.string();
    if (s === undefined) return undefined;
    if (ENTITY_SET.has(s)) return s as Entity;
    const lower = s.toLowerCase();
    let hint: string;
    if (lower === 'world-ipv4' || lower === 'world-ipv6') {
      hint = ` ${s} exists inside the agent but is not in the CRD's entity enum; use world`;
    } else if (ENTITY_SET.has(lower)) {
      hint = ` entities are lower case: write ${lower}`;
    } else {
      hint = ` known entities: ${ENTITIES.join(', ')}`;
    }
    i.error('unsupported-entity', `unsupported entity ${JSON.stringify(s)};${hint}`);
    return undefined;
  });
}

const CIDR_RULE_FIELDS = fieldSet('cidr', 'cidrGroupRef', 'cidrGroupSelector', 'except');
function decodeCIDRRule(c: Cursor, ctx: DecodeCtx): CIDRRule | undefined {
  const out: CIDRRule = { pos: c.pos() };
  const ok = eachField(c, ctx, 'CIDR rule', CIDR_RULE_FIELDS, (key, f) => {
    if (key === 'cidr') put(out, 'cidr', str(f));
    else if (key === 'cidrGroupRef') put(out, 'cidrGroupRef', str(f));
    else if (key === 'cidrGroupSelector')
      put(out, 'cidrGroupSelector', decodeSelector(f, ctx, 'cidrGroupSelector'));
    else put(out, 'except', strList(f, ctx));
  });
  return ok ? remember(out, c) : undefined;
}

const FQDN_FIELDS = fieldSet('matchName', 'matchPattern');
function decodeFQDN(c: Cursor, ctx: DecodeCtx, what: string): FQDNSelector | PortRuleDNS | undefined {
  const out: FQDNSelector = { pos: c.pos() };
  const ok = eachField(c, ctx, what, FQDN_FIELDS, (key, f) => {
    put(out, key as 'matchName' | 'matchPattern', str(f));
  });
  return ok ? remember(out, c) : undefined;
}

const SERVICE_FIELDS = fieldSet('k8sService', 'k8sServiceSelector');
const K8S_SERVICE_FIELDS = fieldSet('serviceName', 'namespace');
const SERVICE_SELECTOR_FIELDS = fieldSet('selector', 'namespace');
function decodeService(c: Cursor, ctx: DecodeCtx): Service | undefined {
  const out: Service = { pos: c.pos() };
  const ok = eachField(c, ctx, 'toServices entry', SERVICE_FIELDS, (key, f) => {
    if (f.isNull) return;
    if (key === 'k8sService') {
      const s: { serviceName?: string; namespace?: string } = {};
      if (eachField(f, ctx, 'k8sService', K8S_SERVICE_FIELDS, (k, g) => put(s, k as 'serviceName', str(g)))) {
        out.k8sService = remember(s, f);
      }
    } else {
      let selector: EndpointSelector | undefined;
      let namespace: string | undefined;
      const fine = eachField(f, ctx, 'k8sServiceSelector', SERVICE_SELECTOR_FIELDS, (k, g) => {
        if (k === 'selector') selector = decodeSelector(g, ctx, 'selector');
        else namespace = str(g);
      });
      if (!fine) return;
      if (selector === undefined) {
        f.error('missing-field', 'k8sServiceSelector needs a `selector`');
        return;
      }
      const s: { selector: EndpointSelector; namespace?: string } = { selector };
      put(s, 'namespace', namespace);
      out.k8sServiceSelector = remember(s, f);
    }
  });
  return ok ? remember(out, c) : undefined;
}

const GROUPS_FIELDS = fieldSet('aws');
const AWS_FIELDS = fieldSet('labels', 'securityGroupsIds', 'securityGroupsNames', 'region');
function decodeGroups(c: Cursor, ctx: DecodeCtx): Groups | undefined {
  const out: Groups = { pos: c.pos() };
  const ok = eachField(c, ctx, 'groups entry', GROUPS_FIELDS, (_k, f) => {
    if (f.isNull) return;
    const aws: NonNullable<Groups['aws']> = {};
    const fine = eachField(f, ctx, 'aws group', AWS_FIELDS, (k, g) => {
      if (k === 'labels') put(aws, 'labels', strMap(g, ctx));
      else if (k === 'region') put(aws, 'region', str(g));
      else put(aws, k as 'securityGroupsIds', strList(g, ctx));
    });
    if (fine) out.aws = remember(aws, f);
  });
  return ok ? remember(out, c) : undefined;
}

const AUTH_MODES = ['disabled', 'required', 'test-always-fail'] as const;
const AUTH_FIELDS = fieldSet('mode');
function decodeAuthentication(c: Cursor, ctx: DecodeCtx): Authentication | undefined {
  if (c.isNull) return undefined;
  let mode: Authentication['mode'] | undefined;
  let seen = false;
  const ok = eachField(c, ctx, 'authentication', AUTH_FIELDS, (_k, f) => {
    seen = true;
    mode = enumStr(f, AUTH_MODES, 'invalid-authentication-mode', 'authentication mode');
  });
  if (!ok) return undefined;
  if (mode === undefined) {
    if (!seen)
      c.error('missing-field', 'authentication needs a `mode` (disabled, required or test-always-fail)');
    return undefined;
  }
  return remember({ mode }, c);
}

// ---------------------------------------------------------------- ICMP

const ICMP_RULE_FIELDS = fieldSet('fields');
const ICMP_FIELD_FIELDS = fieldSet('type', 'family');
function decodeICMPRule(c: Cursor, ctx: DecodeCtx): ICMPRule | undefined {
  let fields: ICMPField[] | undefined;
  const ok = eachField(c, ctx, 'icmps entry', ICMP_RULE_FIELDS, (_k, f) => {
    fields = list(f, ctx, (i) => decodeICMPField(i, ctx));
  });
  if (!ok) return undefined;
  return remember({ pos: c.pos(), fields: fields ?? remember([], c) }, c);
}

function decodeICMPField(c: Cursor, ctx: DecodeCtx): ICMPField | undefined {
  let type: number | string | undefined;
  let family: ICMPField['family'] | undefined;
  const ok = eachField(c, ctx, 'icmps field', ICMP_FIELD_FIELDS, (k, f) => {
    if (k === 'type') {
      if (!f.isNull) type = f.intOrString();
    } else family = enumStr(f, ['IPv4', 'IPv6'] as const, 'invalid-icmp-family', 'ICMP family');
  });
  if (!ok) return undefined;
  if (type === undefined) {
    c.error(
      'invalid-icmp-type',
      'an icmps field needs a `type` (a number 0-255 or a name such as EchoRequest)',
    );
    return undefined;
  }
  const out: ICMPField = { pos: c.pos(), type };
  put(out, 'family', family);
  return remember(out, c);
}

// ---------------------------------------------------------------- L4

const PORT_FIELDS = fieldSet('port', 'endPort', 'protocol');
function decodePortProtocol(c: Cursor, ctx: DecodeCtx): PortProtocol | undefined {
  const out: PortProtocol = { pos: c.pos() };
  const ok = eachField(c, ctx, 'ports entry', PORT_FIELDS, (key, f) => {
    if (key === 'port') put(out, 'port', str(f));
    else if (key === 'endPort') put(out, 'endPort', int(f));
    else put(out, 'protocol', decodeProtocol(f));
  });
  return ok ? remember(out, c) : undefined;
}

function decodeProtocol(c: Cursor): L4Proto | undefined {
  const s = str(c);
  if (s === undefined) return undefined;
  if (L4_SET.has(s)) return s as L4Proto;
  const upper = s.toUpperCase();
  if (L4_SET.has(upper)) {
    // The agent would upper-case it, but the CRD enum is upper case: the API server rejects it.
    c.error(
      'invalid-protocol',
      `protocol ${JSON.stringify(s)} must be written in upper case: ${upper} (the CRD enum is upper case, so the API server rejects ${JSON.stringify(s)})`,
    );
    return upper as L4Proto;
  }
  if (upper === 'ICMP' || upper === 'ICMPV6') {
    c.error(
      'invalid-protocol',
      `${s} is not a toPorts protocol; allow ICMP with an \`icmps\` block (icmps: [{fields: [{type: EchoRequest}]}]) in a rule without toPorts`,
    );
    return undefined;
  }
  if (s === '') {
    c.error('invalid-protocol', 'protocol must not be empty; leave it out for ANY (TCP, UDP and SCTP)');
    return undefined;
  }
  c.error('invalid-protocol', `invalid protocol ${JSON.stringify(s)}; use one of TCP, UDP, SCTP or ANY`);
  return undefined;
}

const PORT_DENY_RULE_FIELDS = fieldSet('ports');
function decodePortDenyRule(c: Cursor, ctx: DecodeCtx): PortDenyRule | undefined {
  const out: PortDenyRule = { pos: c.pos() };
  const ok = eachField(
    c,
    ctx,
    'deny toPorts entry',
    PORT_DENY_RULE_FIELDS,
    (_k, f) =>
      put(
        out,
        'ports',
        list(f, ctx, (i) => decodePortProtocol(i, ctx)),
      ),
    (key, f) => {
      if (key !== 'rules' && key !== 'serverNames' && key !== 'listener') return false;
      f.error(
        'unknown-field',
        `${key} is not allowed in the toPorts of a deny rule (deny rules have ports only; L7 rules exist only in allow rules); the API server would drop it`,
        true,
      );
      return true;
    },
  );
  return ok ? remember(out, c) : undefined;
}

const PORT_RULE_FIELDS = fieldSet(
  'ports',
  'rules',
  'serverNames',
  'terminatingTLS',
  'originatingTLS',
  'listener',
);
function decodePortRule(c: Cursor, ctx: DecodeCtx): PortRule | undefined {
  const out: PortRule = { pos: c.pos() };
  const ok = eachField(c, ctx, 'toPorts entry', PORT_RULE_FIELDS, (key, f) => {
    switch (key) {
      case 'ports':
        put(
          out,
          'ports',
          list(f, ctx, (i) => decodePortProtocol(i, ctx)),
        );
        break;
      case 'rules':
        put(out, 'rules', decodeL7Rules(f, ctx));
        break;
      case 'serverNames':
        put(out, 'serverNames', strList(f, ctx));
        break;
      case 'terminatingTLS':
      case 'originatingTLS':
        put(out, key, decodeTLS(f, ctx, key));
        break;
      case 'listener':
        put(out, 'listener', decodeListener(f, ctx));
        break;
    }
  });
  return ok ? remember(out, c) : undefined;
}

const SECRET_FIELDS = fieldSet('namespace', 'name');
function decodeSecret(
  c: Cursor,
  ctx: DecodeCtx,
  what: string,
): { namespace?: string; name: string } | undefined {
  if (c.isNull) return undefined;
  const out: { namespace?: string; name: string } = { name: '' };
  const ok = eachField(c, ctx, what, SECRET_FIELDS, (k, f) => {
    const v = str(f);
    if (v === undefined) return;
    if (k === 'name') out.name = v;
    else out.namespace = v;
  });
  return ok ? remember(out, c) : undefined;
}

const TLS_FIELDS = fieldSet('secret', 'trustedCA', 'certificate', 'privateKey');
function decodeTLS(c: Cursor, ctx: DecodeCtx, what: string): TLSContext | undefined {
  if (c.isNull) return undefined;
  let secret: TLSContext['secret'] | undefined;
  const rest: Omit<TLSContext, 'secret'> = {};
  const ok = eachField(c, ctx, what, TLS_FIELDS, (k, f) => {
    if (k === 'secret') secret = decodeSecret(f, ctx, `${what}.secret`);
    else put(rest, k as 'trustedCA', str(f));
  });
  if (!ok) return undefined;
  if (secret === undefined) {
    c.error('missing-field', `${what} needs a \`secret\` ({namespace, name}) holding the certificates`);
    return undefined;
  }
  return remember({ secret, ...rest }, c);
}

const LISTENER_FIELDS = fieldSet('envoyConfig', 'name', 'priority');
const ENVOY_CONFIG_FIELDS = fieldSet('kind', 'name');
function decodeListener(c: Cursor, ctx: DecodeCtx): Listener | undefined {
  if (c.isNull) return undefined;
  let envoyConfig: Listener['envoyConfig'] | undefined;
  let name: string | undefined;
  let priority: number | undefined;
  const ok = eachField(c, ctx, 'listener', LISTENER_FIELDS, (k, f) => {
    if (k === 'name') name = str(f);
    else if (k === 'priority') priority = int(f);
    else {
      const ec: { kind?: string; name: string } = { name: '' };
      let nameSeen = false;
      const fine = eachField(f, ctx, 'envoyConfig', ENVOY_CONFIG_FIELDS, (kk, g) => {
        const v = str(g);
        if (v === undefined) return;
        if (kk === 'name') {
          ec.name = v;
          nameSeen = true;
        } else ec.kind = v;
      });
      if (fine && !nameSeen) f.error('missing-field', 'listener.envoyConfig needs a `name`');
      else if (fine) envoyConfig = remember(ec, f);
    }
  });
  if (!ok) return undefined;
  if (envoyConfig === undefined || name === undefined) {
    c.error('missing-field', 'a listener needs `envoyConfig` ({kind, name}) and `name`');
    return undefined;
  }
  const out: Listener = { envoyConfig, name };
  put(out, 'priority', priority);
  return remember(out, c);
}

// ---------------------------------------------------------------- L7

const L7_FIELDS = fieldSet('http', 'kafka', 'dns', 'l7proto', 'l7');
function decodeL7Rules(c: Cursor, ctx: DecodeCtx): L7Rules | undefined {
  if (c.isNull) return undefined;
  const out: L7Rules = { pos: c.pos() };
  const ok = eachField(c, ctx, 'rules', L7_FIELDS, (key, f) => {
    switch (key) {
      case 'http':
        put(
          out,
          'http',
          list(f, ctx, (i) => decodeHTTP(i, ctx)),
        );
        break;
      case 'kafka':
        put(
          out,
          'kafka',
          list(f, ctx, (i) => decodeKafka(i, ctx)),
        );
        break;
      case 'dns':
        put(
          out,
          'dns',
          list(f, ctx, (i) => decodeFQDN(i, ctx, 'dns rule') as PortRuleDNS | undefined),
        );
        break;
      case 'l7proto':
        put(out, 'l7proto', str(f));
        break;
      case 'l7':
        put(
          out,
          'l7',
          list(f, ctx, (i) => strMap(i, ctx)),
        );
        break;
    }
  });
  return ok ? remember(out, c) : undefined;
}

const HTTP_FIELDS = fieldSet('path', 'method', 'host', 'headers', 'headerMatches');
function decodeHTTP(c: Cursor, ctx: DecodeCtx): PortRuleHTTP | undefined {
  const out: PortRuleHTTP = { pos: c.pos() };
  const ok = eachField(
    c,
    ctx,
    'http rule',
    HTTP_FIELDS,
    (key, f) => {
      switch (key) {
        case 'path':
        case 'method':
        case 'host':
          put(out, key, str(f));
          break;
        case 'headers':
          put(out, 'headers', strList(f, ctx));
          break;
        case 'headerMatches':
          put(
            out,
            'headerMatches',
            list(f, ctx, (i) => decodeHeaderMatch(i, ctx)),
          );
          break;
      }
    },
    (key, f) => {
      if (key !== 'pathRegex' && key !== 'regex' && key !== 'urlRegex') return false;
      // Guides show `pathRegex`; the CRD has no such field, so the rule silently widens.
      const m = c.field('method')?.scalar();
      const what = typeof m === 'string' && m !== '' ? m : 'every method';
      f.error(
        'unknown-field',
        `unknown field "${key}" in http rule: the Kubernetes API server silently drops it, so this rule allows ${what} to every path; use \`path\` (an RE2 regex matched against the whole path)`,
        true,
      );
      return true;
    },
  );
  return ok ? remember(out, c) : undefined;
}

const MISMATCH = ['LOG', 'ADD', 'DELETE', 'REPLACE'] as const;
const HEADER_MATCH_FIELDS = fieldSet('name', 'value', 'secret', 'mismatch');
function decodeHeaderMatch(c: Cursor, ctx: DecodeCtx): HeaderMatch | undefined {
  const out: HeaderMatch = { pos: c.pos(), name: '' };
  const ok = eachField(c, ctx, 'headerMatches entry', HEADER_MATCH_FIELDS, (key, f) => {
    switch (key) {
      case 'name':
        out.name = str(f) ?? '';
        break;
      case 'value':
        put(out, 'value', str(f));
        break;
      case 'secret':
        put(out, 'secret', decodeSecret(f, ctx, 'headerMatches secret'));
        break;
      case 'mismatch': {
        const s = str(f);
        if (s === undefined || s === '') break;
        put(
          out,
          'mismatch',
          enumStr(
            f,
            MISMATCH,
            'invalid-header-mismatch',
            'header mismatch action',
            ' (Invalid header action)',
          ),
        );
        break;
      }
    }
  });
  return ok ? remember(out, c) : undefined;
}

const KAFKA_FIELDS = fieldSet('role', 'apiKey', 'apiVersion', 'clientID', 'topic');
function decodeKafka(c: Cursor, ctx: DecodeCtx): PortRuleKafka | undefined {
  const out: PortRuleKafka = { pos: c.pos() };
  const ok = eachField(c, ctx, 'kafka rule', KAFKA_FIELDS, (key, f) => put(out, key as 'role', str(f)));
  return ok ? remember(out, c) : undefined;
}
