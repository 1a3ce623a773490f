import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  canonicalPath,
  canonicalPathByChar,
  mergeSlashes,
  normalizeTarget,
  removeDotSegments,
} from './normalize.ts';

interface Row {
  name: string;
  method?: string;
  target: string;
  /** Expected normalised path (query included), or undefined when the target is refused. */
  path?: string;
  redirect?: boolean;
  authority?: string;
}

const rows: Row[] = [
  { name: 'plain path', target: '/public/index.html', path: '/public/index.html' },
  { name: 'query kept as sent', target: '/search?q=../x&a=%2F', path: '/search?q=../x&a=%2F' },
  { name: 'dot-dot climbs', target: '/public/../admin', path: '/admin' },
  { name: 'dot-dot at the root stays at the root', target: '/../../admin', path: '/admin' },
  { name: 'single dot removed', target: '/a/./b', path: '/a/b' },
  { name: 'trailing dot-dot leaves a directory', target: '/a/b/..', path: '/a/' },
  { name: 'trailing dot leaves a directory', target: '/a/.', path: '/a/' },
  { name: 'encoded dots are dots', target: '/public/%2e%2e/admin', path: '/admin' },
  { name: 'mixed-case encoded dots', target: '/public/%2E%2e/admin', path: '/admin' },
  { name: 'half-encoded dot-dot', target: '/public/.%2e/admin', path: '/admin' },
  { name: 'merged slashes', target: '//admin', path: '/admin' },
  { name: 'many slashes', target: '/public///x//y', path: '/public/x/y' },
  { name: 'empty segment then dot-dot', target: '/a//../b', path: '/a/b' },
  { name: 'encoded unreserved decoded', target: '/%61dmin', path: '/admin' },
  { name: 'encoded tilde decoded', target: '/%7Euser', path: '/~user' },
  { name: 'other escapes upper-cased', target: '/a%3fb', path: '/a%3Fb' },
  { name: 'space-like escapes kept', target: '/a%20b', path: '/a%20b' },
  { name: 'backslash is a slash', target: '/public\\..\\admin', path: '/admin' },
  { name: 'characters outside pchar encoded', target: '/a"b<c>', path: '/a%22b%3Cc%3E' },
  {
    name: 'encoded slash unescaped and redirected',
    target: '/public%2F..%2Fadmin',
    path: '/admin',
    redirect: true,
  },
  { name: 'lower-case encoded slash', target: '/a%2fb', path: '/a/b', redirect: true },
  { name: 'encoded backslash', target: '/a%5Cb', path: '/a/b', redirect: true },
  {
    name: 'encoded slash in the query is not touched',
    target: '/a?x=%2F',
    path: '/a?x=%2F',
    redirect: false,
  },
  { name: 'bad escape', target: '/a%zz' },
  { name: 'truncated escape', target: '/a%2' },
  { name: 'fragment', target: '/a#b' },
  { name: 'not a path', target: 'admin' },
  {
    name: 'absolute-form',
    target: 'http://Shop.Example:8080/a/../b?x',
    path: '/b?x',
    authority: 'shop.example:8080',
  },
  { name: 'absolute-form without path', target: 'http://shop.example', path: '/', authority: 'shop.example' },
  {
    name: 'absolute-form with only a query',
    target: 'http://shop.example?x=1',
    path: '/?x=1',
    authority: 'shop.example',
  },
  { name: 'absolute-form with userinfo', target: 'http://u@shop.example/' },
  { name: 'https absolute-form', target: 'https://shop.example/' },
  { name: 'asterisk for OPTIONS', method: 'OPTIONS', target: '*', path: '*' },
  { name: 'asterisk for GET', target: '*' },
];

describe('normalizeTarget (Envoy normalize_path + merge_slashes + UNESCAPE_AND_REDIRECT)', () => {
  for (const r of rows) {
    test(r.name, () => {
      const got = normalizeTarget(r.method ?? 'GET', r.target);
      if (r.path === undefined) {
        assert.equal(got.ok, false, JSON.stringify(got));
        return;
      }
      assert.ok(got.ok, JSON.stringify(got));
      assert.equal(got.path, r.path);
      assert.equal(got.redirect, r.redirect ?? false);
      assert.equal(got.authority, r.authority);
    });
  }
});

describe('removeDotSegments (RFC 3986 §5.2.4 examples on absolute paths)', () => {
  const cases: Array<[string, string]> = [
    ['/a/b/c/./../../g', '/a/g'],
    ['/mid/content=5/../6', '/mid/6'],
    ['/', '/'],
    ['/..', '/'],
    ['/a/..', '/'],
  ];
  for (const [input, want] of cases) test(input, () => assert.equal(removeDotSegments(input), want));
});

describe('the shortcut for paths already canonical changes no result', () => {
  // Paths over an alphabet of every character class canonicalPath treats apart, and the whole
  // target as normalizeOriginForm did before the shortcut (from the same pieces).
  const alphabet = [
    '/',
    '/',
    '.',
    '..',
    'a',
    'Z',
    '0',
    '-',
    '~',
    '%',
    '2',
    'f',
    'F',
    'e',
    '\\',
    '"',
    ' ',
    '@',
    '=',
    'é',
    '?',
    '&',
  ];
  let seed = 42;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const gen = (): string => {
    let s = rnd(8) === 0 ? '' : '/';
    for (let i = rnd(12); i > 0; i--) s += alphabet[rnd(alphabet.length)];
    return s;
  };
  const before = (target: string) => {
    const q = target.indexOf('?');
    let path = q < 0 ? target : target.slice(0, q);
    const query = q < 0 ? '' : target.slice(q);
    let redirect = false;
    if (/%(?:2f|5c)/i.test(path)) {
      path = path.replace(/%(?:2f|5c)/gi, (m) => (m[2] === 'f' || m[2] === 'F' ? '/' : '\\'));
      redirect = true;
    }
    const canon = canonicalPathByChar(path);
    if (typeof canon !== 'string') return { ok: false, error: canon.error };
    return { ok: true, path: mergeSlashes(canon) + query, redirect };
  };
  test('canonicalPath equals its character-by-character form on 20,000 generated paths', () => {
    for (let i = 0; i < 20_000; i++) {
      const p = gen();
      assert.deepEqual(canonicalPath(p), canonicalPathByChar(p), JSON.stringify(p));
    }
  });
  test('normalizeTarget on 20,000 generated origin-form targets is what it was', () => {
    let fast = 0;
    for (let i = 0; i < 20_000; i++) {
      const t = `/${gen()}`;
      const r = normalizeTarget('GET', t);
      if (r.ok && r.path === t) fast++;
      if (t.includes('#')) continue;
      assert.deepEqual(r, before(t), JSON.stringify(t));
    }
    // The rows above reach the shortcut too, not only the slow path.
    assert.ok(fast > 1000, `only ${fast} targets unchanged`);
  });
});
