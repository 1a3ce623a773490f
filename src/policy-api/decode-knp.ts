// Decodes the spec of a Kubernetes NetworkPolicy (networking.k8s.io/v1).

import type { Cursor } from './cursor.ts';
import { decodeSelector } from './decode-rule.ts';
import {
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
} from './decode-util.ts';
import type {
  IPBlock,
  K8sLabelSelector,
  NetworkPolicyEgressRule,
  NetworkPolicyIngressRule,
  NetworkPolicyPeer,
  NetworkPolicyPort,
  NetworkPolicySpec,
} from './types.ts';

const SPEC_FIELDS = fieldSet('podSelector', 'policyTypes', 'ingress', 'egress');

export function decodeKNPSpec(c: Cursor, ctx: DecodeCtx): NetworkPolicySpec | undefined {
  let podSelector: K8sLabelSelector | undefined;
  let policyTypes: Array<'Ingress' | 'Egress'> | undefined;
  let ingress: NetworkPolicyIngressRule[] | undefined;
  let egress: NetworkPolicyEgressRule[] | undefined;
  const ok = eachField(c, ctx, 'NetworkPolicy spec', SPEC_FIELDS, (key, f) => {
    switch (key) {
      case 'podSelector':
        podSelector = decodeSelector(f, ctx, 'podSelector');
        break;
      case 'policyTypes':
        policyTypes = list(f, ctx, (i) =>
          enumStr(i, ['Ingress', 'Egress'] as const, 'invalid-policy-type', 'policyTypes value'),
        );
        break;
      case 'ingress':
        ingress = list(f, ctx, (i) => decodeKNPRule(i, ctx, 'from'));
        break;
      case 'egress':
        egress = list(f, ctx, (i) => decodeKNPRule(i, ctx, 'to'));
        break;
    }
  });
  if (!ok) return undefined;
  if (podSelector === undefined) {
    c.error(
      'missing-pod-selector',
      'NetworkPolicy spec needs `podSelector` (write `podSelector: {}` to select every pod of the namespace)',
    );
    return undefined;
  }
  const out: NetworkPolicySpec = { pos: c.pos(), podSelector };
  put(out, 'policyTypes', policyTypes);
  put(out, 'ingress', ingress);
  put(out, 'egress', egress);
  return remember(out, c);
}

const INGRESS_FIELDS = fieldSet('from', 'ports');
const EGRESS_FIELDS = fieldSet('to', 'ports');

function decodeKNPRule(
  c: Cursor,
  ctx: DecodeCtx,
  peers: 'from' | 'to',
): (NetworkPolicyIngressRule & NetworkPolicyEgressRule) | undefined {
  const out: NetworkPolicyIngressRule & NetworkPolicyEgressRule = { pos: c.pos() };
  const ok = eachField(
    c,
    ctx,
    peers === 'from' ? 'NetworkPolicy ingress rule' : 'NetworkPolicy egress rule',
    peers === 'from' ? INGRESS_FIELDS : EGRESS_FIELDS,
    (key, f) => {
      if (key === 'ports')
        put(
          out,
          'ports',
          list(f, ctx, (i) => decodeKNPPort(i, ctx)),
        );
      else
        put(
          out,
          peers,
          list(f, ctx, (i) => decodePeer(i, ctx)),
        );
    },
  );
  return ok ? remember(out, c) : undefined;
}

const PEER_FIELDS = fieldSet('podSelector', 'namespaceSelector', 'ipBlock');
function decodePeer(c: Cursor, ctx: DecodeCtx): NetworkPolicyPeer | undefined {
  const out: NetworkPolicyPeer = { pos: c.pos() };
  const ok = eachField(c, ctx, 'NetworkPolicy peer', PEER_FIELDS, (key, f) => {
    if (key === 'ipBlock') put(out, 'ipBlock', decodeIPBlock(f, ctx));
    else put(out, key as 'podSelector', decodeSelector(f, ctx, key));
  });
  return ok ? remember(out, c) : undefined;
}

const IPBLOCK_FIELDS = fieldSet('cidr', 'except');
function decodeIPBlock(c: Cursor, ctx: DecodeCtx): IPBlock | undefined {
  if (c.isNull) return undefined;
  let cidr: string | undefined;
  let except: string[] | undefined;
  const ok = eachField(c, ctx, 'ipBlock', IPBLOCK_FIELDS, (key, f) => {
    if (key === 'cidr') cidr = str(f);
    else except = strList(f, ctx);
  });
  if (!ok) return undefined;
  if (cidr === undefined) {
    c.error('invalid-cidr', 'ipBlock needs a `cidr` (e.g. 10.0.0.0/8)');
    return undefined;
  }
  const out: IPBlock = { pos: c.pos(), cidr };
  put(out, 'except', except);
  return remember(out, c);
}

const PORT_FIELDS = fieldSet('protocol', 'port', 'endPort');
function decodeKNPPort(c: Cursor, ctx: DecodeCtx): NetworkPolicyPort | undefined {
  const out: NetworkPolicyPort = { pos: c.pos() };
  const ok = eachField(c, ctx, 'NetworkPolicy port', PORT_FIELDS, (key, f) => {
    if (key === 'protocol') {
      put(
        out,
        'protocol',
        enumStr(f, ['TCP', 'UDP', 'SCTP'] as const, 'invalid-protocol', 'protocol', ' (case-sensitive)'),
      );
    } else if (key === 'port') {
      if (!f.isNull) put(out, 'port', f.intOrString());
    } else put(out, 'endPort', int(f));
  });
  return ok ? remember(out, c) : undefined;
}
