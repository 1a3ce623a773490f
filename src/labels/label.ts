// Labels as Cilium keys identities with them: source:key=value. Sources matter for selection:
// `k8s:app` only matches k8s-sourced labels, `any:app` matches `app` from any source.

export const SOURCE_ANY = 'any';
export const SOURCE_K8S = 'k8s';
export const SOURCE_RESERVED = 'reserved';
export const SOURCE_CIDR = 'cidr';
export const SOURCE_FQDN = 'fqdn';
/** Node labels on remote-node identities (--enable-node-selector-labels). */
export const SOURCE_NODE = 'node';
export const SOURCE_CIDRGROUP = 'cidrgroup';

export interface Label {
  source: string;
  key: string;
  value: string;
}

/** `source:key=value`, the way Cilium prints labels (value part omitted when empty). */
export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/**
 * Splits a selector or label key into source and key: text before the first `:` is the source,
 * `$host` is shorthand for `reserved:host`, no source means `defaultSource`.
 * CIDR keys (`cidr:10.0.0.0/8`) keep their colons after the first one (IPv6).
 */
export function parseKey(raw: string, defaultSource: string = SOURCE_ANY): { source: string; key: string } {
  if (raw.startsWith('$')) return { source: SOURCE_RESERVED, key: raw.slice(1) };
  const i = raw.indexOf(':');
  if (i <= 0) return { source: defaultSource, key: i === 0 ? raw.slice(1) : raw };
  return { source: raw.slice(0, i), key: raw.slice(i + 1) };
}

/** Parses `source:key=value` (or `key=value`, `$host`) into a Label. */
export function parseLabel(raw: string, defaultSource: string = SOURCE_ANY): Label {
  const eq = raw.indexOf('=');
  const k = eq < 0 ? raw : raw.slice(0, eq);
  const value = eq < 0 ? '' : raw.slice(eq + 1);
  const { source, key } = parseKey(k, defaultSource);
  return { source, key, value };
}

/**
 * An immutable, sorted set of labels with a stable string key (equal sets ⇒ equal keys), indexed
 * by key for selector matching. One key may appear with several sources.
 */
export class LabelSet {
  readonly labels: readonly Label[];
  /** Stable identity of the set: sorted `source:key=value` joined by `;`. */
  readonly key: string;
  private readonly byKey: Map<string, Label[]>;

  constructor(labels: Iterable<Label>) {
    const uniq = new Map<string, Label>();
    for (const l of labels) uniq.set(`${l.source}:${l.key}`, l);
    const sorted = [...uniq.values()].sort((a, b) =>
      a.source === b.source ? cmp(a.key, b.key) : cmp(a.source, b.source),
    );
    this.labels = sorted;
    this.key = sorted.map(formatLabel).join(';');
    this.byKey = new Map();
    for (const l of sorted) {
      const list = this.byKey.get(l.key);
      if (list === undefined) this.byKey.set(l.key, [l]);
      else list.push(l);
    }
  }

  static fromStrings(raw: Iterable<string>, defaultSource: string = SOURCE_K8S): LabelSet {
    const out: Label[] = [];
    for (const r of raw) out.push(parseLabel(r, defaultSource));
    return new LabelSet(out);
  }

  /** Labels under `key` whose source fits (`any` fits every source). */
  find(source: string, key: string): Label | undefined {
    const list = this.byKey.get(key);
    if (list === undefined) return undefined;
    if (source === SOURCE_ANY) return list[0];
    for (const l of list) if (l.source === source) return l;
    return undefined;
  }

  /** All values under `key` for the source (several when `any` meets several sources). */
  values(source: string, key: string): string[] {
    const list = this.byKey.get(key);
    if (list === undefined) return [];
    const out: string[] = [];
    for (const l of list) if (source === SOURCE_ANY || l.source === source) out.push(l.value);
    return out;
  }

  has(source: string, key: string, value?: string): boolean {
    const list = this.byKey.get(key);
    if (list === undefined) return false;
    for (const l of list) {
      if (source !== SOURCE_ANY && l.source !== source) continue;
      if (value === undefined || l.value === value) return true;
    }
    return false;
  }

  toStrings(): string[] {
    return this.labels.map(formatLabel);
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
