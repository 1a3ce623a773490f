// Request-target handling as Cilium configures Envoy's HTTP connection manager by default
// (cilium-agent --http-normalize-path=true): normalize_path (RFC 3986 §6 normalisation with
// §5.2.4 dot-segment removal), merge_slashes, and path_with_escaped_slashes_action
// UNESCAPE_AND_REDIRECT. Envoy's order (ConnectionManagerUtility::maybeNormalizePath): escaped
// slashes are unescaped first (and remembered, for the redirect), then the path is normalised,
// then slashes merged; the query string is never touched. Rules match the result, and the result
// is what upstream receives, so the proxy and the server always see the same path.

export type TargetResult =
  | {
      ok: true;
      /** Normalised path with the query string (what rules match and upstream receives). */
      path: string;
      /** `%2F`/`%5C` were unescaped: Envoy answers 307 to `path` instead of forwarding. */
      redirect: boolean;
      /** Absolute-form targets carry the authority, which replaces Host (RFC 9112 §3.2.2). */
      authority?: string;
    }
  | { ok: false; error: string };

const HEX = '0123456789ABCDEF';

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~" (decoded when percent-encoded). */
function unreserved(c: number): boolean {
  return (
    (c >= 65 && c <= 90) ||
    (c >= 97 && c <= 122) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  );
}

/** pchar minus pct-encoded, plus "/": kept as they are; anything else is percent-encoded. */
const KEEP = new Set("!$&'()*+,;=:@/".split('').map((c) => c.charCodeAt(0)));

function escapeByte(b: number): string {
  return `%${HEX[b >> 4]}${HEX[b & 15]}`;
}

/**
 * RFC 3986 §6.2.2 on the path alone: percent-encoded unreserved characters decoded, the other
 * escapes upper-cased, characters that may not appear in a path encoded, `\` read as `/` (as
 * Chromium's URL canonicaliser, which Envoy's normalize_path uses, does for http URLs), then
 * `.` and `..` segments removed. A `%` without two hex digits cannot be normalised.
 */
export function canonicalPath(path: string): string | { error: string } {
  // Most paths are already canonical: the loop below would copy them a character at a time (a
  // string per character) to the same result.
  return alreadyCanonical(path) ? path : canonicalPathByChar(path);
}

/** @internal canonicalPath without its shortcut (tests compare the two). */
export function canonicalPathByChar(path: string): string | { error: string } {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */) {
      const h = hexVal(path.charCodeAt(i + 1));
      const l = hexVal(path.charCodeAt(i + 2));
      if (h < 0 || l < 0) return { error: `invalid percent-encoding at offset ${i}` };
      const b = h * 16 + l;
      out += unreserved(b) ? String.fromCharCode(b) : escapeByte(b);
      i += 2;
    } else if (c === 92 /* \ */) {
      out += '/';
    } else if (unreserved(c) || KEEP.has(c)) {
      out += path[i];
    } else if (c < 0x80) {
      out += escapeByte(c);
    } else {
      // Non-ASCII (only reachable when a parser passed it through): its UTF-8 bytes, encoded.
      const cp = path.codePointAt(i)!;
      if (cp > 0xffff) i++;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += escapeByte(b);
    }
  }
  return removeDotSegments(out);
}

/** Characters canonicalPath keeps as they are: unreserved and KEEP. */
const KEPT = new Uint8Array(128);
for (let c = 0; c < 128; c++) if (unreserved(c) || KEEP.has(c)) KEPT[c] = 1;

/**
 * True when canonicalPath would return `path` unchanged: it starts with `/`, holds only characters
 * kept as they are (no `%`, no `\`, nothing non-ASCII) and no `/.`, so no dot segment.
 */
function alreadyCanonical(path: string): boolean {
  if (path.charCodeAt(0) !== 47) return false;
  for (let i = 1; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128 || KEPT[c] === 0) return false;
    if (c === 46 && path.charCodeAt(i - 1) === 47) return false;
  }
  return true;
}

/** RFC 3986 §5.2.4 on an absolute path: `..` never climbs above the root. */
export function removeDotSegments(path: string): string {
  const segs = path.split('/');
  // segs[0] is '' (the path starts with '/').
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // A trailing dot segment leaves a directory: `/a/b/..` is `/a/`.
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

export function mergeSlashes(path: string): string {
  return path.replace(/\/{2,}/g, '/');
}

const HAS_ESCAPED_SLASH = /%(?:2f|5c)/i;
const ESCAPED_SLASHES = /%(?:2f|5c)/gi;

/** Origin-form path (query included) → what Envoy with Cilium's defaults matches and forwards. */
export function normalizeOriginForm(target: string): TargetResult {
  if (target.includes('#')) return { ok: false, error: 'a request target may not carry a fragment' };
  if (!target.startsWith('/')) return { ok: false, error: 'the request target is not an absolute path' };
  const q = target.indexOf('?');
  let path = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  let redirect = false;
  if (HAS_ESCAPED_SLASH.test(path)) {
    path = path.replace(ESCAPED_SLASHES, (m) => (m[2] === 'f' || m[2] === 'F' ? '/' : '\\'));
    redirect = true;
  }
  const canon = canonicalPath(path);
  if (typeof canon !== 'string') return { ok: false, error: canon.error };
  // Nothing changed (the usual case): the target as it came, without re-joining it.
  if (canon === path && !redirect && !path.includes('//')) return { ok: true, path: target, redirect };
  return { ok: true, path: mergeSlashes(canon) + query, redirect };
}

/**
 * Any request target of HTTP/1.1 (RFC 9112 §3.2): origin-form, absolute-form (`http://` only; the
 * proxy is transparent, so another scheme is a client error) and `*` for OPTIONS. CONNECT's
 * authority-form never gets here (node:http hands it to the `connect` event, which closes).
 */
export function normalizeTarget(method: string, target: string): TargetResult {
  if (target === '*') {
    return method === 'OPTIONS'
      ? { ok: true, path: '*', redirect: false }
      : { ok: false, error: `"*" is only a target for OPTIONS, not ${method}` };
  }
  if (target.startsWith('/')) return normalizeOriginForm(target);
  const m = /^http:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (m === null) return { ok: false, error: 'the request target is neither a path nor an http:// URL' };
  const authority = m[1]!;
  if (authority === '' || authority.includes('@')) {
    return { ok: false, error: 'an absolute-form target needs a host and no userinfo' };
  }
  const rest = m[2] === '' || m[2]!.startsWith('?') ? `/${m[2]}` : m[2]!;
  const r = normalizeOriginForm(rest);
  return r.ok ? { ...r, authority: authority.toLowerCase() } : r;
}
