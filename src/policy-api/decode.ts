// Decodes one Kubernetes object (a YAML document or a `kind: List` item) into a typed policy
// object, or an OtherObject for kinds that are not policies. Lists are unrolled by the caller
// (load.ts), which also validates and tags issues with the object's name.

import type { Cursor } from './cursor.ts';
import { decodeKNPSpec } from './decode-knp.ts';
import { decodeRule } from './decode-rule.ts';
import { type DecodeCtx, eachField, fieldSet, list, put, remember, str, strMap } from './decode-util.ts';
import type {
  CiliumClusterwideNetworkPolicy,
  CiliumNetworkPolicy,
  NetworkPolicy,
  ObjectMeta,
  OtherObject,
  PolicyObject,
  Rule,
} from './types.ts';

export const CILIUM_API = 'cilium.io/v2' as const;
export const KNP_API = 'networking.k8s.io/v1' as const;

export type DecodedObject =
  | { type: 'policy'; policy: PolicyObject }
  | { type: 'other'; other: OtherObject }
  | { type: 'list'; items: Cursor }
  | { type: 'invalid' };

/** Reads apiVersion and kind without decoding the rest. */
export function objectHeader(c: Cursor, ctx: DecodeCtx): { apiVersion?: string; kind?: string } {
  const out: { apiVersion?: string; kind?: string } = {};
  const av = c.field('apiVersion');
  if (av) {
    const v = ctx.deref(av).scalar();
    if (typeof v === 'string') out.apiVersion = v;
  }
  const k = c.field('kind');
  if (k) {
    const v = ctx.deref(k).scalar();
    if (typeof v === 'string') out.kind = v;
  }
  return out;
}

/** "Kind namespace/name" (or "Kind name" for cluster-scoped objects), for issue tagging. */
export function objectLabel(kind: string | undefined, c: Cursor, ctx: DecodeCtx): string | undefined {
  const m = c.field('metadata');
  if (!m) return undefined;
  const meta = ctx.deref(m);
  const name = meta.field('name')?.scalar();
  if (typeof name !== 'string') return undefined;
  const ns = meta.field('namespace')?.scalar();
  const id =
    typeof ns === 'string' && ns !== '' && kind !== 'CiliumClusterwideNetworkPolicy' ? `${ns}/${name}` : name;
  return kind ? `${kind} ${id}` : id;
}

