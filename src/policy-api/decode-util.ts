// Shared helpers of the decoders: one pass over each YAML map (known fields dispatched, unknown
// ones reported with a did-you-mean), alias resolution with an expansion budget, and a side table
// from every decoded object to the cursor it came from, so that validation and lint can point at
// the exact field without keeping positions for every scalar.

import { isAlias, isMap, isScalar, isSeq, type Node } from 'yaml';
import { setEntry } from '../core/plain.ts';
import { Cursor, closest, reportUnknownField } from './cursor.ts';

const origin = new WeakMap<object, Cursor>();

/** Records where `obj` was decoded from; returns `obj`. */
export function remember<T extends object>(obj: T, c: Cursor): T {
  origin.set(obj, c);
  return obj;
}

/** The cursor an object (or list, or string map) was decoded from, if it came from YAML. */
export function cursorOf(obj: object): Cursor | undefined {
  return origin.get(obj);
}

/** How many alias expansions one document may cause while decoding (alias bombs). */
const MAX_ALIAS_EXPANSIONS = 1000;

/** Per-document decoding state. */
export class DecodeCtx {
  private anchors: Map<string, Node[]> | undefined;
  private expansions = 0;
  private budgetReported = false;

  constructor(readonly root: Node | null | undefined) {}

  /** Follows a YAML alias (`*x`) to its anchored node; other cursors are returned unchanged. */
  deref(c: Cursor): Cursor {
    const n = c.node;
    if (!isAlias(n)) return c;
    if (++this.expansions > MAX_ALIAS_EXPANSIONS) {
      if (!this.budgetReported) {
        this.budgetReported = true;
        c.error(
          'too-many-aliases',
          `the document expands YAML aliases more than ${MAX_ALIAS_EXPANSIONS} times (an alias bomb?); write the values out`,
        );
      }
      return new Cursor(c.src, null, c.path, c.issues, c.keyNode);
    }
    const target = this.resolve(n.source, n.range?.[0] ?? 0);
    if (target === undefined) {
      c.error('yaml-syntax', `YAML alias *${n.source} refers to no anchor`);
      return new Cursor(c.src, null, c.path, c.issues, c.keyNode);
    }
    // Keep the alias's own position: the issue is about this use of the value.
    return new Cursor(c.src, target, c.path, c.issues, c.keyNode ?? n);
  }

  private resolve(name: string, before: number): Node | undefined {
    if (this.anchors === undefined) this.anchors = collectAnchors(this.root);
    const nodes = this.anchors.get(name);
    if (nodes === undefined) return undefined;
    // The alias refers to the closest anchor of that name defined before it.
    let best: Node | undefined;
    for (const n of nodes) {
      const at = n.range?.[0] ?? 0;
      if (at <= before) best = n;
    }
    return best;
  }
}

function collectAnchors(root: Node | null | undefined): Map<string, Node[]> {
  const out = new Map<string, Node[]>();
  if (root == null) return out;
  const stack: Node[] = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    const anchor = (n as { anchor?: string }).anchor;
    if (anchor) {
      const list = out.get(anchor);
      if (list) list.push(n);
      else out.set(anchor, [n]);
    }
    if (isMap(n)) {
      for (const p of n.items) {
        if (p.value) stack.push(p.value as Node);
      }
    } else if (isSeq(n)) {
      for (const it of n.items) if (it) stack.push(it as Node);
    }
  }
  for (const list of out.values()) list.sort((a, b) => (a.range?.[0] ?? 0) - (b.range?.[0] ?? 0));
  return out;
}

const CRD_NOTE =
  " The Kubernetes API server silently drops unknown fields of Cilium's CRDs, so this field would have no effect.";

/**
 * Walks a map once: `fn` gets each known field (alias-resolved); unknown fields are reported.
 * Returns false (after reporting) when the node is not a map.
 */
export function eachField(
  c: Cursor,
  ctx: DecodeCtx,
  what: string,
  known: ReadonlySet<string>,
  fn: (key: string, child: Cursor) => void,
  onUnknown?: (key: string, child: Cursor) => boolean,
): boolean {
  if (!c.expectMap()) return false;
  for (const [key, raw] of c.entries()) {
    if (!known.has(key)) {
      if (onUnknown?.(key, raw)) continue;
      reportUnknownField(raw, key, [...known], what, CRD_NOTE);
      continue;
    }
    fn(key, ctx.deref(raw));
  }
  return true;
}

/** Decodes a list; null means absent. Items that fail to decode are left out (already reported). */
export function list<T>(c: Cursor, ctx: DecodeCtx, fn: (item: Cursor) => T | undefined): T[] | undefined {
  if (c.isNull) return undefined;
  if (!c.expectSeq()) return undefined;
  const out: T[] = [];
  const items = c.items();
  for (const raw of items) {
    const v = fn(ctx.deref(raw));
    if (v !== undefined) out.push(v);
  }
  if (out.length < items.length) partial.add(out);
  return remember(out, c);
}

const partial = new WeakSet<object>();

/** True when some items of a decoded list were left out because they did not decode. */
export function isPartial(list: object): boolean {
  return partial.has(list);
}

/** A string field; null means absent. */
export function str(c: Cursor): string | undefined {
  if (c.isNull) return undefined;
  return c.string();
}

export function int(c: Cursor): number | undefined {
  if (c.isNull) return undefined;
  return c.integer();
}

export function bool(c: Cursor): boolean | undefined {
  if (c.isNull) return undefined;
  return c.boolean();
}

export function strList(c: Cursor, ctx: DecodeCtx): string[] | undefined {
  return list(c, ctx, (item) => item.string());
}

/** A map of strings (labels, annotations). Unquoted numbers/booleans are reported by Cursor. */
export function strMap(c: Cursor, ctx: DecodeCtx): Record<string, string> | undefined {
  if (c.isNull) return undefined;
  if (!c.expectMap()) return undefined;
  const out: Record<string, string> = {};
  for (const [k, raw] of c.entries()) {
    const v = ctx.deref(raw);
    if (v.isNull) setEntry(out, k, '');
    else if (isScalar(v.node) && typeof v.scalar() === 'string') setEntry(out, k, v.scalar() as string);
    else v.string();
  }
  return remember(out, c);
}

/** An enum string: reports values outside `allowed` with a did-you-mean. */
export function enumStr<T extends string>(
  c: Cursor,
  allowed: readonly T[],
  code: string,
  what: string,
  extra = '',
): T | undefined {
  const s = str(c);
  if (s === undefined) return undefined;
  if ((allowed as readonly string[]).includes(s)) return s as T;
  const guess = closest(s, allowed);
  c.error(
    code,
    `${what} ${JSON.stringify(s)} is not valid; use one of ${allowed.join(', ')}${guess ? ` (did you mean "${guess}"?)` : ''}${extra}`,
  );
  return undefined;
}

/** Sets `o[k] = v` unless v is undefined (exactOptionalPropertyTypes). */
export function put<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

export function fieldSet(...names: string[]): ReadonlySet<string> {
  return new Set(names);
}
