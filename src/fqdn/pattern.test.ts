import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compileFQDNSelector,
  compileMatchPattern,
  fqdnSelectorKey,
  normalizeName,
  validMatchName,
  validMatchPattern,
} from './pattern.ts';

describe('normalizeName', () => {
  const rows: Array<[string, string, string]> = [
    ['lower-cases and adds dot', 'API.Example.COM', 'api.example.com.'],
    ['keeps trailing dot', 'a.b.', 'a.b.'],
    ['empty is root', '', '.'],
    ['root stays root', '.', '.'],
    ['non-ASCII untouched (ASCII folding only)', 'K\u212Aube', 'k\u212Aube.'],
  ];
  for (const [name, input, want] of rows) test(name, () => assert.equal(normalizeName(input), want));
});

describe('validMatchName / validMatchPattern', () => {
  const rows: Array<[string, string, boolean, boolean]> = [
    // name, input, validMatchName, validMatchPattern
    ['plain', 'api.example.com', true, true],
    ['underscore and hyphen', '_srv-x.example.com.', true, true],
    ['star', '*.example.com', false, true],
    ['space', 'a b.com', false, false],
    ['empty', '', false, false],
    ['regex chars', 'a+b.com', false, false],
    ['brackets', '[a].com', false, false],
    ['non-ASCII', 'bücher.de', false, false],
    ['256 chars', 'a'.repeat(256), false, false],
    ['255 chars', 'a'.repeat(255), true, true],
    ['empty label inside', 'api..example.com', false, false],
    ['leading dot', '.example.com', false, false],
    ['root alone', '.', false, false],
    ['two trailing dots', 'example.com..', false, false],
    ['star-dot pattern', '*.', false, true],
  ];
  for (const [name, input, vn, vp] of rows) {
    test(name, () => {
      assert.equal(validMatchName(input), vn);
      assert.equal(validMatchPattern(input), vp);
    });
  }
});

