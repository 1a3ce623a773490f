// A Cursor walks one YAML node with its JSON path and reports issues at its source position.
// Every decoder in Seawall (policies, PolicyTest files) reads YAML through it, so that every
// issue names file:line:column and the path of the field.

import { isAlias, isMap, isScalar, isSeq, type LineCounter, type Node, Scalar, type YAMLMap } from 'yaml';
import { setEntry } from '../core/plain.ts';
import { type Issue, joinPath, type Severity, type SourcePos } from './issue.ts';

export interface DocSource {
  file: string;
  lineCounter: LineCounter;
  /** Position used when a node has no range. */
  fallback: SourcePos;
}

export class Cursor {
  constructor(
    readonly src: DocSource,
    readonly node: Node | null | undefined,
    readonly path: readonly (string | number)[],
    readonly issues: Issue[],
    /** Where the key of this node stands (for "missing field" and unknown-field reports). */
    readonly keyNode?: Node | null,
  ) {}

  get pathString(): string {
    return joinPath(this.path);
  }

  /** Position of the node's value (or of its key when asked, or of the parent). */
  pos(ofKey = false): SourcePos {
    const n = ofKey && this.keyNode ? this.keyNode : (this.node ?? this.keyNode);
    const offset = n?.range?.[0];
    if (offset === undefined) return this.src.fallback;
    const { line, col } = this.src.lineCounter.linePos(offset);
    return { file: this.src.file, line, column: col };
  }

  report(severity: Severity, code: string, message: string, ofKey = false): void {
    this.issues.push({ code, severity, path: this.pathString, pos: this.pos(ofKey), message });
  }

  error(code: string, message: string, ofKey = false): void {
    this.report('error', code, message, ofKey);
  }

  warn(code: string, message: string, ofKey = false): void {
    this.report('warning', code, message, ofKey);
  }

  get isNull(): boolean {
    return this.node == null || (isScalar(this.node) && this.node.value === null);
  }
  get isMap(): boolean {
    return isMap(this.node);
  }
  get isSeq(): boolean {
    return isSeq(this.node);
  }
  get isScalar(): boolean {
    return isScalar(this.node);
  }

  /** The plain JS value of the node (for free-form fields). */
  toJS(): unknown {
    if (this.node == null) return undefined;
    return (this.node as Node).toJSON();
  }

  /** Keys of a map, with their cursors, in source order. Non-string keys are reported. */
  entries(): Array<[string, Cursor]> {
    if (!isMap(this.node)) return [];
    const out: Array<[string, Cursor]> = [];
    for (const pair of (this.node as YAMLMap).items) {
      const k = pair.key as Node | null;
      const key = isScalar(k) ? String(k.value) : undefined;
      if (key === undefined) {
        new Cursor(this.src, k, this.path, this.issues, k).error('invalid-key', 'map keys must be strings');
        continue;
      }
      out.push([key, new Cursor(this.src, pair.value as Node | null, [...this.path, key], this.issues, k)]);
    }
    return out;
  }

  /** The cursor of one field of a map; undefined when the field is absent. */
  field(name: string): Cursor | undefined {
    if (!isMap(this.node)) return undefined;
    for (const pair of (this.node as YAMLMap).items) {
      const k = pair.key as Node | null;
      if (isScalar(k) && String(k.value) === name) {
        return new Cursor(this.src, pair.value as Node | null, [...this.path, name], this.issues, k);
      }
    }
    return undefined;
  }

  /** Items of a sequence with their cursors. */
  items(): Cursor[] {
    if (!isSeq(this.node)) return [];
    return this.node.items.map(
      (n, i) => new Cursor(this.src, n as Node | null, [...this.path, i], this.issues, n as Node | null),
    );
  }

  /** Scalar value, or undefined for non-scalars. */
  scalar(): unknown {
    return isScalar(this.node) ? (this.node as Scalar).value : undefined;
  }

  /** True when the scalar was written in quotes (so `"80"` and `80` can be told apart). */
  get quoted(): boolean {
    return (
      isScalar(this.node) &&
      ((this.node as Scalar).type === Scalar.QUOTE_DOUBLE ||
        (this.node as Scalar).type === Scalar.QUOTE_SINGLE)
    );
  }

  // ------------------------------------------------------------ typed readers (report on mismatch)

  expectMap(): boolean {
    if (isMap(this.node)) return true;
    this.error('wrong-type', `${this.pathString || 'document'} must be an object, not ${this.describe()}`);
    return false;
  }

  expectSeq(): boolean {
    if (isSeq(this.node)) return true;
    this.error('wrong-type', `${this.pathString} must be a list, not ${this.describe()}`);
    return false;
  }

  string(): string | undefined {
    const v = this.scalar();
    if (typeof v === 'string') return v;
    if (isScalar(this.node) && (typeof v === 'number' || typeof v === 'boolean') && v !== null) {
      // YAML reads `80` and `true` as non-strings; Kubernetes would reject them for string fields.
      // Messages quote what was written (`0x1F`, `1e400`), never the value YAML made of it.
      const src = this.sourceText();
      const bad = typeof v === 'number' ? numberProblem(v, src) : undefined;
      this.error(
        'wrong-type',
        bad
          ? `${this.pathString}: ${src} is not a number Kubernetes accepts: ${bad}; this field takes a string`
          : `${this.pathString} must be a string: YAML reads the unquoted ${src} as a ${typeof v}; write it in quotes: "${src}"`,
      );
      return undefined;
    }
    this.error('wrong-type', `${this.pathString} must be a string, not ${this.describe()}`);
    return undefined;
  }

