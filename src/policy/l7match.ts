// Runs one L7 request against the union L7RuleSet of the matching redirect entries, through the
// l7/ matchers. Compiled rule sets are cached by the entries they came from.

import { compileDNSRules, matchDNS } from '../l7/dns.ts';
import { compileHTTPRules, type HTTPRequest, matchHTTP } from '../l7/http.ts';
import { compileKafkaRules, matchKafka } from '../l7/kafka.ts';
import type { L7Request, L7RuleSet } from './types.ts';

export interface L7Outcome {
  allowed: boolean;
  matchedRule?: number;
  reason?: string;
}

const cache = new Map<string, unknown>();

function compiled<T>(key: string, make: () => T): T {
  let c = cache.get(key) as T | undefined;
  if (c === undefined) {
    if (cache.size > 10_000) cache.clear();
    c = make();
    cache.set(key, c);
  }
  return c;
}

export function parserFor(req: L7Request): L7RuleSet['parser'] {
  return req.kind === 'http' ? 'http' : req.kind === 'kafka' ? 'kafka' : 'dns';
}

/** `key` must identify the rule set (same key ⇒ same rules). */
export function matchL7(set: L7RuleSet, key: string, req: L7Request): L7Outcome {
  if (set.parser !== parserFor(req)) {
    return { allowed: false, reason: `the ${set.parser} proxy cannot parse a ${req.kind} request` };
  }
  if (set.parser === 'http' && req.kind === 'http') {
    const pol = compiled(`http|${key}`, () => compileHTTPRules(set.rules));
    const hreq: HTTPRequest = { method: req.method, path: req.path, headers: { ...(req.headers ?? {}) } };
    if (req.host !== undefined) hreq.host = req.host;
    if (req.grpc === true && !hasHeader(hreq.headers, 'content-type')) {
      (hreq.headers as Record<string, string>)['content-type'] = 'application/grpc';
    }
    const m = matchHTTP(pol, hreq);
    return outcome(m.allowed, m.ruleIndex, m.reason);
  }
  if (set.parser === 'kafka' && req.kind === 'kafka') {
    const pol = compiled(`kafka|${key}`, () => compileKafkaRules(set.rules));
    const m = matchKafka(pol, {
      apiKey: req.apiKey,
      apiVersion: req.apiVersion,
      clientID: req.clientID,
      topics: req.topics,
    });
    return outcome(m.allowed, m.ruleIndex, m.reason);
  }
  if (set.parser === 'dns' && req.kind === 'dns') {
    const pol = compiled(`dns|${key}`, () => compileDNSRules(set.rules));
    const m = matchDNS(pol, req.query);
    return outcome(m.allowed, m.ruleIndex, m.allowed ? undefined : `query ${m.qname} matches no DNS rule`);
  }
  return { allowed: false };
}

function hasHeader(h: Record<string, string> | Array<[string, string]>, name: string): boolean {
  const keys = Array.isArray(h) ? h.map((x) => x[0]) : Object.keys(h);
  return keys.some((k) => k.toLowerCase() === name);
}

function outcome(allowed: boolean, ruleIndex: number | undefined, reason: string | undefined): L7Outcome {
  const o: L7Outcome = { allowed };
  if (ruleIndex !== undefined) o.matchedRule = ruleIndex;
  if (reason !== undefined) o.reason = reason;
  return o;
}
