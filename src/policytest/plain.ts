// Readers for plain JS values (manifests decoded with toJS): Services, nodes, CIDR groups and
// workloads are read leniently, so each field is taken only when it has the expected shape.

import { setEntry } from '../policy-api/cursor.ts';

export type Obj = Record<string, unknown>;

export function asObj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A non-empty string, else undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Labels and selectors: strings kept, numbers and booleans written as text, the rest dropped. */
export function strMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(asObj(v) ?? {})) {
    if (typeof x === 'string') setEntry(out, k, x);
    else if (typeof x === 'number' || typeof x === 'boolean') setEntry(out, k, String(x));
  }
  return out;
}
