import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeTarget, removeDotSegments } from './normalize.ts';

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
