// Compact records' shapes, at both ends of a proxy's record channel (http/, dns/ compact.ts). A
// proxy announces a shape (its definition line) before the first record that uses it, and again
// once records were lost (the announcement may have been among them) or a new epoch began: an
// epoch holds at most `maxAnnounced` announcements. The agent keeps the shapes used last, at
// least twice that many, so the shape of a record in flight is never the one it evicted: every
// shape in use was announced at most `maxAnnounced` announcements ago. The agent copies a shape's
// endpoints into each record it expands (copyJSON: about half the cost of parsing their text).

/** A shape as the proxy keeps it: its id, its announcement line, the epoch it last went in. */
export interface AnnouncedShape {
  id: number;
  def: string;
  epoch: number;
}

/** The proxy's side: when a shape must be announced (again). */
export class ShapeAnnouncer {
  private epoch = 0;
  /** Announcements in this epoch. */
  private announced = 0;

  constructor(private readonly maxAnnounced: number) {}

  /** Records were lost on the way (the channel was full): every shape goes again. */
  lost(): void {
    this.epoch++;
    this.announced = 0;
  }

  /** The shape's announcement when it must go ahead of this record, else ''. */
  prefix(s: AnnouncedShape): string {
    if (s.epoch === this.epoch) return '';
    if (this.announced >= this.maxAnnounced) {
      this.epoch++;
      this.announced = 0;
    }
    this.announced++;
    s.epoch = this.epoch;
    return s.def;
  }
}

/** The agent's side, per proxy process: shapes by id, the least recently used out first. */
export class ShapeTable<T> {
  private readonly shapes = new Map<number, T>();

  constructor(private readonly max: number) {}

  set(id: number, shape: T): void {
    this.shapes.delete(id);
    if (this.shapes.size >= this.max) this.shapes.delete(this.shapes.keys().next().value!);
    this.shapes.set(id, shape);
  }

  /** The shape, now the most recently used; undefined when it never came (lost with its batch). */
  get(id: number): T | undefined {
    const s = this.shapes.get(id);
    if (s === undefined) return undefined;
    this.shapes.delete(id);
    this.shapes.set(id, s);
    return s;
  }

  get size(): number {
    return this.shapes.size;
  }
}

/** A deep copy of a JSON value (objects, arrays, primitives), as JSON.parse of its text gives it. */
export function copyJSON<T>(v: T): T {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    for (const x of v) out.push(copyJSON(x));
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = copyJSON((v as Record<string, unknown>)[k]);
    // JSON.parse makes "__proto__" an own key; an assignment would set the prototype
    if (k === '__proto__')
      Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    else out[k] = x;
  }
  return out as T;
}

/**
 * JSON.stringify(s), byte for byte: printable ASCII without `"` or `\` is quoted as it is (most
 * methods, paths and header values), anything else goes to JSON.stringify. A record line has three
 * to six strings; the scan costs a fifth of JSON.stringify's call on a short one.
 */
export function jsonString(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(s);
  }
  return `"${s}"`;
}

/** JSON.stringify of name/value pairs (headers), byte for byte. */
export function jsonPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = '[';
  for (let i = 0; i < pairs.length; i++) {
    const p = pairs[i]!;
    out += `${i === 0 ? '' : ','}[${jsonString(p[0])},${jsonString(p[1])}]`;
  }
  return `${out}]`;
}

/** JSON's number text (JSON.stringify's: NaN and infinities are null), for record lines. */
export function jsonNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}
