import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SourcePos } from '../policy-api/issue.ts';
import type { PortRuleDNS } from '../policy-api/types.ts';
import { compileDNSRules, matchDNS } from './dns.ts';

const pos: SourcePos = { file: 't.yaml', line: 1, column: 1 };
const name = (matchName: string): PortRuleDNS => ({ pos, matchName });
const pattern = (matchPattern: string): PortRuleDNS => ({ pos, matchPattern });

describe('matchDNS', () => {
  // row name, rules, query, allowed, ruleIndex
  const rows: Array<[string, PortRuleDNS[], string, boolean, number | undefined]> = [
    ["empty list admits all (as Cilium's DNS proxy)", [], 'a.com', true, undefined],
    ['empty rule admits nothing', [{ pos }], 'a.com', false, undefined],
    ['matchName', [name('a.com')], 'a.com', true, 0],
    ['rules ORed, first hit reported', [name('b.com'), pattern('*.com'), name('a.com')], 'a.com', true, 1],
    ['star allows all queries', [pattern('*')], 'anything.example.org.', true, 0],
    // conformance: dns-infix-wildcard
    ['dns-infix-wildcard 1', [pattern('edge*node.partner.example')], 'edgenode.partner.example', true, 0],
    [
      'dns-infix-wildcard 2',
      [pattern('edge*node.partner.example')],
      'edge-eu-1-node.partner.example',
      true,
      0,
    ],
    [
      'dns-infix-wildcard 3',
      [pattern('edge*node.partner.example')],
      'edge.x.node.partner.example',
      false,
      undefined,
    ],
    // conformance: dns-matchpattern-single-label-wildcard
    ['single-label 1', [pattern('*.partner.example')], 'cdn.partner.example', true, 0],
    ['single-label 2', [pattern('*.partner.example')], 'partner.example', false, undefined],
    ['single-label 3', [pattern('*.partner.example')], 'eu.cdn.partner.example', false, undefined],
    // conformance: dns-names-case-insensitive-trailing-dot-optional
    ['case/dot 1', [name('API.Partner.Example.')], 'api.partner.example', true, 0],
    ['case/dot 2', [name('API.Partner.Example.')], 'Api.PARTNER.example.', true, 0],
    ['star admits even odd names (DNS rules only)', [pattern('*')], 'bücher .de', true, 0],
    ['in-label star rejects non-ASCII', [pattern('*.de')], 'bücher.de', false, undefined],
    ['invalid rule matches nothing', [pattern('a b')], 'a b.', false, undefined],
    ['NUL in query', [name('a.com')], 'a.com\u0000', false, undefined],
  ];
  for (const [rowName, rules, q, allowed, idx] of rows) {
    test(rowName, () => {
      const m = matchDNS(compileDNSRules(rules), q);
      assert.equal(m.allowed, allowed);
      assert.equal(m.ruleIndex, idx);
    });
  }
  test('reports normalised qname', () => {
    assert.equal(matchDNS(compileDNSRules([]), 'A.Com').qname, 'a.com.');
  });
  test('non-string query fails closed', () => {
    assert.equal(matchDNS(compileDNSRules([pattern('*')]), 42 as unknown as string).allowed, false);
  });
});
