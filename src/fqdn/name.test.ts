import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bareName, checkMatchName, checkMatchPattern, type NameProblem, normalizeName } from './name.ts';

describe('checkMatchName / checkMatchPattern', () => {
  // name, input, matchName problem, matchPattern problem
  const rows: Array<[string, string, NameProblem | undefined, NameProblem | undefined]> = [
    ['plain', 'api.example.com', undefined, undefined],
    ['trailing dot', 'api.example.com.', undefined, undefined],
    ['single label', 'localhost', undefined, undefined],
    ['star', '*.example.com', 'bad-chars', undefined],
    ['upper case is allowed (compared folded)', 'API.Example.COM', undefined, undefined],
    ['empty', '', 'empty-label', 'empty-label'],
    ['root alone', '.', 'empty-label', 'empty-label'],
    ['leading dot', '.example.com', 'empty-label', 'empty-label'],
    ['empty label', 'a..b', 'empty-label', 'empty-label'],
    ['two trailing dots', 'a.b..', 'empty-label', 'empty-label'],
    ['bad chars win over empty labels', 'a..b c', 'bad-chars', 'bad-chars'],
    ['KELVIN SIGN is not k', '\u212Aube.example', 'bad-chars', 'bad-chars'],
    ['port', 'a.com:443', 'bad-chars', 'bad-chars'],
    ['too long wins', `${'a'.repeat(256)}`, 'too-long', 'too-long'],
    ['255 chars', 'a'.repeat(255), undefined, undefined],
  ];
  for (const [name, input, wantName, wantPattern] of rows) {
    test(name, () => {
      assert.equal(checkMatchName(input), wantName);
      assert.equal(checkMatchPattern(input), wantPattern);
    });
  }
});

describe('normalizeName / bareName', () => {
  // name, input, normalizeName, bareName
  const rows: Array<[string, string, string, string]> = [
    ['ASCII lower-cased', 'API.GitHub.com', 'api.github.com.', 'api.github.com'],
    ['trailing dot kept / dropped', 'a.b.', 'a.b.', 'a.b'],
    ['empty is the root', '', '.', ''],
    ['KELVIN SIGN stays (RFC 4343: ASCII folding only)', '\u212Aube.io', '\u212Aube.io.', '\u212Aube.io'],
    ['dotless I stays', 'L\u0130NK.io', 'l\u0130nk.io.', 'l\u0130nk.io'],
  ];
  for (const [name, input, fq, bare] of rows) {
    test(name, () => {
      assert.equal(normalizeName(input), fq);
      assert.equal(bareName(input), bare);
    });
  }
});
