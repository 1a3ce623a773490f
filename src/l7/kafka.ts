// Kafka L7 rules (≤1.18; removed in 1.19), cilium-semantics.md §11.
// Fields of one rule are ANDed, rules ORed; a multi-topic request must have every topic covered.

import { KAFKA_API_KEYS } from '../policy-api/kafka.ts';
import type { PortRuleKafka } from '../policy-api/types.ts';

/** Kafka error code injected in the response to a denied request. */
export const TOPIC_AUTHORIZATION_FAILED = 29;

const API_KEY_BY_NAME = new Map(KAFKA_API_KEYS.map((n, i) => [n, i]));

/** API keys whose requests name topics; only these are checked against a rule's `topic`. */
export const KAFKA_TOPIC_API_KEYS: ReadonlySet<number> = new Set([
  0, 1, 2, 3, 4, 5, 6, 8, 9, 19, 20, 21, 23, 24, 27, 28, 34, 35, 37,
]);

const ROLE_KEYS: Record<string, readonly number[]> = {
  produce: [0, 3, 18],
  consume: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18],
};

/** Key number for a name (case-insensitive), or undefined. */
export function kafkaApiKeyByName(name: string): number | undefined {
  return typeof name === 'string' ? API_KEY_BY_NAME.get(name.toLowerCase()) : undefined;
}

/** Name of a key number, or undefined for keys policies cannot name. */
export function kafkaApiKeyName(n: number): string | undefined {
  return Number.isInteger(n) ? KAFKA_API_KEYS[n] : undefined;
}

/** API keys a role expands to (case-insensitive), or undefined for an unknown role. */
export function kafkaRoleApiKeys(role: string): readonly number[] | undefined {
  const r = role.toLowerCase();
  return Object.hasOwn(ROLE_KEYS, r) ? ROLE_KEYS[r] : undefined;
}

export function kafkaCarriesTopics(apiKey: number): boolean {
  return KAFKA_TOPIC_API_KEYS.has(apiKey);
}

export interface CompiledKafkaRule {
  index: number;
  /** Undefined = any key. */
  apiKeys?: ReadonlySet<number>;
  /** Undefined = any version. */
  apiVersion?: number;
  /** Empty = any client. */
  clientID: string;
  /** Empty = any topic. */
  topic: string;
  /** Why the rule is unusable (it then matches nothing: fail closed). */
  invalid?: string;
}

export interface KafkaPolicy {
  rules: CompiledKafkaRule[];
  /** Rules that could not be compiled (also marked `invalid` in `rules`). */
  errors: Array<{ ruleIndex: number; message: string }>;
}

export interface KafkaRequest {
  apiKey: number;
  apiVersion: number;
  clientID: string;
  topics: string[];
}

export interface KafkaMatch {
  allowed: boolean;
  /** The rule that admitted the request when a single rule did (absent when coverage was split). */
  ruleIndex?: number;
  /** For a denied topic-carrying request: the topics no matching rule covered. */
  uncoveredTopics?: string[];
  reason?: string;
}

function compileRule(r: PortRuleKafka, index: number): CompiledKafkaRule {
  const out: CompiledKafkaRule = { index, clientID: r.clientID ?? '', topic: r.topic ?? '' };
  const role = r.role ?? '';
  const apiKey = r.apiKey ?? '';
  if (role !== '' && apiKey !== '') out.invalid = 'cannot set both role and apiKey';
  else if (role !== '') {
    const keys = kafkaRoleApiKeys(role);
    if (keys === undefined) out.invalid = `invalid Kafka role ${JSON.stringify(role)}`;
    else out.apiKeys = new Set(keys);
  } else if (apiKey !== '') {
    const key = kafkaApiKeyByName(apiKey);
    if (key === undefined) out.invalid = `invalid Kafka apiKey ${JSON.stringify(apiKey)}`;
    else out.apiKeys = new Set([key]);
  }
  const version = r.apiVersion ?? '';
  if (out.invalid === undefined && version !== '') {
    const v = parseDecimal(version);
    if (v === undefined || v > 32767) out.invalid = `invalid Kafka apiVersion ${JSON.stringify(version)}`;
    else out.apiVersion = v;
  }
  return out;
}

function parseDecimal(s: string): number | undefined {
  if (s.length === 0 || s.length > 6) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return n;
}

/** Compiles once. Invalid rules are kept (so indices stay the policy's) but never match. */
export function compileKafkaRules(rules: readonly PortRuleKafka[]): KafkaPolicy {
  const compiled = rules.map(compileRule);
  const errors = compiled.flatMap((r) =>
    r.invalid === undefined ? [] : [{ ruleIndex: r.index, message: r.invalid }],
  );
  return { rules: compiled, errors };
}

/** apiKey, apiVersion and clientID (the part of a rule independent of topics). */
function headMatches(rule: CompiledKafkaRule, req: KafkaRequest): boolean {
  if (rule.invalid !== undefined) return false;
  if (rule.apiKeys !== undefined && !rule.apiKeys.has(req.apiKey)) return false;
  if (rule.apiVersion !== undefined && rule.apiVersion !== req.apiVersion) return false;
  if (rule.clientID !== '' && rule.clientID !== req.clientID) return false;
  return true;
}

function wellFormed(req: KafkaRequest): boolean {
  return (
    req !== null &&
    typeof req === 'object' &&
    Number.isInteger(req.apiKey) &&
    Number.isInteger(req.apiVersion) &&
    typeof req.clientID === 'string' &&
    Array.isArray(req.topics) &&
    req.topics.every((t) => typeof t === 'string')
  );
}

/**
 * Decides one request. Keys without topics pass any rule whose other fields match; for keys with
 * topics, a rule without `topic` admits the whole request, and rules naming a topic each cover that
 * topic; the request passes when every topic it names is covered.
 */
export function matchKafka(policy: KafkaPolicy, req: KafkaRequest): KafkaMatch {
  if (!wellFormed(req)) return { allowed: false, reason: 'malformed Kafka request' };
  if (policy.rules.length === 0) return { allowed: false, reason: 'no Kafka rules' };
  const topical = kafkaCarriesTopics(req.apiKey);
  const uncovered = new Set(topical ? req.topics : []);
  let headMatched = false;
  for (const rule of policy.rules) {
    if (!headMatches(rule, req)) continue;
    headMatched = true;
    if (rule.topic === '' || !topical) return { allowed: true, ruleIndex: rule.index };
    // A topic-carrying request with no topics never matches a rule that names one.
    if (uncovered.delete(rule.topic) && uncovered.size === 0) {
      return req.topics.every((t) => t === rule.topic)
        ? { allowed: true, ruleIndex: rule.index }
        : { allowed: true };
    }
  }
  const name = kafkaApiKeyName(req.apiKey) ?? `key ${req.apiKey}`;
  if (!headMatched) {
    return {
      allowed: false,
      reason: `no rule admits ${name} v${req.apiVersion} from client ${JSON.stringify(req.clientID)}`,
    };
  }
  const left = [...uncovered];
  return {
    allowed: false,
    uncoveredTopics: left,
    reason:
      left.length === 0
        ? `${name} request names no topic`
        : `topics not covered by any rule: ${left.join(', ')}`,
  };
}