describe('compileFQDNSelector', () => {
  // name, selector, query, expected
  const rows: Array<[string, { matchName?: string; matchPattern?: string }, string, boolean]> = [
    ['matchName exact', { matchName: 'api.example.com' }, 'api.example.com', true],
    ['matchName case-insensitive', { matchName: 'API.Partner.Example.' }, 'Api.PARTNER.example.', true],
    ['matchName trailing dot optional', { matchName: 'API.Partner.Example.' }, 'api.partner.example', true],
    ['matchName no subdomain', { matchName: 'example.com' }, 'a.example.com', false],
    ['matchName no prefix', { matchName: 'example.com' }, 'myexample.com', false],
    ['matchName with star is invalid', { matchName: '*.example.com' }, 'a.example.com', false],
    ['matchName with an empty label is invalid', { matchName: 'a..com' }, 'a..com', false],
    ['matchPattern with an empty label is invalid', { matchPattern: 'a..*' }, 'a..b', false],
    ['star label one label', { matchPattern: '*.ex.com' }, 'a.ex.com', true],
    ['star label not apex', { matchPattern: '*.ex.com' }, 'ex.com', false],
    ['star label not two labels', { matchPattern: '*.ex.com' }, 'a.b.ex.com', false],
    ['star prefix matches apex', { matchPattern: '*ex.com' }, 'ex.com', true],
    ['star prefix in-label', { matchPattern: '*ex.com' }, 'myex.com', true],
    ['star prefix not across dot', { matchPattern: '*ex.com' }, 'www.ex.com', false],
    ['infix zero chars', { matchPattern: 'a*z.ex.com' }, 'az.ex.com', true],
    ['infix many chars', { matchPattern: 'a*z.ex.com' }, 'a-b_c9z.ex.com', true],
    ['infix suffix mismatch', { matchPattern: 'a*z.ex.com' }, 'a-b.ex.com', false],
    ['star runs collapse', { matchPattern: 'a***z.ex.com' }, 'abcz.ex.com', true],
    ['star is only one label (infix)', { matchPattern: 'a*z.ex.com' }, 'a.z.ex.com', false],
    ['star never matches non-label chars', { matchPattern: '*.ex.com' }, 'a b.ex.com', false],
    ['star never matches non-ASCII', { matchPattern: '*.ex.com' }, 'bü.ex.com', false],
    ['pattern case-insensitive', { matchPattern: '*.EX.com' }, 'A.ex.COM.', true],
    ['lone star matches any name', { matchPattern: '*' }, 'a.b.c.example.org', true],
    ['lone star matches root', { matchPattern: '*' }, '.', true],
    ['star-dot matches any name', { matchPattern: '*.' }, 'x', true],
    ['stars-only matches any name', { matchPattern: '***' }, 'x.y', true],
    ['lone star rejects malformed name', { matchPattern: '*' }, 'a..b', false],
    ['lone star rejects space', { matchPattern: '*' }, 'a b.com', false],
    ['double-star prefix one label', { matchPattern: '**.ex.com' }, 'a.ex.com', true],
    ['double-star prefix many labels', { matchPattern: '**.ex.com' }, 'a.b.c.ex.com', true],
    ['double-star prefix not apex', { matchPattern: '**.ex.com' }, 'ex.com', false],
    ['double-star prefix empty label', { matchPattern: '**.ex.com' }, 'a..ex.com', false],
    ['triple-star prefix is multi-label', { matchPattern: '***.ex.com' }, 'a.b.ex.com', true],
    ['double-star prefix with in-label star', { matchPattern: '**.*x.com' }, 'a.b.yx.com', true],
    ['double-star not prefix collapses', { matchPattern: 'a.**.com' }, 'a.b.com', true],
    ['double-star not prefix is one label', { matchPattern: 'a.**.com' }, 'a.b.c.com', false],
    ['double-star without dot is one label', { matchPattern: '**ex.com' }, 'a.ex.com', false],
    [
      'dns-infix-wildcard: no chars',
      { matchPattern: 'edge*node.partner.example' },
      'edgenode.partner.example',
      true,
    ],
    [
      'dns-infix-wildcard: chars',
      { matchPattern: 'edge*node.partner.example' },
      'edge-eu-1-node.partner.example',
      true,
    ],
    [
      'dns-infix-wildcard: not across dots',
      { matchPattern: 'edge*node.partner.example' },
      'edge.x.node.partner.example',
      false,
    ],
    ['single-label-wildcard: one label', { matchPattern: '*.partner.example' }, 'cdn.partner.example', true],
    ['single-label-wildcard: apex', { matchPattern: '*.partner.example' }, 'partner.example', false],
    [
      'single-label-wildcard: two labels',
      { matchPattern: '*.partner.example' },
      'eu.cdn.partner.example',
      false,
    ],
    ['fqdn-pattern-excludes-apex', { matchPattern: '*.partner.example' }, 'partner.example.', false],
    ['both fields: invalid', { matchName: 'a.com', matchPattern: '*' }, 'a.com', false],
    ['neither field: invalid', {}, 'a.com', false],
    ['bad pattern chars: invalid', { matchPattern: '(a*)*.com' }, 'a.com', false],
  ];
  for (const [name, sel, query, want] of rows) {
    test(name, () => assert.equal(compileFQDNSelector(sel)(query), want));
  }

  test('hostile: long names stay fast', () => {
    const m = compileMatchPattern('*a*a*a*a*a*b.example.com');
    const long = `${'a'.repeat(100_000)}.example.com`;
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) assert.equal(m(long), false);
    assert.ok(performance.now() - t0 < 2000);
    const multi = compileMatchPattern('**.example.com');
    assert.equal(multi(`${'x.'.repeat(50_000)}example.com`), true);
  });
});

describe('fqdnSelectorKey', () => {
  const rows: Array<[string, { matchName?: string; matchPattern?: string }, string]> = [
    ['name normalised', { matchName: 'A.com' }, 'matchName:a.com.'],
    ['pattern normalised', { matchPattern: '*.A.com.' }, 'matchPattern:*.a.com.'],
    ['wildcard kept', { matchPattern: '**.' }, 'matchPattern:*'],
    ['invalid', {}, 'invalid:[null,null]'],
  ];
  for (const [name, sel, want] of rows) test(name, () => assert.equal(fqdnSelectorKey(sel), want));
});
