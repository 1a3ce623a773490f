import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SourcePos } from '../policy-api/issue.ts';
import { KAFKA_API_KEY_NAMES } from '../policy-api/kafka.ts';
import type { PortRuleKafka } from '../policy-api/types.ts';
import {
  compileKafkaRules,
  type KafkaRequest,
  kafkaApiKeyByName,
  kafkaApiKeyName,
  kafkaCarriesTopics,
  kafkaRoleApiKeys,
  matchKafka,
  TOPIC_AUTHORIZATION_FAILED,
} from './kafka.ts';

const pos: SourcePos = { file: 't.yaml', line: 1, column: 1 };
const rule = (r: Omit<PortRuleKafka, 'pos'>): PortRuleKafka => ({ pos, ...r });
const req = (apiKey: number, topics: string[], clientID = 'c', apiVersion = 0): KafkaRequest => ({
  apiKey,
  apiVersion,
  clientID,
  topics,
});

describe('API key table', () => {
  const rows: Array<[string, string, number | undefined]> = [
    ['produce', 'produce', 0],
    ['upper case', 'PRODUCE', 0],
    ['mixed case', 'ApiVersions', 18],
    ['last', 'alterconfigs', 33],
    ['findcoordinator', 'findcoordinator', 10],
    ['offsetforleaderepoch', 'offsetforleaderepoch', 23],
    ['docs typo createtopic', 'createtopic', undefined],
    ['unknown', 'bogus', undefined],
    ['prototype name', 'constructor', undefined],
  ];
  for (const [name, input, want] of rows) test(name, () => assert.equal(kafkaApiKeyByName(input), want));
  test('34 names, round trip', () => {
    assert.equal(KAFKA_API_KEY_NAMES.size, 34);
    for (let i = 0; i <= 33; i++) assert.equal(kafkaApiKeyByName(kafkaApiKeyName(i)!), i);
    assert.equal(kafkaApiKeyName(34), undefined);
    assert.equal(kafkaApiKeyName(-1), undefined);
    assert.equal(kafkaApiKeyName(1.5), undefined);
  });
  test('topic-carrying keys', () => {
    const want = [0, 1, 2, 3, 4, 5, 6, 8, 9, 19, 20, 21, 23, 24, 27, 28, 34, 35, 37];
    const got = [];
    for (let i = 0; i < 64; i++) if (kafkaCarriesTopics(i)) got.push(i);
    assert.deepEqual(got, want);
  });
  test('roles', () => {
    assert.deepEqual(kafkaRoleApiKeys('produce'), [0, 3, 18]);
    assert.deepEqual(kafkaRoleApiKeys('Consume'), [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18]);
    assert.equal(kafkaRoleApiKeys('admin'), undefined);
    assert.equal(kafkaRoleApiKeys('toString'), undefined);
  });
  test('error code', () => assert.equal(TOPIC_AUTHORIZATION_FAILED, 29));
});

