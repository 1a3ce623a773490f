// Regular expressions from policies, with RE2 semantics (linear time), as Envoy and Cilium run them.
// V8's backtracking RegExp never sees a policy's pattern: re2-wasm is Google's RE2 compiled to WASM.

import { createRequire } from 'node:module';
import { SeawallError } from './errors.ts';

interface RE2Like {
  test(s: string): boolean;
}
type RE2Ctor = new (pattern: string, flags: string) => RE2Like;

const require = createRequire(import.meta.url);
const { RE2 } = require('re2-wasm') as { RE2: RE2Ctor };

export type RegexCheck = { ok: true } | { ok: false; error: string };

/**
 * A pattern anchored to the whole value, as Envoy's safe_regex matches `:path`, `:method`,
 * `:authority` (RE2::FullMatch). The bare pattern is compiled on its own first, so that a pattern
 * such as `/public)|(` is a syntax error instead of becoming `^(?:/public)|()$`, which matches
 * everything. Only a pattern that compiled alone is wrapped: its parentheses are balanced and it
 * ends outside any escape, class or `\Q` quote (toWasmSyntax spells quotes out), so our `)`
 * closes our group.
 */
export class FullMatchRegex {
  private readonly re: RE2Like;
  constructor(readonly source: string) {
    const pattern = toWasmSyntax(source);
    new RE2(pattern, 'u'); // throws for bad syntax, before anything is added to the pattern
    this.re = new RE2(`^(?:${pattern})$`, 'u');
  }
  test(value: string): boolean {
    return this.re.test(value);
  }
}

/**
 * re2-wasm takes JavaScript syntax and rewrites it for RE2: `/` becomes `\/`, `\uXXXX` and `\cX`
 * become `\x{…}`. Outside a quote that is harmless, but inside RE2's `\Q…\E` it changes the
 * literal (`\Q/a\E` would match `\/a`), and `\u`/`\c` are escapes RE2 and Go refuse. So the
 * pattern handed to re2-wasm has no quotes (each quoted character is written as an escaped
 * literal; an unterminated `\Q` quotes to the end, as in RE2) and `\u`/`\c` are refused here.
 */
