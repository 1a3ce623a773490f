// Readers for plain JS values (manifests decoded with toJS): Services, nodes, CIDR groups and
// workloads are read leniently, so each field is taken only when it has the expected shape.

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

/**
 * `out[k] = v` as an own property, also for the key `__proto__`, which plain assignment would
 * swallow (a label selector would silently lose a requirement and select more).
 */
export function setEntry<V>(out: Record<string, V>, k: string, v: V): void {
  Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
}
