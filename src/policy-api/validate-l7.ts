// Validation of L7 rule contents and FQDN selectors: HTTP regexes and header matches, Kafka
// roles/API keys/versions/topics, DNS and toFQDNs names and patterns (cilium-semantics.md §10-12, §15).

import { checkGoRegex, checkRegex } from '../core/regex.ts';
import { checkMatchName, checkMatchPattern, MAX_FQDN_LENGTH } from '../fqdn/name.ts';
import { closest } from './cursor.ts';
import { KAFKA_API_KEY_NAMES, KAFKA_ROLES } from './kafka.ts';
import type { FQDNSelector, PortRuleDNS, PortRuleHTTP, PortRuleKafka } from './types.ts';
import type { Reporter } from './validate-report.ts';

const KAFKA_NAMES = [...KAFKA_API_KEY_NAMES];

export function validateHTTP(h: PortRuleHTTP, r: Reporter): void {
  for (const field of ['path', 'method', 'host'] as const) {
    const v = h[field];
    if (v === undefined || v === '') continue;
    // Each pattern is checked alone, before it is anchored (so `/a)|(` cannot escape the anchors).
    // Cilium's agent compiles path and method with Go's regexp; host only reaches Envoy's RE2.
    const res = field === 'host' ? checkRegex(v) : checkGoRegex(v);
    if (!res.ok) {
      const hint = /^\*/.test(v) ? ' (a lone `*` repeats nothing; write `.*` to match anything)' : '';
      r.error(
        'invalid-regex',
        `${field} ${JSON.stringify(v)} is not a valid RE2 regular expression: ${res.error}${hint}`,
        h,
        field,
      );
    }
  }
  const hm = h.headerMatches ?? [];
  for (let i = 0; i < hm.length; i++) {
    const m = hm[i]!;
    if (m.name === '') {
      r.error('header-name-missing', 'headerMatches entry needs a `name` (Header name missing)', m);
    }
    if (m.secret !== undefined && m.secret.name === '') {
      r.error(
        'header-secret-name-missing',
        'headerMatches secret needs a `name` (Secret name missing)',
        m,
        'secret',
      );
    }
  }
}

export function validateKafka(k: PortRuleKafka, r: Reporter): void {
  if (k.role && k.apiKey) {
    r.error(
      'kafka-role-and-apikey',
      `cannot set both role (${k.role}) and apiKey (${k.apiKey}) in one kafka rule; use two rules`,
      k,
      'apiKey',
    );
  }
  if (k.role && !KAFKA_ROLES.has(k.role.toLowerCase())) {
    r.error(
      'invalid-kafka-role',
      `invalid Kafka role ${JSON.stringify(k.role)}; use produce or consume`,
      k,
      'role',
    );
  }
  if (k.apiKey && !KAFKA_API_KEY_NAMES.has(k.apiKey.toLowerCase())) {
    const guess = closest(k.apiKey, KAFKA_NAMES);
    r.error(
      'invalid-kafka-apikey',
      `invalid Kafka apiKey ${JSON.stringify(k.apiKey)}${guess ? `; did you mean "${guess}"?` : ''} (names: ${KAFKA_NAMES.join(', ')})`,
      k,
      'apiKey',
    );
  }
  if (k.apiVersion !== undefined && k.apiVersion !== '') {
    if (!/^[0-9]{1,5}$/.test(k.apiVersion) || Number(k.apiVersion) > 32767) {
      r.error(
        'invalid-kafka-apiversion',
        `invalid Kafka apiVersion ${JSON.stringify(k.apiVersion)}; use a decimal number 0-32767 (as a string)`,
        k,
        'apiVersion',
      );
    }
  }
  if (k.topic !== undefined && k.topic !== '') {
    if (k.topic.length > 255) {
      r.error(
        'kafka-topic-too-long',
        `kafka topic is ${k.topic.length} characters; the maximum is 255`,
        k,
        'topic',
      );
    } else if (!/^[a-zA-Z0-9._\\-]+$/.test(k.topic)) {
      r.error(
        'invalid-kafka-topic',
        `invalid Kafka topic name ${JSON.stringify(k.topic)}; topics use only letters, digits, '.', '_' and '-' (exact match, no wildcards)`,
        k,
        'topic',
      );
    }
  }
}

/** toFQDNs entries and DNS rules share one shape and one set of checks (fqdn/name.ts's rule). */
export function validateFQDN(f: FQDNSelector | PortRuleDNS, r: Reporter): void {
  const { matchName, matchPattern } = f;
  if (matchName !== undefined && matchPattern !== undefined) {
    r.error(
      'fqdn-both-match-fields',
      'only one of matchName or matchPattern is allowed per entry; split it into two entries',
      f,
      'matchPattern',
    );
  } else if (matchName === undefined && matchPattern === undefined) {
    r.error('fqdn-missing-match', 'entry needs matchName or matchPattern', f);
  }
  if (matchName !== undefined) {
    switch (checkMatchName(matchName)) {
      case 'too-long':
        r.error(
          'fqdn-too-long',
          `matchName is ${matchName.length} characters; the maximum is ${MAX_FQDN_LENGTH}`,
          f,
          'matchName',
        );
        break;
      case 'bad-chars': {
        const star = matchName.includes('*') ? '; for wildcards use matchPattern' : '';
        r.error(
          'invalid-match-name',
          `invalid characters in matchName ${JSON.stringify(matchName)}: only letters, digits, '-', '_' and '.' are allowed${star}`,
          f,
          'matchName',
        );
        break;
      }
      case 'empty-label':
        r.error(
          'invalid-match-name',
          `matchName ${JSON.stringify(matchName)} is not a DNS name (empty label); write e.g. api.example.com`,
          f,
          'matchName',
        );
        break;
    }
  }
  if (matchPattern !== undefined) {
    switch (checkMatchPattern(matchPattern)) {
      case 'too-long':
        r.error(
          'fqdn-too-long',
          `matchPattern is ${matchPattern.length} characters; the maximum is ${MAX_FQDN_LENGTH}`,
          f,
          'matchPattern',
        );
        break;
      case 'bad-chars':
        r.error(
          'invalid-match-pattern',
          `invalid characters in matchPattern ${JSON.stringify(matchPattern)}: only letters, digits, '-', '_', '.' and '*' are allowed (no ports, schemes or regexes)`,
          f,
          'matchPattern',
        );
        break;
      case 'empty-label':
        r.error(
          'invalid-match-pattern',
          `matchPattern ${JSON.stringify(matchPattern)} has an empty label; write e.g. *.example.com`,
          f,
          'matchPattern',
        );
        break;
    }
  }
}