function toWasmSyntax(p: string): string {
  let out = '';
  let i = 0;
  while (i < p.length) {
    const c = p[i]!;
    if (c === '\\') {
      const d = p[i + 1];
      if (d === 'Q') {
        const end = p.indexOf('\\E', i + 2);
        const lit = end < 0 ? p.slice(i + 2) : p.slice(i + 2, end);
        for (const ch of lit) out += /[\x21-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7e]/.test(ch) ? `\\${ch}` : ch;
        i = end < 0 ? p.length : end + 2;
        continue;
      }
      if (d === 'u' || d === 'c') throw new Error(`invalid escape sequence: \\${d}`);
      const next = skipEscape(p, i);
      out += p.slice(i, next);
      i = next;
      continue;
    }
    if (c === '[') {
      const next = skipClass(p, i);
      const cls = p.slice(i, next);
      if (/\\[uc]/.test(cls.replaceAll('\\\\', '')))
        throw new Error('invalid escape sequence in character class');
      out += cls;
      i = next;
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

const cache = new Map<string, FullMatchRegex | Error>();

/** Compiles (once, cached) a whole-value RE2 matcher; throws a typed error for bad syntax. */
export function fullMatchRegex(source: string): FullMatchRegex {
  let hit = cache.get(source);
  if (hit === undefined) {
    try {
      hit = new FullMatchRegex(source);
    } catch (e) {
      hit = new RegexSyntaxError(source, cleanMessage((e as Error).message, source));
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(source, hit);
  }
  if (hit instanceof Error) throw hit;
  return hit;
}

/** Checks a pattern with RE2's syntax rules (what Envoy's RE2 accepts). */
export function checkRegex(source: string): RegexCheck {
  try {
    fullMatchRegex(source);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as RegexSyntaxError).reason ?? (e as Error).message };
  }
}

/** Go's regexp refuses a parse tree higher than this (regexp/syntax maxHeight). */
export const GO_MAX_HEIGHT = 1000;

/**
 * Checks a pattern as Go's `regexp.Compile` does, which Cilium's agent runs on HTTP `path` and
 * `method`: RE2's syntax, minus what Go refuses although RE2 (and re2-wasm) accepts it: `\C` (any
 * byte) and trees nested deeper than 1000. Depth counts capture groups only, a lower bound of Go's
 * tree height, so no pattern Go accepts is refused here.
 */
export function checkGoRegex(source: string): RegexCheck {
  const re2 = checkRegex(source);
  if (!re2.ok) return re2;
  const s = scan(source);
  if (s.anyByte)
    return { ok: false, error: "invalid escape sequence: `\\C` (Go's regexp has no any-byte escape)" };
  if (s.captureDepth + 1 > GO_MAX_HEIGHT) {
    return {
      ok: false,
      error: `expression nests too deeply: ${s.captureDepth} nested groups (Go's regexp refuses a parse tree deeper than ${GO_MAX_HEIGHT})`,
    };
  }
  return { ok: true };
}

interface Scan {
  /** `\C` outside a quote. */
  anyByte: boolean;
  /** Deepest nesting of capturing groups. */
  captureDepth: number;
}

/**
 * A lexer for patterns RE2 has already accepted (so escapes are complete and brackets balance):
 * passes over `\Q…\E` quotes and character classes, and tracks group nesting.
 */
function scan(p: string): Scan {
  const out: Scan = { anyByte: false, captureDepth: 0 };
  const groups: boolean[] = []; // capturing?
  let depth = 0;
  let i = 0;
  const n = p.length;
  while (i < n) {
    const c = p[i]!;
    if (c === '\\') {
      const d = p[i + 1];
      if (d === 'Q') {
        const end = p.indexOf('\\E', i + 2);
        if (end < 0) return out; // quoted to the end
        i = end + 2;
        continue;
      }
      if (d === 'C') out.anyByte = true;
      i = skipEscape(p, i);
      continue;
    }
    if (c === '[') {
      i = skipClass(p, i);
      continue;
    }
    if (c === '(') {
      // `(?flags)` and `(?:…)` do not capture; `(?P<name>…)` and `(?<name>…)` do.
      const capturing = p[i + 1] !== '?' || p[i + 2] === 'P' || p[i + 2] === '<';
      groups.push(capturing);
      if (capturing) depth++;
      if (depth > out.captureDepth) out.captureDepth = depth;
      i++;
      continue;
    }
    if (c === ')') {
      if (groups.pop()) depth--;
      i++;
      continue;
    }
    i++;
  }
  return out;
}

/** Index after the escape at i (`\x`, `\x{…}`, `\p{…}`, `\pN`). */
function skipEscape(p: string, i: number): number {
  const d = p[i + 1];
  if ((d === 'x' || d === 'p' || d === 'P') && p[i + 2] === '{') {
    const end = p.indexOf('}', i + 3);
    return end < 0 ? p.length : end + 1;
  }
  if (d === 'p' || d === 'P') return i + 3;
  return i + 2;
}

/** Index after the character class opening at i: `[^]a]`, `[[:alpha:]]`, `[\]]`. */
function skipClass(p: string, i: number): number {
  let j = i + 1;
  if (p[j] === '^') j++;
  if (p[j] === ']') j++; // a leading `]` is a literal
  while (j < p.length) {
    const c = p[j]!;
    if (c === '\\') {
      j = skipEscape(p, j);
      continue;
    }
    if (c === '[' && p[j + 1] === ':') {
      const end = p.indexOf(':]', j + 2);
      if (end >= 0) {
        j = end + 2;
        continue;
      }
    }
    if (c === ']') return j + 1;
    j++;
  }
  return j;
}

export class RegexSyntaxError extends SeawallError<'invalid-regex'> {
  override name = 'RegexSyntaxError';
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super('invalid-regex', `invalid RE2 regular expression ${JSON.stringify(pattern)}: ${reason}`);
  }
}

function cleanMessage(m: string, source: string): string {
  // re2-wasm reports "Invalid regular expression: /pattern/u: reason" (with `/` escaped); keep the reason.
  const prefix = `Invalid regular expression: /${source.replaceAll('/', '\\/')}/u: `;
  const at = m.indexOf('/u: ');
  const reason = m.startsWith(prefix) ? m.slice(prefix.length) : at >= 0 ? m.slice(at + 4) : m;
  return reason.replaceAll('\\/', '/');
}
