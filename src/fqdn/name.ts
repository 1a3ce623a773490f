// DNS names: the one validity rule for matchName / matchPattern (and the names a PolicyTest's
// `dns` lists), and the one normalisation every comparison of names goes through
// (cilium-semantics.md §12). Pure string code: no RegExp, nothing above core/.

/** Longest matchName/matchPattern Cilium accepts. */
export const MAX_FQDN_LENGTH = 255;

/** Why a name or pattern is not valid, in the order they are checked. */
export type NameProblem = 'too-long' | 'bad-chars' | 'empty-label';

const CH_DOT = 46;
const CH_STAR = 42;

/** `[-a-zA-Z0-9_]`: what one label may hold, and what `*` may stand for. */
export function isLabelChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 45 /* - */ ||
    c === 95 /* _ */
  );
}

/**
 * Cilium's CRD rule `^([-a-zA-Z0-9_]+[.]?)+$` (with `*` for patterns), at most 255 characters:
 * labels of label chars separated by single dots, one optional trailing dot, no empty label.
 */
function check(s: string, star: boolean): NameProblem | undefined {
  if (s.length > MAX_FQDN_LENGTH) return 'too-long';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isLabelChar(c) && c !== CH_DOT && !(star && c === CH_STAR)) return 'bad-chars';
  }
  if (s.length === 0 || s.charCodeAt(0) === CH_DOT) return 'empty-label';
  for (let i = 1; i < s.length; i++) {
    if (s.charCodeAt(i) === CH_DOT && s.charCodeAt(i - 1) === CH_DOT) return 'empty-label';
  }
  return undefined;
}

/** matchName: `[-a-zA-Z0-9_.]`, no empty label, ≤ 255 chars ("Invalid characters in MatchName"). */
export function checkMatchName(s: string): NameProblem | undefined {
  return check(s, false);
}

/** matchPattern: as matchName, plus `*` ("Invalid characters in MatchPattern"). */
export function checkMatchPattern(s: string): NameProblem | undefined {
  return check(s, true);
}

export function validMatchName(s: string): boolean {
  return check(s, false) === undefined;
}

export function validMatchPattern(s: string): boolean {
  return check(s, true) === undefined;
}

/**
 * Lower-cases ASCII only and makes the name fully qualified (trailing dot).
 * ASCII-only on purpose: DNS case-folding is ASCII (RFC 4343), and Unicode folding would let e.g.
 * U+212A KELVIN SIGN turn into `k` and match a rule it should not.
 */
export function normalizeName(name: string): string {
  let out = name;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) {
      out = asciiLower(name);
      break;
    }
  }
  return out.length > 0 && out.charCodeAt(out.length - 1) === CH_DOT ? out : `${out}.`;
}

/** normalizeName without the root's trailing dot: the form names are written and shown in. */
export function bareName(name: string): string {
  return normalizeName(name).slice(0, -1);
}

function asciiLower(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}
