// One request against the redirect's rule sets, with the functions offline `decide` uses
// (l7/http's compileHTTPRules and matchHTTP, through which policy/l7match runs), so live and
// offline cannot disagree. A request passes every set; as in Cilium, where a connection with L7
// rules on both sides crosses the source's egress proxy and then the destination's ingress proxy,
// the egress set is judged first and the ingress set sees the request with egress's header
// actions applied. Anything that throws is a denial, never a pass.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  compileHTTPRules,
  type HeaderAction,
  type HTTPMatch,
  type HTTPPolicy,
  type HTTPRequest,
  matchHTTP,
  type SecretResolver,
} from '../../l7/http.ts';
import type { HTTPRuleSet } from './context.ts';

export interface JudgeRequest {
  method: string;
  /** Normalised path with its query string. */
  path: string;
  /** `:authority` or Host, as sent (port included). */
  host?: string;
  /** Lower-case names, in order; repeated headers repeat. */
  headers: Array<[string, string]>;
}

export interface SetOutcome {
  set: HTTPRuleSet;
  allowed: boolean;
  ruleIndex?: number;
  reason?: string;
}

export interface Judgement {
  allowed: boolean;
  outcomes: SetOutcome[];
  /** The headers to forward: the request's, after every set's ADD/DELETE/REPLACE. */
  headers: Array<[string, string]>;
  /** headerMatches mismatches with action LOG (value kept out when it came from a secret). */
  logged: HeaderAction[];
  /** Header names some rule compares with a secret: their values stay out of records. */
  secretHeaders: ReadonlySet<string>;
  reason?: string;
}

