// The shared conformance suite's invalid policies (../shared/conformance/invalid, beside the
// checkout): each is rejected with the code that matches the Cilium message quoted in its first
// comment line. The PolicyTests of the suite are read and run in src/policytest/conformance.test.ts.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadPolicyText } from './load.ts';

const conformance = join(import.meta.dirname, '..', '..', '..', 'shared', 'conformance');

/** Cilium's message (a fragment of it) → our code. */
const CILIUM_MESSAGES: Array<[string, string]> = [
  ['rule cannot have both EndpointSelector and NodeSelector', 'both-subject-selectors'],
  ['rule must have one of EndpointSelector or NodeSelector', 'missing-subject-selector'],
  ['DNS rules are not allowed on ingress', 'dns-rules-on-ingress'],
  ['must be specified for DNS rules', 'dns-rules-without-ports'],
  ['does not contain exclude CIDR prefix', 'cidr-except-outside'],
  ['L7 rules can only apply to TCP', 'l7-requires-tcp'],
  ['ICMPs block may only be present without ToPorts', 'icmps-with-toports'],
  ["must be specified when `operator` is 'In' or 'NotIn'", 'selector-values-required'],
  ['Invalid characters in MatchPattern', 'invalid-match-pattern'],
  ['Invalid characters in MatchName', 'invalid-match-name'],
  ['not a valid selector operator', 'invalid-selector-operator'],
  ['ServerNames are not allowed with L7 rules without TLS termination', 'servernames-l7-without-tls'],
  ['is not supported yet', 'combined-peer-kinds'],
  ['unsupported entity', 'unsupported-entity'],
];

const skip = existsSync(conformance) ? false : `no ${conformance}`;

const invalidDir = join(conformance, 'invalid');
const invalidFiles = skip
  ? []
  : readdirSync(invalidDir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort();
for (const f of invalidFiles) {
  test(`conformance invalid: ${f}`, () => {
    const text = readFileSync(join(invalidDir, f), 'utf8');
    const quoted = /Cilium: "([^"]+)"/.exec(text.split('\n')[0] ?? '')?.[1];
    assert.ok(quoted, 'first line quotes the Cilium message');
    const entry = CILIUM_MESSAGES.find(([m]) => quoted.includes(m));
    assert.ok(entry, `no code mapped for Cilium message ${JSON.stringify(quoted)}`);
    const res = loadPolicyText(f, text);
    assert.equal(res.policies.length, 0, 'the policy is rejected');
    const codes = res.issues.filter((i) => i.severity === 'error').map((i) => i.code);
    assert.ok(codes.includes(entry[1]), `expected ${entry[1]}, got ${JSON.stringify(codes)}`);
  });
}

test('conformance suite found', { skip }, () => {
  assert.ok(invalidFiles.length > 0);
});
