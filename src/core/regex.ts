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

/** A pattern anchored to the whole value, as Envoy's safe_regex matches `:path`, `:method`, `:authority`. */
export class FullMatchRegex {
  private readonly re: RE2Like;
  constructor(readonly source: string) {
    // Non-capturing group so that alternation at top level stays inside the anchors.
    this.re = new RE2(`^(?:${source})$`, 'u');
  }
  test(value: string): boolean {
    return this.re.test(value);
  }
}

const cache = new Map<string, FullMatchRegex | Error>();

/** Compiles (once, cached) a whole-value RE2 matcher; throws a typed error for bad syntax. */
export function fullMatchRegex(source: string): FullMatchRegex {
  let hit = cache.get(source);
  if (hit === undefined) {
    try {
      hit = new FullMatchRegex(source);
    } catch (e) {
      hit = new RegexSyntaxError(source, cleanMessage((e as Error).message));
    }
    if (cache.size > 10_000) cache.clear();
    cache.set(source, hit);
  }
  if (hit instanceof Error) throw hit;
  return hit;
}

/** Checks a pattern with RE2's syntax rules (what Go's regexp.Compile, used by Cilium, accepts). */
export function checkRegex(source: string): RegexCheck {
  try {
    fullMatchRegex(source);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
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

function cleanMessage(m: string): string {
  // re2-wasm reports "Invalid regular expression: /^(?:x)$/u: reason"; keep the reason.
  const i = m.indexOf('/u: ');
  return i >= 0 ? m.slice(i + 4) : m;
}
