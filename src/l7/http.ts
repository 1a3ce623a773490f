// HTTP (and gRPC) L7 rules, cilium-semantics.md §10: what Envoy's Cilium filter decides per request.
// Fields of one rule are ANDed, rules ORed; path/method/host are whole-value RE2 matches.

import { type FullMatchRegex, fullMatchRegex } from '../core/regex.ts';
import type { HeaderMatch, PortRuleHTTP } from '../policy-api/types.ts';

export type HeaderList = Array<[string, string]> | Record<string, string>;

export interface HTTPRequest {
  method: string;
  /** The full `:path`, query string included. */
  path: string;
  /** `:authority` (Host header), including `:port` when the client sent one. */
  host?: string;
  headers: HeaderList;
}

export type HeaderActionOp = 'ADD' | 'DELETE' | 'REPLACE' | 'LOG';

/** What the proxy does to the request's headers (or logs) because of a headerMatches mismatch. */
export interface HeaderAction {
  op: HeaderActionOp;
  name: string;
  /** The value to add or set (ADD/REPLACE). Never carries a secret for LOG. */
  value?: string;
}

export interface HTTPMatch {
  allowed: boolean;
  /** The rule that admitted the request (the first, in policy order). */
  ruleIndex?: number;
  headerActions: HeaderAction[];
  reason?: string;
}

/** Resolves a Kubernetes Secret's value; undefined = not found. Namespace undefined = not given. */
export type SecretResolver = (namespace: string | undefined, name: string) => string | undefined;

export interface CompileHTTPOptions {
  secrets?: SecretResolver;
  /** Namespace of the policy, used for a secret without namespace. */
  namespace?: string;
}

/** `headers:` entry: presence (value undefined) or exact value. */
export interface HeaderCheck {
  /** Lower-case. */
  name: string;
  value?: string;
}

interface CompiledHeaderMatch {
  name: string;
  /** Undefined = presence. */
  expected?: string;
  /** Undefined = fail the rule on mismatch. */
  mismatch?: HeaderActionOp;
  /** Expected value came from a secret (kept out of LOG actions). */
  secret: boolean;
}

/** A whole-value matcher: RE2, or plain string comparison when the pattern has no metacharacters. */
export interface ValueMatcher {
  readonly source: string;
  test(value: string): boolean;
}

const RE2_META = '\\.+*?()|[]{}^$';

/**
 * Literal patterns (and alternations of literals, like `GET|HEAD`) are compared as strings, and
 * `literal.*` as a prefix: same answer as RE2, without crossing into WASM. The RE2 compile still
 * runs first, so syntax is checked.
 */
function valueMatcher(source: string): ValueMatcher {
  const re: FullMatchRegex = fullMatchRegex(source);
  // `literal.*` (the usual path prefix rule): a prefix, then anything but a newline (RE2's `.`)
  const prefix = source.endsWith('.*') ? source.slice(0, -2) : undefined;
  if (prefix !== undefined && [...prefix].every((ch) => !RE2_META.includes(ch))) {
    return { source, test: (v) => v.startsWith(prefix) && !v.includes('\n', prefix.length) };
  }
  const alts = source.split('|');
  for (const a of alts) for (const ch of a) if (RE2_META.includes(ch)) return re;
  if (alts.length === 1) return { source, test: (v) => v === source };
  const set = new Set(alts);
  return { source, test: (v) => set.has(v) };
}

export interface CompiledHTTPRule {
  index: number;
  method?: ValueMatcher;
  path?: ValueMatcher;
  host?: ValueMatcher;
  headers: HeaderCheck[];
  headerMatches: CompiledHeaderMatch[];
  /** Why this rule can never match (bad regex, missing secret, bad headerMatch): fail closed. */
  invalid?: string;
}

export interface HTTPPolicy {
  rules: CompiledHTTPRule[];
  /** Rules that could not be compiled (also marked `invalid`). */
  errors: Array<{ ruleIndex: number; message: string }>;
  /** Some rule looks at headers (so requests need a header map). */
  needsHeaders: boolean;
}

/** ASCII-only lower-casing: header names are ASCII tokens; Unicode folding could alias them. */
function asciiLower(s: string): string {
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) break;
    i++;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

/**
 * Parses a `headers:` entry as Cilium does: split at the first space; with a value, trailing `:`s
 * are dropped from the name; without one, the whole string is the name (so `"X-Foo:"` names a header
 * that cannot exist and never matches, as in Cilium).
 */