export function decodeObject(c: Cursor, ctx: DecodeCtx): DecodedObject {
  if (!c.isMap) {
    if (!c.isNull) {
      c.error(
        'not-a-kubernetes-object',
        `expected a Kubernetes object (a map with apiVersion and kind), not ${c.describe()}`,
      );
    }
    return { type: 'invalid' };
  }
  const { apiVersion, kind } = objectHeader(c, ctx);
  if (kind === undefined) {
    const k = c.field('kind');
    if (k) ctx.deref(k).string();
    else c.error('not-a-kubernetes-object', 'document has no `kind`: not a Kubernetes object');
    return { type: 'invalid' };
  }
  if (kind === 'List' || (kind.endsWith('List') && c.field('items') !== undefined)) {
    const items = c.field('items');
    if (items === undefined) return { type: 'list', items: c };
    return { type: 'list', items: ctx.deref(items) };
  }
  const isCilium = kind === 'CiliumNetworkPolicy' || kind === 'CiliumClusterwideNetworkPolicy';
  const isKNP = kind === 'NetworkPolicy';
  if (!isCilium && !isKNP) {
    if (apiVersion === undefined) {
      c.error('not-a-kubernetes-object', `object of kind ${kind} has no \`apiVersion\``);
      return { type: 'invalid' };
    }
    return { type: 'other', other: remember({ pos: c.pos(), apiVersion, kind, value: c.toJS() }, c) };
  }
  const want = isCilium ? CILIUM_API : KNP_API;
  if (apiVersion !== want) {
    const at = c.field('apiVersion') ?? c;
    at.error(
      'unsupported-api-version',
      apiVersion === undefined
        ? `${kind} needs \`apiVersion: ${want}\``
        : `${kind} with apiVersion ${JSON.stringify(apiVersion)} is not supported; use \`apiVersion: ${want}\``,
    );
    return { type: 'invalid' };
  }
  const policy = isCilium
    ? decodeCilium(c, ctx, kind as 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy')
    : decodeKNP(c, ctx);
  return policy ? { type: 'policy', policy } : { type: 'invalid' };
}

const CILIUM_FIELDS = fieldSet('apiVersion', 'kind', 'metadata', 'spec', 'specs', 'status');

function decodeCilium(
  c: Cursor,
  ctx: DecodeCtx,
  kind: 'CiliumNetworkPolicy' | 'CiliumClusterwideNetworkPolicy',
): CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy | undefined {
  let metadata: ObjectMeta | undefined;
  let spec: Rule | undefined;
  let specs: Rule[] | undefined;
  const ok = eachField(
    c,
    ctx,
    kind,
    CILIUM_FIELDS,
    (key, f) => {
      if (key === 'metadata') metadata = decodeMeta(f, ctx);
      else if (key === 'spec') spec = f.isNull ? undefined : decodeRule(f, ctx);
      else if (key === 'specs') specs = list(f, ctx, (i) => decodeRule(i, ctx));
    },
    (key, f) => {
      if (key !== 'description') return false;
      f.error(
        'top-level-description',
        `\`description\` belongs inside the rule (spec.description), not at the top level of the ${kind}; Cilium's validator flags a top-level description and the API server drops it`,
        true,
      );
      return true;
    },
  );
  if (!ok) return undefined;
  if (metadata === undefined) {
    if (c.field('metadata') === undefined) c.error('missing-name', `${kind} needs \`metadata.name\``);
    return undefined;
  }
  const out: CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy = {
    pos: c.pos(),
    apiVersion: CILIUM_API,
    kind,
    metadata,
  } as CiliumNetworkPolicy | CiliumClusterwideNetworkPolicy;
  put(out, 'spec', spec);
  put(out, 'specs', specs);
  return remember(out, c);
}

const KNP_FIELDS = fieldSet('apiVersion', 'kind', 'metadata', 'spec', 'status');

function decodeKNP(c: Cursor, ctx: DecodeCtx): NetworkPolicy | undefined {
  let metadata: ObjectMeta | undefined;
  let spec: NetworkPolicy['spec'] | undefined;
  let specSeen = false;
  const ok = eachField(c, ctx, 'NetworkPolicy', KNP_FIELDS, (key, f) => {
    if (key === 'metadata') metadata = decodeMeta(f, ctx);
    else if (key === 'spec' && !f.isNull) {
      specSeen = true;
      spec = decodeKNPSpec(f, ctx);
    }
  });
  if (!ok) return undefined;
  if (metadata === undefined) {
    if (c.field('metadata') === undefined) c.error('missing-name', 'NetworkPolicy needs `metadata.name`');
    return undefined;
  }
  if (spec === undefined) {
    if (!specSeen) c.error('missing-pod-selector', 'NetworkPolicy needs a `spec` with a `podSelector`');
    return undefined;
  }
  const out: NetworkPolicy = { pos: c.pos(), apiVersion: KNP_API, kind: 'NetworkPolicy', metadata, spec };
  return remember(out, c);
}

const META_FIELDS = fieldSet(
  'name',
  'namespace',
  'labels',
  'annotations',
  'uid',
  'generateName',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'ownerReferences',
  'finalizers',
  'managedFields',
  'selfLink',
);

function decodeMeta(c: Cursor, ctx: DecodeCtx): ObjectMeta | undefined {
  let name: string | undefined;
  let nameSeen = false;
  const rest: Omit<ObjectMeta, 'name'> = {};
  const ok = eachField(c, ctx, 'metadata', META_FIELDS, (key, f) => {
    switch (key) {
      case 'name':
        nameSeen = !f.isNull;
        name = str(f);
        break;
      case 'namespace':
        put(rest, 'namespace', str(f));
        break;
      case 'uid':
        put(rest, 'uid', str(f));
        break;
      case 'labels':
      case 'annotations':
        put(rest, key, strMap(f, ctx));
        break;
    }
  });
  if (!ok) return undefined;
  if (name === undefined || name === '') {
    if (!nameSeen || name === '') c.error('missing-name', 'metadata.name is required');
    return undefined;
  }
  return remember({ name, ...rest }, c);
}
