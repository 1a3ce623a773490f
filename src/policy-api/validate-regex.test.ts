// Item 9 (regex injection) and item 10 (what Go's regexp refuses): every HTTP regex field is
// checked as a bare pattern before it is anchored, with the position of the field.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadPolicyText } from './load.ts';

/** A CNP with one HTTP rule `{field: pattern}`; the pattern stands on line 9. */
function policy(field: string, pattern: string): string {
  return [
    'apiVersion: cilium.io/v2',
    'kind: CiliumNetworkPolicy',
    'metadata: {name: t, namespace: ns}',
    'spec:',
    '  endpointSelector: {}',
    '  ingress:',
    '  - toPorts:',
    '    - ports: [{port: "80", protocol: TCP}]',
    `      rules: {http: [{${field}: ${JSON.stringify(pattern)}}]}`,
    '',
  ].join('\n');
}

interface Row {
  name: string;
  field: 'path' | 'method' | 'host';
  pattern: string;
  /** Expected message fragment of the one invalid-regex error; undefined = valid. */
  error?: RegExp;
}

const rows: Row[] = [
  // injection: a pattern that only compiles once wrapped in `^(?:` … `)$`
  {
    name: 'item 9: path closes the anchor group',
    field: 'path',
    pattern: '/public)|(',
    error: /unexpected \)/,
  },
  {
    name: 'item 9: path closes the group, wildcard arm',
    field: 'path',
    pattern: '/x)|(.*',
    error: /unexpected \)/,
  },
  { name: 'item 9: method closes the group', field: 'method', pattern: 'GET)|(', error: /unexpected \)/ },
  { name: 'item 9: host closes the group', field: 'host', pattern: 'a\\.com)|(', error: /unexpected \)/ },
  { name: 'item 9: path opens an extra group', field: 'path', pattern: '(/public', error: /missing \)/ },
  // tricky but valid: RE2 (and Go) accept them alone, so they must validate
  { name: 'item 9: \\Q without \\E quotes to the end', field: 'path', pattern: '/a\\Q' },
  { name: 'item 9: \\Q quoting a parenthesis', field: 'path', pattern: '\\Qa)b' },
  { name: 'item 9: \\Q quoting what looks like an injection', field: 'path', pattern: '/public\\Q)|(' },
  { name: 'item 9: inline flag', field: 'method', pattern: '(?i)get' },
  { name: 'item 9: alternation', field: 'path', pattern: '/a|/b' },
  { name: 'item 9: class with a bracket and parenthesis', field: 'path', pattern: '[])(]x' },
  { name: 'item 9: \\Q quoting a slash', field: 'path', pattern: '\\Q/admin\\E' },
  // item 10: what re2-wasm's JavaScript front end accepts but RE2 and Go refuse
  {
    name: 'item 10: \\u escape',
    field: 'path',
    pattern: '/\\u0061dmin',
    error: /invalid escape sequence: \\u/,
  },
  { name: 'item 10: \\c escape', field: 'method', pattern: 'GET\\cA', error: /invalid escape sequence: \\c/ },
  {
    name: 'item 10: \\u escape in a class',
    field: 'host',
    pattern: '[\\u0061]',
    error: /invalid escape sequence/,
  },
  // item 10: what Go's regexp (Cilium's agent, for path and method) refuses though RE2 accepts it
  { name: 'item 10: \\C in path', field: 'path', pattern: '/a\\C', error: /\\C/ },
  { name: 'item 10: \\C in method', field: 'method', pattern: 'G\\CT', error: /\\C/ },
  {
    name: "item 10: nesting past Go's limit of 1000",
    field: 'path',
    pattern: `${'('.repeat(1000)}a${')'.repeat(1000)}`,
    error: /nests too deeply/,
  },
  { name: "item 10: nesting at Go's limit", field: 'path', pattern: `${'('.repeat(999)}a${')'.repeat(999)}` },
  {
    name: 'item 10: repetition count over 1000',
    field: 'path',
    pattern: '/a{1001}',
    error: /repetition size/,
  },
  {
    name: 'item 10: nested repetition over 1000',
    field: 'path',
    pattern: '(/a{100}){11}',
    error: /repetition size/,
  },
  { name: 'item 10: \\C quoted by \\Q is a literal', field: 'path', pattern: '\\Q\\C\\E' },
  // host reaches only Envoy's RE2 (Cilium's agent does not compile it), which accepts \C
  { name: 'host: \\C is RE2 syntax', field: 'host', pattern: 'a\\C' },
];

for (const row of rows) {
  test(`validate regex: ${row.name}`, () => {
    const res = loadPolicyText('p.yaml', policy(row.field, row.pattern));
    const errors = res.issues.filter((i) => i.severity === 'error');
    if (row.error === undefined) {
      assert.deepEqual(errors, []);
      assert.equal(res.policies.length, 1);
      return;
    }
    assert.deepEqual(
      errors.map((i) => [i.code, i.path, `${i.pos.file}:${i.pos.line}:${i.pos.column}`]),
      [
        [
          'invalid-regex',
          `spec.ingress[0].toPorts[0].rules.http[0].${row.field}`,
          `p.yaml:9:${25 + row.field.length}`,
        ],
      ],
    );
    assert.match(errors[0]!.message, row.error);
    assert.equal(res.policies.length, 0, 'a policy with an error is not enforced');
  });
}