export function parseHeaderRule(s: string): HeaderCheck {
  const sp = s.indexOf(' ');
  if (sp < 0) return { name: asciiLower(s) };
  let end = sp;
  while (end > 0 && s.charCodeAt(end - 1) === 58 /* : */) end--;
  return { name: asciiLower(s.slice(0, end)), value: s.slice(sp + 1) };
}

const MISMATCH_OPS: ReadonlySet<string> = new Set(['LOG', 'ADD', 'DELETE', 'REPLACE']);

function compileHeaderMatch(
  hm: HeaderMatch,
  opts: CompileHTTPOptions,
): { ok: CompiledHeaderMatch } | { error: string } {
  if (typeof hm.name !== 'string' || hm.name === '') return { error: 'header match without name' };
  const name = asciiLower(hm.name);
  let mismatch: HeaderActionOp | undefined;
  if (hm.mismatch !== undefined && (hm.mismatch as string) !== '') {
    if (!MISMATCH_OPS.has(hm.mismatch))
      return { error: `invalid header action ${JSON.stringify(hm.mismatch)}` };
    mismatch = hm.mismatch;
  }
  const base = mismatch === undefined ? { name, secret: false } : { name, mismatch, secret: false };
  const value = hm.value ?? '';
  if (hm.secret !== undefined) {
    if (!hm.secret.name) return { error: 'secret without name' };
    const got = opts.secrets?.(hm.secret.namespace ?? opts.namespace, hm.secret.name);
    if (got !== undefined && got !== '') return { ok: { ...base, expected: got, secret: true } };
    if (value !== '') return { ok: { ...base, expected: value } };
    // A secret that exists but is empty is a presence check; a missing one never matches.
    if (got === '') return { ok: base };
    const ns = hm.secret.namespace ?? opts.namespace;
    return { error: `secret ${ns ? `${ns}/` : ''}${hm.secret.name} not available` };
  }
  return { ok: value !== '' ? { ...base, expected: value } : base };
}

function compileRule(r: PortRuleHTTP, index: number, opts: CompileHTTPOptions): CompiledHTTPRule {
  const out: CompiledHTTPRule = { index, headers: [], headerMatches: [] };
  try {
    // Absent and empty mean "any", as Cilium only emits a matcher for a non-empty field.
    if (r.method) out.method = valueMatcher(r.method);
    if (r.path) out.path = valueMatcher(r.path);
    if (r.host) out.host = valueMatcher(r.host);
  } catch (e) {
    out.invalid = (e as Error).message;
    return out;
  }
  for (const h of r.headers ?? []) out.headers.push(parseHeaderRule(h));
  for (const hm of r.headerMatches ?? []) {
    const c = compileHeaderMatch(hm, opts);
    if ('error' in c) {
      out.invalid = c.error;
      return out;
    }
    out.headerMatches.push(c.ok);
  }
  return out;
}

/** Compiles once (regexes, header rules, secrets). Bad rules are kept, marked, and never match. */
export function compileHTTPRules(rules: readonly PortRuleHTTP[], opts: CompileHTTPOptions = {}): HTTPPolicy {
  const compiled = rules.map((r, i) => compileRule(r, i, opts));
  return {
    rules: compiled,
    errors: compiled.flatMap((r) =>
      r.invalid === undefined ? [] : [{ ruleIndex: r.index, message: r.invalid }],
    ),
    needsHeaders: compiled.some((r) => r.headers.length > 0 || r.headerMatches.length > 0),
  };
}

/** True when the string is valid UTF-16 (no lone surrogates), so RE2 sees the text the client sent. */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const d = s.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** A request field as the matchers see it: undefined when absent, not a string or not well-formed. */
function matchable(value: unknown): string | undefined {
  return typeof value === 'string' && wellFormed(value) ? value : undefined;
}

/** `value` from matchable(): checked once per request, not once per rule (100 rules: 100 scans). */
function regexMatches(re: ValueMatcher | undefined, value: string | undefined): boolean {
  if (re === undefined) return true;
  return value !== undefined && re.test(value);
}

/** Request headers by lower-case name; repeated headers keep every value, in order. */
function headerMap(req: HTTPRequest): Map<string, string[]> {
  const m = new Map<string, string[]>();
  const add = (name: unknown, value: unknown) => {
    if (typeof name !== 'string' || typeof value !== 'string') return;
    const k = asciiLower(name);
    const list = m.get(k);
    if (list === undefined) m.set(k, [value]);
    else list.push(value);
  };
  const h = req.headers;
  if (Array.isArray(h)) {
    for (const pair of h) if (Array.isArray(pair)) add(pair[0], pair[1]);
  } else if (h !== null && typeof h === 'object') {
    for (const k of Object.keys(h)) add(k, h[k]);
  }
  // Pseudo-headers, as Envoy exposes them to header matchers.
  if (!m.has(':method')) add(':method', req.method);
  if (!m.has(':path')) add(':path', req.path);
  if (!m.has(':authority') && req.host !== undefined) add(':authority', req.host);
  return m;
}

