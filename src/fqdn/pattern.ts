// FQDN names and patterns (toFQDNs and DNS L7 rules), cilium-semantics.md §12.
// Names arrive from the network, so matching is a hand-written label matcher: no RegExp, linear in
// the name for a given pattern, and nothing a query can do makes it slower. Which names and
// patterns are valid, and how names are normalised, is name.ts's one rule.

import { isLabelChar, normalizeName, validMatchName, validMatchPattern } from './name.ts';

export { MAX_FQDN_LENGTH, normalizeName, validMatchName, validMatchPattern } from './name.ts';

/** The two fields of a toFQDNs selector or a DNS rule that name names (policy-api's FQDNSelector). */
export interface FQDNSelector {
  matchName?: string | undefined;
  matchPattern?: string | undefined;
}

/** A compiled name test. Input may be any string; it is normalised inside. */
export type NameMatcher = (name: string) => boolean;

const CH_DOT = 46;
const CH_STAR = 42;

/** A pattern made only of `*`, optionally with one trailing dot: matches every well-formed name. */
export function isWildcardOnly(pattern: string): boolean {
  let end = pattern.length;
  if (end > 0 && pattern.charCodeAt(end - 1) === CH_DOT) end--;
  if (end === 0) return false;
  for (let i = 0; i < end; i++) if (pattern.charCodeAt(i) !== CH_STAR) return false;
  return true;
}

/** Every label non-empty and of label chars, or the root `.` (what Cilium's match-all regex admits). */
function isWellFormedName(fqdn: string): boolean {
  if (fqdn === '.') return true;
  let labelLen = 0;
  for (let i = 0; i < fqdn.length; i++) {
    const c = fqdn.charCodeAt(i);
    if (c === CH_DOT) {
      if (labelLen === 0) return false;
      labelLen = 0;
    } else if (isLabelChar(c)) labelLen++;
    else return false;
  }
  return labelLen === 0; // ends with a dot
}

/** One label of a pattern: literal pieces between `*` runs. */
interface LabelPattern {
  /** Literal text when the label has no `*`. */
  literal?: string;
  /** Pieces split at `*` runs; first and last may be empty. Present when the label has a `*`. */
  pieces?: string[];
}

function compileLabel(label: string): LabelPattern {
  if (label.indexOf('*') < 0) return { literal: label };
  const pieces: string[] = [];
  let cur = '';
  let prevStar = false;
  for (let i = 0; i < label.length; i++) {
    const ch = label[i]!;
    if (ch === '*') {
      if (!prevStar) pieces.push(cur); // runs of `*` collapse to one
      cur = '';
      prevStar = true;
    } else {
      cur += ch;
      prevStar = false;
    }
  }
  pieces.push(cur);
  return { pieces };
}

/** Glob over one name label where `*` stands for `[-a-z0-9_]*`. */
function matchLabel(p: LabelPattern, label: string): boolean {
  if (p.literal !== undefined) return p.literal === label;
  // Literal pieces hold only label chars (validated), so a label with any other char cannot match.
  for (let i = 0; i < label.length; i++) if (!isLabelChar(label.charCodeAt(i))) return false;
  const pieces = p.pieces!;
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (label.length < first.length + last.length) return false;
  if (!label.startsWith(first) || !label.endsWith(last)) return false;
  // Middle pieces: leftmost placement is optimal for a glob with one kind of star.
  let pos = first.length;
  const end = label.length - last.length;
  for (let k = 1; k < pieces.length - 1; k++) {
    const piece = pieces[k]!;
    const at = label.indexOf(piece, pos);
    if (at < 0 || at + piece.length > end) return false;
    pos = at + piece.length;
  }
  return true;
}

/** Splits a fully qualified name into labels, without the empty root label. */
function labelsOf(fqdn: string): string[] {
  return fqdn === '.' ? [] : fqdn.slice(0, -1).split('.');
}

const never: NameMatcher = () => false;

/**
 * Compiles a matchPattern. Invalid patterns (bad chars, empty labels, too long) never match: callers validate
 * with validMatchPattern and report; the matcher itself fails closed.
 */
export function compileMatchPattern(pattern: string): NameMatcher {
  if (!validMatchPattern(pattern)) return never;
  if (isWildcardOnly(pattern)) return (name) => isWellFormedName(normalizeName(name));
  let p = normalizeName(pattern);
  // `**.` (two or more stars, then a dot) as a prefix: one or more whole labels.
  let leadingStars = 0;
  while (p.charCodeAt(leadingStars) === CH_STAR) leadingStars++;
  const subdomains = leadingStars >= 2 && p.charCodeAt(leadingStars) === CH_DOT;
  if (subdomains) p = p.slice(leadingStars + 1);
  const rest = labelsOf(p).map(compileLabel);
  return (name) => {
    const labels = labelsOf(normalizeName(name));
    const extra = labels.length - rest.length;
    if (subdomains ? extra < 1 : extra !== 0) return false;
    for (let i = 0; i < rest.length; i++) if (!matchLabel(rest[i]!, labels[extra + i]!)) return false;
    for (let i = 0; i < extra; i++) {
      const l = labels[i]!;
      if (l.length === 0) return false;
      for (let j = 0; j < l.length; j++) if (!isLabelChar(l.charCodeAt(j))) return false;
    }
    return true;
  };
}

/** Compiles a matchName: exact, case-insensitive, trailing dot optional. */
export function compileMatchName(matchName: string): NameMatcher {
  if (!validMatchName(matchName)) return never;
  const want = normalizeName(matchName);
  return (name) => normalizeName(name) === want;
}

/**
 * Compiles one toFQDNs entry (or DNS rule: same shape). Exactly one of matchName/matchPattern must
 * be set; anything else is invalid and never matches (fail closed).
 */
export function compileFQDNSelector(sel: Pick<FQDNSelector, 'matchName' | 'matchPattern'>): NameMatcher {
  const hasName = sel.matchName !== undefined && sel.matchName !== '';
  const hasPattern = sel.matchPattern !== undefined && sel.matchPattern !== '';
  if (hasName === hasPattern) return never;
  return hasName ? compileMatchName(sel.matchName!) : compileMatchPattern(sel.matchPattern!);
}

/** Stable text key of a selector (for maps and for FQDNSelectorCache registration). */
export function fqdnSelectorKey(sel: Pick<FQDNSelector, 'matchName' | 'matchPattern'>): string {
  const hasName = sel.matchName !== undefined && sel.matchName !== '';
  const hasPattern = sel.matchPattern !== undefined && sel.matchPattern !== '';
  if (hasName && !hasPattern) return `matchName:${normalizeName(sel.matchName!)}`;
  if (hasPattern && !hasName) {
    const p = isWildcardOnly(sel.matchPattern!) ? '*' : normalizeName(sel.matchPattern!);
    return `matchPattern:${p}`;
  }
  return `invalid:${JSON.stringify([sel.matchName ?? null, sel.matchPattern ?? null])}`;
}