/** `DIR/NAMESPACE/NAME` files (one trailing newline dropped); missing or unreadable = not found. */
export function secretsFromDir(dir: string): SecretResolver {
  return (namespace, name) => {
    if (namespace === undefined || !safeName(namespace) || !safeName(name)) return undefined;
    try {
      return readFileSync(join(dir, namespace, name), 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  };
}

/**
 * Every `DIR/NAMESPACE/NAME` file read now, into memory: the proxy loads its secrets as root before
 * it drops to its uid (so the directory may stay root-only), and a restarted proxy reads them
 * again. Names that are not Kubernetes object names are skipped (and listed); a missing or
 * unreadable directory is an error that says which.
 */
export function loadSecretsDir(dir: string): { resolver: SecretResolver; count: number; skipped: string[] } {
  const values = new Map<string, string>();
  const skipped: string[] = [];
  let namespaces: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    namespaces = readdirSync(dir);
  } catch (e) {
    throw new Error(`secrets directory ${dir}: ${(e as Error).message}`);
  }
  for (const ns of namespaces.sort()) {
    const nsDir = join(dir, ns);
    if (!safeName(ns) || !statSync(nsDir, { throwIfNoEntry: false })?.isDirectory()) {
      skipped.push(ns);
      continue;
    }
    for (const name of readdirSync(nsDir).sort()) {
      const file = join(nsDir, name);
      if (!safeName(name) || !statSync(file, { throwIfNoEntry: false })?.isFile()) {
        skipped.push(`${ns}/${name}`);
        continue;
      }
      try {
        values.set(`${ns}/${name}`, readFileSync(file, 'utf8').replace(/\r?\n$/, ''));
      } catch {
        skipped.push(`${ns}/${name}`);
      }
    }
  }
  return {
    resolver: (namespace, name) => (namespace === undefined ? undefined : values.get(`${namespace}/${name}`)),
    count: values.size,
    skipped,
  };
}

/** A Kubernetes object name: never a path that climbs out of the secrets directory. */
function safeName(s: string): boolean {
  return /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(s) && !s.includes('..');
}

/** Cilium's header actions on the forwarded request: ADD appends, REPLACE sets, DELETE removes. */
export function applyHeaderActions(
  headers: Array<[string, string]>,
  actions: readonly HeaderAction[],
): Array<[string, string]> {
  let out = headers;
  for (const a of actions) {
    switch (a.op) {
      case 'ADD':
        out = [...out, [a.name, a.value ?? '']];
        break;
      case 'DELETE':
        out = out.filter(([k]) => k !== a.name);
        break;
      case 'REPLACE': {
        const i = out.findIndex(([k]) => k === a.name);
        const rest = out.filter(([k]) => k !== a.name);
        if (i < 0) rest.push([a.name, a.value ?? '']);
        else rest.splice(i, 0, [a.name, a.value ?? '']);
        out = rest;
        break;
      }
      case 'LOG':
        break;
    }
  }
  return out;
}

export interface JudgeOptions {
  /** Where `secret` references resolve; without it a secret-only match never matches. */
  secrets?: SecretResolver;
}

interface Compiled {
  policy: HTTPPolicy;
  secretHeaders: string[];
  /**
   * Decisions already taken for this (immutable) rule set, by everything matchHTTP reads: method,
   * path, host, and the headers when a rule looks at any. matchHTTP is a pure function of those,
   * so a hit is the same answer; RE2 through WASM is the proxy's largest per-request cost.
   */
  memo: Map<string, HTTPMatch>;
  /**
   * The same for sets no rule of which reads headers, by method, host and path in nested maps: no
   * key string is built per request. `undefined` host (none sent) is a key of its own.
   */
  plain: Map<string, Map<string | undefined, Map<string, HTTPMatch>>>;
  plainSize: number;
}

const MEMO_MAX = 10_000;

/** The (shared, never changed) set of a request no rule compares with a secret. */
export const NO_SECRET_HEADERS: ReadonlySet<string> = new Set();
const MEMO_KEY_MAX = 4096;

function memoKey(req: HTTPRequest, withHeaders: boolean): string | undefined {
  // Length-prefixed fields: no value can forge another key.
  let k = `${req.method.length}:${req.method}${req.path.length}:${req.path}`;
  k += req.host === undefined ? '-' : `${req.host.length}:${req.host}`;
  if (withHeaders) {
    for (const [n, v] of req.headers as Array<[string, string]>) k += `${n.length}:${n}${v.length}:${v}`;
  }
  return k.length > MEMO_KEY_MAX ? undefined : k;
}

export class HTTPJudge {
  private cache = new WeakMap<HTTPRuleSet, Compiled>();
  constructor(private readonly opts: JudgeOptions = {}) {}

  /** Forgets compiled sets and their decisions (after the secrets changed). */
  clear(): void {
    this.cache = new WeakMap();
  }

  private compiled(set: HTTPRuleSet): Compiled {
    let c = this.cache.get(set);
    if (c === undefined) {
      const o: Parameters<typeof compileHTTPRules>[1] = {};
      if (this.opts.secrets !== undefined) o.secrets = this.opts.secrets;
      if (set.namespace !== undefined) o.namespace = set.namespace;
      const policy = compileHTTPRules(set.rules, o);
      const secretHeaders = policy.rules.flatMap((r) =>
        r.headerMatches.filter((h) => h.secret).map((h) => h.name),
      );
      c = { policy, secretHeaders, memo: new Map(), plain: new Map(), plainSize: 0 };
      this.cache.set(set, c);
    }
    return c;
  }

  /** matchHTTP through the memo keyed by every field (a set whose rules read headers). */
  private memoized(c: Compiled, hreq: HTTPRequest): HTTPMatch {
    const key = memoKey(hreq, true);
    let m = key === undefined ? undefined : c.memo.get(key);
    if (m === undefined) {
      m = matchHTTP(c.policy, hreq);
      if (key !== undefined) {
        if (c.memo.size >= MEMO_MAX) c.memo.clear();
        c.memo.set(key, m);
      }
    }
    return m;
  }

  /** matchHTTP through the nested memo (method → host → path) of a set that reads no header. */
  private memoizedPlain(c: Compiled, hreq: HTTPRequest): HTTPMatch {
    if (hreq.path.length + (hreq.host?.length ?? 0) + hreq.method.length > MEMO_KEY_MAX) {
      return matchHTTP(c.policy, hreq);
    }
    const hit = c.plain.get(hreq.method)?.get(hreq.host)?.get(hreq.path);
    if (hit !== undefined) return hit;
    const m = matchHTTP(c.policy, hreq);
    if (c.plainSize >= MEMO_MAX) {
      c.plain.clear();
      c.plainSize = 0;
    }
    let byHost = c.plain.get(hreq.method);
    if (byHost === undefined) {
      byHost = new Map();
      c.plain.set(hreq.method, byHost);
    }
    let byPath = byHost.get(hreq.host);
    if (byPath === undefined) {
      byPath = new Map();
      byHost.set(hreq.host, byPath);
    }
    byPath.set(hreq.path, m);
    c.plainSize++;
    return m;
  }

  judge(sets: readonly HTTPRuleSet[], req: JudgeRequest): Judgement {
    // Allocated only when a rule compares a secret (most requests: none).
    let secretHeaders: Set<string> | undefined;
    if (sets.length === 0) return denied(req, 'no HTTP rule set applies to this connection', [], undefined);
    const ordered =
      sets.length === 1
        ? sets
        : [...sets].sort((a, b) => (a.direction === b.direction ? 0 : a.direction === 'EGRESS' ? -1 : 1));
    const outcomes: SetOutcome[] = [];
    const logged: HeaderAction[] = [];
    let headers = req.headers;
    try {
      for (const set of ordered) {
        const c = this.compiled(set);
        if (c.secretHeaders.length > 0) {
          secretHeaders ??= new Set();
          for (const n of c.secretHeaders) secretHeaders.add(n);
        }
        const hreq: HTTPRequest = { method: req.method, path: req.path, headers };
        if (req.host !== undefined) hreq.host = req.host;
        const m = c.policy.needsHeaders ? this.memoized(c, hreq) : this.memoizedPlain(c, hreq);
        const o: SetOutcome = { set, allowed: m.allowed };
        if (m.ruleIndex !== undefined) o.ruleIndex = m.ruleIndex;
        if (m.reason !== undefined) o.reason = m.reason;
        outcomes.push(o);
        if (!m.allowed) {
          const why = `${set.direction.toLowerCase()}: ${m.reason ?? 'no HTTP rule matched'}`;
          return denied(req, why, outcomes, secretHeaders);
        }
        for (const a of m.headerActions) if (a.op === 'LOG') logged.push(a);
        if (m.headerActions.length > 0) headers = applyHeaderActions(headers, m.headerActions);
      }
    } catch (e) {
      return denied(req, `policy engine error: ${(e as Error).message}`, outcomes, secretHeaders);
    }
    return { allowed: true, outcomes, headers, logged, secretHeaders: secretHeaders ?? NO_SECRET_HEADERS };
  }
}

/** A module function, not a closure per judge() call: under tsx each costs a defineProperty. */
function denied(
  req: JudgeRequest,
  reason: string,
  outcomes: SetOutcome[],
  secretHeaders: Set<string> | undefined,
): Judgement {
  return {
    allowed: false,
    outcomes,
    headers: req.headers,
    logged: [],
    secretHeaders: secretHeaders ?? NO_SECRET_HEADERS,
    reason,
  };
}