describe('matchKafka', () => {
  // row name, rules, request, allowed, uncoveredTopics
  const rows: Array<[string, PortRuleKafka[], KafkaRequest, boolean, string[] | undefined]> = [
    ['empty list matches nothing', [], req(0, ['a']), false, undefined],
    ['empty rule matches all', [rule({})], req(0, ['a', 'b']), true, undefined],
    ['empty rule matches unnamed key', [rule({})], req(37, ['a']), true, undefined],
    ['apiKey match', [rule({ apiKey: 'produce', topic: 'a' })], req(0, ['a']), true, undefined],
    ['apiKey mismatch', [rule({ apiKey: 'produce', topic: 'a' })], req(1, ['a']), false, undefined],
    ['topic mismatch', [rule({ apiKey: 'produce', topic: 'a' })], req(0, ['b']), false, ['b']],
    [
      'every topic must be covered',
      [rule({ apiKey: 'produce', topic: 'a' })],
      req(0, ['a', 'b']),
      false,
      ['b'],
    ],
    [
      'coverage from different rules',
      [rule({ apiKey: 'produce', topic: 'a' }), rule({ role: 'produce', topic: 'b' })],
      req(0, ['a', 'b']),
      true,
      undefined,
    ],
    [
      'coverage rule must match head too',
      [rule({ apiKey: 'produce', topic: 'a' }), rule({ apiKey: 'fetch', topic: 'b' })],
      req(0, ['a', 'b']),
      false,
      ['b'],
    ],
    [
      'coverage rule must match clientID too',
      [rule({ topic: 'a' }), rule({ topic: 'b', clientID: 'other' })],
      req(0, ['a', 'b']),
      false,
      ['b'],
    ],
    ['empty topic list vs topic rule', [rule({ role: 'produce', topic: 'a' })], req(0, []), false, []],
    ['empty topic list vs topicless rule', [rule({ role: 'produce' })], req(0, []), true, undefined],
    ['non-topic key ignores topic', [rule({ role: 'consume', topic: 'a' })], req(10, []), true, undefined],
    ['non-topic key with topics', [rule({ role: 'consume', topic: 'a' })], req(12, ['zz']), true, undefined],
    ['role produce: metadata', [rule({ role: 'produce', topic: 'a' })], req(3, ['a']), true, undefined],
    ['role produce: apiversions', [rule({ role: 'PRODUCE', topic: 'a' })], req(18, []), true, undefined],
    ['role produce excludes fetch', [rule({ role: 'produce' })], req(1, ['a']), false, undefined],
    ['role consume: heartbeat', [rule({ role: 'consume' })], req(12, []), true, undefined],
    ['role consume excludes produce', [rule({ role: 'consume' })], req(0, ['a']), false, undefined],
    ['apiKey case-insensitive', [rule({ apiKey: 'Fetch' })], req(1, ['a']), true, undefined],
    ['invalid apiKey matches nothing', [rule({ apiKey: 'createtopic' })], req(19, ['a']), false, undefined],
    ['invalid role matches nothing', [rule({ role: 'admin' })], req(0, ['a']), false, undefined],
    [
      'role and apiKey matches nothing',
      [rule({ role: 'produce', apiKey: 'produce' })],
      req(0, []),
      false,
      undefined,
    ],
    ['apiVersion exact', [rule({ apiVersion: '3' })], req(0, [], 'c', 3), true, undefined],
    ['apiVersion mismatch', [rule({ apiVersion: '3' })], req(0, [], 'c', 4), false, undefined],
    ['apiVersion invalid', [rule({ apiVersion: 'x3' })], req(0, [], 'c', 3), false, undefined],
    ['apiVersion too large', [rule({ apiVersion: '32768' })], req(0, [], 'c', 32768), false, undefined],
    ['clientID exact', [rule({ clientID: 'billing' })], req(0, [], 'billing'), true, undefined],
    ['clientID case-sensitive', [rule({ clientID: 'billing' })], req(0, [], 'Billing'), false, undefined],
    // conformance: kafka-clientid-and-apiversion
    ...(() => {
      const r = [rule({ apiKey: 'produce', topic: 'orders', clientID: 'billing-svc', apiVersion: '3' })];
      return [
        ['kafka-clientid-and-apiversion 1', r, req(0, ['orders'], 'billing-svc', 3), true, undefined],
        ['kafka-clientid-and-apiversion 2', r, req(0, ['orders'], 'other-svc', 3), false, undefined],
        ['kafka-clientid-and-apiversion 3', r, req(0, ['orders'], 'billing-svc', 5), false, undefined],
      ] as Array<[string, PortRuleKafka[], KafkaRequest, boolean, string[] | undefined]>;
    })(),
    ['malformed request', [rule({})], { apiKey: 'x' } as unknown as KafkaRequest, false, undefined],
    ['non-ASCII topic', [rule({ topic: 'ördeRs' })], req(0, ['ördeRs']), true, undefined],
  ];
  for (const [name, rules, request, allowed, uncovered] of rows) {
    test(name, () => {
      const m = matchKafka(compileKafkaRules(rules), request);
      assert.equal(m.allowed, allowed, m.reason);
      assert.deepEqual(m.uncoveredTopics, uncovered);
    });
  }
  test('compile errors reported', () => {
    const p = compileKafkaRules([rule({ apiKey: 'nope' }), rule({}), rule({ apiVersion: '-1' })]);
    assert.deepEqual(
      p.errors.map((e) => e.ruleIndex),
      [0, 2],
    );
  });
  test('single deciding rule index', () => {
    const p = compileKafkaRules([rule({ topic: 'x' }), rule({ topic: 'a' })]);
    assert.equal(matchKafka(p, req(0, ['a', 'a'])).ruleIndex, 1);
    const split = compileKafkaRules([rule({ topic: 'a' }), rule({ topic: 'b' })]);
    const m = matchKafka(split, req(0, ['a', 'b']));
    assert.equal(m.allowed, true);
    assert.equal(m.ruleIndex, undefined);
  });
});
