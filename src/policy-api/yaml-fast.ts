// A fast reader for the plain subset of YAML that policy files are almost always written in: one
// document of block maps and sequences, plain scalars on one line, quoted scalars without escapes,
// `{}` and `[]`, comments. It builds the yaml package's own node classes with the same start
// offsets, values, scalar types and sources, so every later position and message is what the full
// parser gives (a node's end offset, which there takes in trailing comments, may differ: nothing
// reads it). Anything outside the subset (and anything the full parser would report) returns
// undefined: the caller then parses with the yaml package. The yaml package costs about 0.3 ms per
// small policy file here, which dominated loading a directory of thousands of files; this is
// about a tenth of that. yaml-fast.test.ts checks it against the yaml package node by node.

import { LineCounter, type Node, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';

export interface FastDocument {
  contents: Node;
  /** Offset of the document's first node (the yaml package's `doc.range[0]`). */
  start: number;
  lineCounter: LineCounter;
}

/** A line with content (blank and comment-only lines are skipped, as YAML ignores them). */
interface Line {
  /** Offset of the first non-space character. */
  s: number;
  /** End of the content (trailing spaces removed). */
  e: number;
  /** Offset after the line's newline (or the end of the text). */
  nl: number;
  indent: number;
}

/** Thrown inside the parser when the text leaves the subset; never escapes this module. */
const OUT = new Error('outside the fast subset');

/** Deepest nesting accepted (the full parser's limit check then can never fire). */
const MAX_DEPTH = 30;
/** Implicit keys longer than this are left to the full parser (YAML limits them to 1024). */
const MAX_KEY = 512;

/**
 * Parses `text` when it is one document in the fast subset; undefined otherwise (the caller then
 * uses the yaml package, which reports whatever is wrong).
 */
export function parseFastYAML(text: string): FastDocument | undefined {
  const lineCounter = new LineCounter();
  const lines: Line[] = [];
  lineCounter.addNewLine(0);
  let ls = 0;
  const n = text.length;
  while (ls < n) {
    let i = ls;
    while (i < n && text.charCodeAt(i) === 32) i++;
    let le = i;
    // printable ASCII only: tabs, CR, Unicode and control characters go to the full parser
    while (le < n) {
      const c = text.charCodeAt(le);
      if (c === 10) break;
      if (c < 32 || c > 126) return undefined;
      le++;
    }
    const nl = le < n ? le + 1 : n;
    if (le < n) lineCounter.addNewLine(nl);
    let e = le;
    while (e > i && text.charCodeAt(e - 1) === 32) e--;
    if (e > i && text.charCodeAt(i) !== 35 /* # */) {
      // directives and document markers: multi-document handling stays with the full parser
      if (i === ls) {
        const c0 = text.charCodeAt(i);
        if (c0 === 37 /* % */) return undefined;
        if ((c0 === 45 || c0 === 46) && (text.startsWith('---', i) || text.startsWith('...', i)))
          return undefined;
      }
      lines.push({ s: i, e, nl, indent: i - ls });
    }
    ls = nl;
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  try {
    const p = new FastParser(text, lines);
    const contents = p.node(lines[0]!.s, 0, 1);
    if (p.li !== lines.length) return undefined;
    return { contents, start: lines[0]!.s, lineCounter };
  } catch (e) {
    if (e === OUT) return undefined;
    throw e;
  }
}

class FastParser {
  /** The current line. */
  li = 0;

  constructor(
    private readonly t: string,
    private readonly lines: Line[],
  ) {}

  private get line(): Line {
    return this.lines[this.li]!;
  }

  /** A block map or sequence starting at `pos` on the current line (column `col`). */
  node(pos: number, col: number, depth: number): Node {
    if (depth > MAX_DEPTH) throw OUT;
    if (this.isDash(pos, this.line.e)) return this.seq(col, depth);
    if (this.keyEnd(pos, this.line.e) >= 0) return this.map(pos, col, depth);
    throw OUT; // a multi-line scalar, or no node at all
  }

  private isDash(pos: number, e: number): boolean {
    return this.t.charCodeAt(pos) === 45 && (pos + 1 === e || this.t.charCodeAt(pos + 1) === 32);
  }

  /** Offset of the key's `:` when a key starts at `pos`, else -1. */
  private keyEnd(pos: number, e: number): number {
    const t = this.t;
    const c = t.charCodeAt(pos);
    let colon: number;
    if (c === 34 || c === 39) {
      const q = t.indexOf(c === 34 ? '"' : "'", pos + 1);
      if (q < 0 || q >= e) return -1;
      if (c === 34 && t.lastIndexOf('\\', q) > pos) return -1;
      colon = q + 1;
      if (t.charCodeAt(colon) !== 58) return -1;
    } else {
      if (!plainStart(c)) return -1;
      colon = -1;
      for (let i = pos + 1; i < e; i++) {
        const d = t.charCodeAt(i);
        if (d === 58 && (i + 1 === e || t.charCodeAt(i + 1) === 32)) {
          colon = i;
          break;
        }
        if (!plainChar(d) || (d === 35 && t.charCodeAt(i - 1) === 32)) return -1;
      }
      if (colon < 0 || t.charCodeAt(colon - 1) === 32) return -1;
    }
    if (colon - pos > MAX_KEY || (colon + 1 < e && t.charCodeAt(colon + 1) !== 32)) return -1;
    return colon;
  }

  private map(first: number, col: number, depth: number): YAMLMap {
    const t = this.t;
    const m = new YAMLMap();
    const keys = new Set<string>();
    let pos = first;
    let end = first;
    for (;;) {
      const line = this.line;
      const colon = this.keyEnd(pos, line.e);
      if (colon < 0) throw OUT;
      const key = this.keyScalar(pos, colon);
      const name = String(key.value);
      if (keys.has(name) || name === '<<') throw OUT; // the full parser reports duplicates
      keys.add(name);
      let v = colon + 1;
      while (v < line.e && t.charCodeAt(v) === 32) v++;
      let value: Node;
      if (v === line.e || t.charCodeAt(v) === 35) {
        // the value is the block on the next lines: deeper, or a sequence at this column
        this.li++;
        const next = this.lines[this.li];
        if (next === undefined) throw OUT; // an empty value (null): the full parser places it
        if (next.indent > col) value = this.node(next.s, next.indent, depth + 1);
        else if (next.indent === col && this.isDash(next.s, next.e)) value = this.seq(col, depth + 1);
        else throw OUT;
      } else {
        value = this.inline(v, line);
        this.li++;
        const next = this.lines[this.li];
        if (next !== undefined && next.indent > col) throw OUT; // a continuation line
      }
      m.items.push(new Pair(key, value));
      end = (value.range as [number, number, number])[2];
      const next = this.lines[this.li];
      if (next === undefined || next.indent < col) break;
      if (next.indent > col || this.isDash(next.s, next.e)) throw OUT;
      pos = next.s;
    }
    m.range = [first, end, end];
    return m;
  }

  private seq(col: number, depth: number): YAMLSeq {
    const t = this.t;
    const s = new YAMLSeq();
    const first = this.line.s;
    let end = first;
    for (;;) {
      const line = this.line;
      if (line.indent !== col || !this.isDash(line.s, line.e)) throw OUT;
      let v = line.s + 1;
      while (v < line.e && t.charCodeAt(v) === 32) v++;
      let item: Node;
      if (v === line.e || t.charCodeAt(v) === 35) {
        this.li++;
        const next = this.lines[this.li];
        if (next === undefined || next.indent <= col) throw OUT; // an empty item
        item = this.node(next.s, next.indent, depth + 1);
      } else if (this.isDash(v, line.e)) {
        throw OUT; // `- - x`
      } else if (this.keyEnd(v, line.e) >= 0) {
        item = this.map(v, col + (v - line.s), depth + 1);
      } else {
        item = this.inline(v, line);
        this.li++;
        const next = this.lines[this.li];
        if (next !== undefined && next.indent > col) throw OUT;
      }
      s.items.push(item);
      end = (item.range as [number, number, number])[2];
      const next = this.lines[this.li];
      if (next === undefined || next.indent < col) break;
      if (next.indent > col) throw OUT;
      if (!this.isDash(next.s, next.e)) break; // the parent map's next key, at this column
    }
    s.range = [first, end, end];
    return s;
  }

  private keyScalar(pos: number, colon: number): Scalar {
    const t = this.t;
    const c = t.charCodeAt(pos);
    let k: Scalar;
    if (c === 34 || c === 39) {
      const text = t.slice(pos + 1, colon - 1);
      k = new Scalar(text);
      k.source = text;
      k.type = c === 34 ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE;
    } else {
      const text = t.slice(pos, colon);
      k = plainScalar(text);
    }
    k.range = [pos, colon, colon];
    return k;
  }

  /** A value on the key's (or dash's) line: `{}`, `[]`, a quoted or a plain scalar. */
  private inline(v: number, line: Line): Node {
    const t = this.t;
    const c = t.charCodeAt(v);
    let end: number;
    let node: Node;
    if (c === 123 || c === 91) {
      if (t.charCodeAt(v + 1) !== (c === 123 ? 125 : 93)) throw OUT;
      end = v + 2;
      const coll = c === 123 ? new YAMLMap() : new YAMLSeq();
      coll.flow = true;
      node = coll;
    } else if (c === 34 || c === 39) {
      const q = t.indexOf(c === 34 ? '"' : "'", v + 1);
      if (q < 0 || q >= line.e) throw OUT; // multi-line
      if (c === 34 && t.lastIndexOf('\\', q) > v) throw OUT; // escapes
      if (c === 39 && t.charCodeAt(q + 1) === 39) throw OUT; // '' inside
      end = q + 1;
      const text = t.slice(v + 1, q);
      const s = new Scalar(text);
      s.source = text;
      s.type = c === 34 ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE;
      node = s;
    } else {
      if (!plainStart(c)) throw OUT;
      end = line.e;
      for (let i = v + 1; i < line.e; i++) {
        const d = t.charCodeAt(i);
        if (d === 35 && t.charCodeAt(i - 1) === 32) {
          end = i;
          break;
        }
        // `a: b: c` is an error; flow indicators and quotes inside are left to the full parser
        if (!plainChar(d) || (d === 58 && (i + 1 === line.e || t.charCodeAt(i + 1) === 32))) throw OUT;
      }
      while (t.charCodeAt(end - 1) === 32) end--;
      node = plainScalar(t.slice(v, end));
    }
    // after the value: nothing, or a comment after a space
    let r = end;
    while (r < line.e && t.charCodeAt(r) === 32) r++;
    if (r < line.e && !(t.charCodeAt(r) === 35 && r > end)) throw OUT;
    node.range = [v, end, line.nl];
    return node;
  }
}

/** First character of a plain scalar this reader takes: a letter, a digit, `_`, `/`, `$`, `^`
 *  (never an indicator, nor `.`, `+`, `-`, `~`, which may start numbers and nulls). */
function plainStart(c: number): boolean {
  if (c >= 48 && c <= 57) return true; // digits
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122)) return true;
  return c === 95 /* _ */ || c === 47 /* / */ || c === 36 /* $ */ || c === 94; /* ^ */
}