  /** A string field that Kubernetes would also accept written as a number (int-or-string). */
  intOrString(): string | number | undefined {
    const v = this.scalar();
    if (typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v))) return v;
    this.error('wrong-type', `${this.pathString} must be a number or a string, not ${this.describe()}`);
    return undefined;
  }

  integer(): number | undefined {
    const v = this.scalar();
    // Not an unsafe integer either: 12345678901234567890 would be checked (and shown) as …7000.
    if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
    this.error('wrong-type', `${this.pathString} must be an integer, not ${this.describe()}`);
    return undefined;
  }

  boolean(): boolean | undefined {
    const v = this.scalar();
    if (typeof v === 'boolean') return v;
    this.error('wrong-type', `${this.pathString} must be true or false, not ${this.describe()}`);
    return undefined;
  }

  stringList(): string[] | undefined {
    if (!this.expectSeq()) return undefined;
    const out: string[] = [];
    for (const item of this.items()) {
      const s = item.string();
      if (s !== undefined) out.push(s);
    }
    return out;
  }

  stringMap(): Record<string, string> | undefined {
    if (!this.expectMap()) return undefined;
    const out: Record<string, string> = {};
    for (const [k, c] of this.entries()) {
      const v = c.scalar();
      // Label values like `true` or `8080` are strings to Kubernetes only when quoted.
      if (typeof v === 'string') setEntry(out, k, v);
      else if (v === null && c.node != null) setEntry(out, k, '');
      else c.string();
    }
    return out;
  }

  /** A scalar as written in the file (`0x1F`, `1e400`, `.inf`), else its value as text. */
  sourceText(): string {
    const n = this.node;
    if (isScalar(n) && typeof n.source === 'string' && n.source !== '') {
      return n.source.length > 40 ? `${n.source.slice(0, 40)}…` : n.source;
    }
    return String(this.scalar());
  }

  describe(): string {
    if (this.node == null) return 'nothing';
    if (isMap(this.node)) return 'an object';
    if (isSeq(this.node)) return 'a list';
    if (isAlias(this.node)) return `the YAML alias *${this.node.source}`;
    const v = this.scalar();
    if (v === null) return 'null';
    if (typeof v === 'string')
      return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    if (typeof v === 'number') {
      const src = this.sourceText();
      const bad = numberProblem(v, src);
      return `the number ${src}${bad ? `, which is not a number Kubernetes accepts: ${bad}` : ''}`;
    }
    if (typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${this.sourceText()}`;
    // A tagged scalar (`!!binary`, `!!timestamp`…): its text may be bytes unfit for a terminal.
    const tag = (this.node as Scalar).tag;
    return tag ? `a ${tag.replace('tag:yaml.org,2002:', '!!')} value` : 'a value of another type';
  }
}

/**
 * Why a YAML number is no number Kubernetes (Go's JSON decoding) accepts, or undefined when it is
 * an ordinary one: infinities and NaN have no JSON form; 1e400 is beyond float64; a long integer
 * silently loses digits.
 */
export function numberProblem(v: number, src: string): string | undefined {
  if (Number.isNaN(v)) return 'YAML reads it as NaN, which JSON has no number for';
  if (!Number.isFinite(v)) {
    return /inf/i.test(src)
      ? 'YAML reads it as infinity, which JSON has no number for'
      : 'it is beyond the range of every JSON number type, whose largest is about 1.8e308';
  }
  if (Number.isInteger(v) && !Number.isSafeInteger(v)) {
    return `it has more digits than a number keeps exactly and would read as ${v}`;
  }
  return undefined;
}

// ---------------------------------------------------------------- unknown fields

/** Reports every key of `c` not in `known`, with a did-you-mean when one is close. */
export function checkKnownFields(c: Cursor, known: readonly string[], what: string): void {
  for (const [key, child] of c.entries()) {
    if (!known.includes(key)) reportUnknownField(child, key, known, what);
  }
}

/** One unknown key, at the key; `note` says what the mistake costs in the format at hand. */
export function reportUnknownField(
  child: Cursor,
  key: string,
  known: readonly string[],
  what: string,
  note = '',
): void {
  const guess = closest(key, known);
  const hint = guess ? ` Did you mean "${guess}"?` : ` Known fields: ${known.join(', ')}.`;
  child.error('unknown-field', `unknown field "${key}" in ${what}.${hint}${note}`, true);
}

/** The known name closest to `s` (case-insensitive edit distance ≤ 1/3 of its length), if any. */
export function closest(s: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  const a = s.toLowerCase();
  for (const k of known) {
    const b = k.toLowerCase();
    let d = editDistance(a, b);
    if (b.startsWith(a) || a.startsWith(b)) d = Math.min(d, 1);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(s.length / 3)) ? best : undefined;
}

export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