/** Envoy compares a repeated header as its values joined with ','. */
function headerValue(m: Map<string, string[]>, name: string): string | undefined {
  const v = m.get(name);
  if (v === undefined) return undefined;
  return v.length === 1 ? v[0] : v.join(',');
}

type RuleOutcome = { ok: true; actions: HeaderAction[] } | { ok: false; failed: string };

/**
 * One request as the rules see it: method, path and host through matchable() once, and the
 * header map made when the first rule reads a header (most read none). An object, not a closure:
 * under tsx every named closure costs a defineProperty of its name per call.
 */
interface RequestView {
  req: HTTPRequest;
  map: Map<string, string[]> | undefined;
  method: string | undefined;
  path: string | undefined;
  host: string | undefined;
}

// The outcomes of the fields every rule checks first, shared (no object per rule per request).
const FAILED_METHOD: RuleOutcome = Object.freeze({ ok: false, failed: 'method' });
const FAILED_PATH: RuleOutcome = Object.freeze({ ok: false, failed: 'path' });
const FAILED_HOST: RuleOutcome = Object.freeze({ ok: false, failed: 'host' });

function headersOf(h: RequestView): Map<string, string[]> {
  h.map ??= headerMap(h.req);
  return h.map;
}

function evalRule(rule: CompiledHTTPRule, view: RequestView): RuleOutcome {
  if (rule.invalid !== undefined) return { ok: false, failed: `invalid (${rule.invalid})` };
  if (!regexMatches(rule.method, view.method)) return FAILED_METHOD;
  if (!regexMatches(rule.path, view.path)) return FAILED_PATH;
  if (!regexMatches(rule.host, view.host)) return FAILED_HOST;
  for (const hc of rule.headers) {
    const v = headerValue(headersOf(view), hc.name);
    if (v === undefined || (hc.value !== undefined && v !== hc.value))
      return { ok: false, failed: `header ${hc.name}` };
  }
  // Header matches with mismatch actions are looked at last, once everything else passed.
  const actions: HeaderAction[] = [];
  for (const hm of rule.headerMatches) {
    const v = headerValue(headersOf(view), hm.name);
    const matched = v !== undefined && (hm.expected === undefined || v === hm.expected);
    if (matched) continue;
    switch (hm.mismatch) {
      case undefined:
        return { ok: false, failed: `header ${hm.name}` };
      case 'LOG':
        actions.push(
          hm.expected === undefined || hm.secret
            ? { op: 'LOG', name: hm.name }
            : { op: 'LOG', name: hm.name, value: hm.expected },
        );
        break;
      case 'DELETE':
        actions.push({ op: 'DELETE', name: hm.name });
        break;
      default:
        actions.push({ op: hm.mismatch, name: hm.name, value: hm.expected ?? '' });
    }
  }
  return { ok: true, actions };
}

/** Decides one request: the first rule (in order) that matches admits it; no rules admit nothing. */
export function matchHTTP(policy: HTTPPolicy, req: HTTPRequest): HTTPMatch {
  if (req === null || typeof req !== 'object') {
    return { allowed: false, headerActions: [], reason: 'malformed HTTP request' };
  }
  if (policy.rules.length === 0) return { allowed: false, headerActions: [], reason: 'no HTTP rules' };
  const view: RequestView = {
    req,
    map: undefined,
    method: matchable(req.method),
    path: matchable(req.path),
    host: matchable(req.host),
  };
  const misses: string[] = [];
  for (const rule of policy.rules) {
    const o = evalRule(rule, view);
    if (o.ok) return { allowed: true, ruleIndex: rule.index, headerActions: o.actions };
    if (misses.length < 8) misses.push(`rule ${rule.index}: ${o.failed}`);
  }
  const more = policy.rules.length > misses.length ? '; …' : '';
  return { allowed: false, headerActions: [], reason: `no HTTP rule matched (${misses.join('; ')}${more})` };
}

/** A gRPC call as the HTTP/2 request the proxy sees: POST /pkg.Service/Method, content-type application/grpc. */
export function grpcRequest(service: string, method: string, host?: string): HTTPRequest {
  const req: HTTPRequest = {
    method: 'POST',
    path: `/${service}/${method}`,
    headers: [['content-type', 'application/grpc']],
  };
  if (host !== undefined) req.host = host;
  return req;
}