/** Characters inside a plain scalar this reader takes (no flow indicators, quotes or backslash). */
function plainChar(c: number): boolean {
  return !(
    c === 44 ||
    c === 91 ||
    c === 93 ||
    c === 123 ||
    c === 125 ||
    c === 34 ||
    c === 39 ||
    c === 92 ||
    c === 96
  );
}

const DEC_INT = /^(?:0|[1-9][0-9]{0,14})$/;
/** What YAML 1.2's core schema could read as a number other than a short decimal integer. */
const OTHER_NUMBER = /^(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|0x[0-9a-fA-F]+|0o[0-7]+)$/;

/** A plain scalar resolved as YAML 1.2's core schema does, for the values this reader takes. */
function plainScalar(text: string): Scalar {
  let value: unknown = text;
  switch (text) {
    case 'null':
    case 'Null':
    case 'NULL':
      value = null;
      break;
    case 'true':
    case 'True':
    case 'TRUE':
      value = true;
      break;
    case 'false':
    case 'False':
    case 'FALSE':
      value = false;
      break;
    default: {
      const c = text.charCodeAt(0);
      if (c >= 48 && c <= 57) {
        if (DEC_INT.test(text)) value = Number(text);
        else if (OTHER_NUMBER.test(text)) throw OUT;
      }
    }
  }
  const s = new Scalar(value);
  s.source = text;
  s.type = Scalar.PLAIN;
  return s;
}
