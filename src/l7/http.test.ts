import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SourcePos } from '../policy-api/issue.ts';
import type { PortRuleHTTP } from '../policy-api/types.ts';
import {
  type CompileHTTPOptions,
  compileHTTPRules,
  grpcRequest,
  type HeaderAction,
  type HTTPRequest,
  matchHTTP,
  parseHeaderRule,
} from './http.ts';

const pos: SourcePos = { file: 't.yaml', line: 1, column: 1 };
const rule = (r: Omit<PortRuleHTTP, 'pos'>): PortRuleHTTP => ({ pos, ...r });
const get = (path: string, extra: Partial<HTTPRequest> = {}): HTTPRequest => ({
  method: 'GET',
  path,
  headers: [],
  ...extra,
});

interface Row {
  name: string;
  rules: PortRuleHTTP[];
  req: HTTPRequest;
  allowed: boolean;
  ruleIndex?: number;
  actions?: HeaderAction[];
  opts?: CompileHTTPOptions;
}

const secrets: CompileHTTPOptions = {
  namespace: 'web',
  secrets: (ns, name) =>
    ns === 'web' && name === 'token' ? 's3cret' : ns === 'web' && name === 'empty' ? '' : undefined,
};

const rows: Row[] = [
  { name: 'zero rules admit nothing', rules: [], req: get('/'), allowed: false },
  {
    name: 'empty rule admits all',
    rules: [rule({})],
    req: get('/x', { method: 'DELETE' }),
    allowed: true,
    ruleIndex: 0,
  },
  { name: 'path whole value', rules: [rule({ path: '/public' })], req: get('/public'), allowed: true },
  { name: 'path anchored at end', rules: [rule({ path: '/public' })], req: get('/public/x'), allowed: false },
  {
    name: 'path anchored at start',
    rules: [rule({ path: '/public' })],
    req: get('/x/public'),
    allowed: false,
  },
  { name: 'path prefix via .*', rules: [rule({ path: '/public.*' })], req: get('/public/x'), allowed: true },
  {
    name: 'path alternation stays anchored',
    rules: [rule({ path: '/a|/b' })],
    req: get('/b/c'),
    allowed: false,
  },
  // conformance: http-path-includes-query-string
  {
    name: 'query string: plain path',
    rules: [rule({ method: 'GET', path: '/search' })],
    req: get('/search'),
    allowed: true,
  },
  {
    name: 'query string: path with query',
    rules: [rule({ method: 'GET', path: '/search' })],
    req: get('/search?q=shoes'),
    allowed: false,
  },
  // conformance: http-method-regex-alternation
  {
    name: 'method alternation HEAD',
    rules: [rule({ method: 'GET|HEAD' })],
    req: get('/anything', { method: 'HEAD' }),
    allowed: true,
  },
  { name: 'method alternation GET', rules: [rule({ method: 'GET|HEAD' })], req: get('/x/y'), allowed: true },
  {
    name: 'method alternation DELETE',
    rules: [rule({ method: 'GET|HEAD' })],
    req: get('/x', { method: 'DELETE' }),
    allowed: false,
  },
  {
    name: 'method case-sensitive',
    rules: [rule({ method: 'GET' })],
    req: get('/', { method: 'get' }),
    allowed: false,
  },
  {
    name: 'method no substring',
    rules: [rule({ method: 'GET' })],
    req: get('/', { method: 'GETX' }),
    allowed: false,
  },
  // conformance: http-host-regex-escaped-vs-unescaped
  {
    name: 'host escaped exact',
    rules: [rule({ host: 'api\\.shop\\.example' })],
    req: get('/', { host: 'api.shop.example' }),
    allowed: true,
  },
  {
    name: 'host escaped rejects X',
    rules: [rule({ host: 'api\\.shop\\.example' })],
    req: get('/', { host: 'apiXshop.example' }),
    allowed: false,
  },
  {
    name: 'host escaped anchored',
    rules: [rule({ host: 'api\\.shop\\.example' })],
    req: get('/', { host: 'evil.api.shop.example' }),
    allowed: false,
  },
  {
    name: 'host unescaped dot any char',
    rules: [rule({ host: 'api.shop.example' })],
    req: get('/', { host: 'apiXshop.example' }),
    allowed: true,
  },
  {
    name: 'host includes port',
    rules: [rule({ host: 'a\\.com' })],
    req: get('/', { host: 'a.com:8080' }),
    allowed: false,
  },
  {
    name: 'host with port regex',
    rules: [rule({ host: 'a\\.com(:[0-9]+)?' })],
    req: get('/', { host: 'a.com:8080' }),
    allowed: true,
  },
  { name: 'host rule, no host', rules: [rule({ host: '.*' })], req: get('/'), allowed: false },
  {
    name: 'fields ANDed',
    rules: [rule({ method: 'GET', path: '/a' })],
    req: get('/a', { method: 'POST' }),
    allowed: false,
  },
  {
    name: 'rules ORed, first match wins',
    rules: [rule({ method: 'POST' }), rule({ path: '/a' }), rule({})],
    req: get('/a'),
    allowed: true,
    ruleIndex: 1,
  },
  {
    name: 'empty strings mean any',
    rules: [rule({ method: '', path: '', host: '' })],
    req: get('/z'),
    allowed: true,
  },
  // headers:
  {
    name: 'header presence',
    rules: [rule({ headers: ['X-Token'] })],
    req: get('/', { headers: [['x-token', '']] }),
    allowed: true,
  },
  { name: 'header presence missing', rules: [rule({ headers: ['X-Token'] })], req: get('/'), allowed: false },
  {
    name: 'header value exact',
    rules: [rule({ headers: ['X-Env: prod'] })],
    req: get('/', { headers: { 'X-ENV': 'prod' } }),
    allowed: true,
  },
  {
    name: 'header value no regex',
    rules: [rule({ headers: ['X-Env: pr.d'] })],
    req: get('/', { headers: { 'x-env': 'prod' } }),
    allowed: false,
  },
  {
    name: 'header value case-sensitive',
    rules: [rule({ headers: ['X-Env: prod'] })],
    req: get('/', { headers: { 'x-env': 'PROD' } }),
    allowed: false,
  },
  {
    name: 'header value keeps later spaces',
    rules: [rule({ headers: ['X-A: b c'] })],
    req: get('/', { headers: { 'x-a': 'b c' } }),
    allowed: true,
  },
  {
    name: 'header without colon',
    rules: [rule({ headers: ['X-A b'] })],
    req: get('/', { headers: { 'x-a': 'b' } }),
    allowed: true,
  },
  {
    name: 'repeated header joined',
    rules: [rule({ headers: ['X-A: 1,2'] })],
    req: get('/', {
      headers: [
        ['x-a', '1'],
        ['X-A', '2'],
      ],
    }),
    allowed: true,
  },
  { name: 'pseudo-header :path', rules: [rule({ headers: [':path: /q'] })], req: get('/q'), allowed: true },
  {
    name: 'weird header names ignored',
    rules: [rule({ headers: ['X-A'] })],
    req: get('/', { headers: { 'x-a\u0000': '1', 'x-\u212A': '1', '': '1' } }),
    allowed: false,
  },
  {
    name: 'non-string header values ignored',
    rules: [rule({ headers: ['X-A'] })],
    req: get('/', { headers: { 'x-a': 5 as unknown as string } }),
    allowed: false,
  },
  {
    name: '__proto__ header',
    rules: [rule({ headers: ['__proto__: x'] })],
    req: get('/', { headers: [['__proto__', 'x']] }),
    allowed: true,
  },
  // headerMatches:
  {
    name: 'headerMatch equal',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v' }] })],
    req: get('/', { headers: { 'x-a': 'v' } }),
    allowed: true,
    actions: [],
  },
  {
    name: 'headerMatch mismatch fails',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v' }] })],
    req: get('/', { headers: { 'x-a': 'w' } }),
    allowed: false,
  },
  {
    name: 'headerMatch presence',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A' }] })],
    req: get('/', { headers: { 'x-a': 'w' } }),
    allowed: true,
  },
  {
    name: 'headerMatch presence missing',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A' }] })],
    req: get('/'),
    allowed: false,
  },
  {
    name: 'headerMatch LOG passes and logs',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v', mismatch: 'LOG' }] })],
    req: get('/', { headers: { 'x-a': 'w' } }),
    allowed: true,
    actions: [{ op: 'LOG', name: 'x-a', value: 'v' }],
  },
  {
    name: 'headerMatch ADD appends',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v', mismatch: 'ADD' }] })],
    req: get('/', { headers: { 'x-a': 'w' } }),
    allowed: true,
    actions: [{ op: 'ADD', name: 'x-a', value: 'v' }],
  },
  {
    name: 'headerMatch DELETE removes',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v', mismatch: 'DELETE' }] })],
    req: get('/', { headers: { 'x-a': 'w' } }),
    allowed: true,
    actions: [{ op: 'DELETE', name: 'x-a' }],
  },
  {
    name: 'headerMatch REPLACE when missing',
    rules: [rule({ headerMatches: [{ pos, name: 'X-A', value: 'v', mismatch: 'REPLACE' }] })],
    req: get('/'),
    allowed: true,
    actions: [{ op: 'REPLACE', name: 'x-a', value: 'v' }],
  },
  {
    name: 'headerMatch action only after other fields pass',
    rules: [rule({ path: '/a', headerMatches: [{ pos, name: 'X-A', value: 'v', mismatch: 'REPLACE' }] })],
    req: get('/b'),
    allowed: false,
  },
  {
    name: 'headerMatch secret wins',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', value: 'fallback', secret: { name: 'token' } }] })],
    req: get('/', { headers: { auth: 's3cret' } }),
    allowed: true,
    opts: secrets,
  },
  {
    name: 'headerMatch secret wins over value',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', value: 'fallback', secret: { name: 'token' } }] })],
    req: get('/', { headers: { auth: 'fallback' } }),
    allowed: false,
    opts: secrets,
  },
  {
    name: 'headerMatch missing secret uses value',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', value: 'fallback', secret: { name: 'nope' } }] })],
    req: get('/', { headers: { auth: 'fallback' } }),
    allowed: true,
    opts: secrets,
  },
  {
    name: 'headerMatch missing secret no value never matches',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', secret: { name: 'nope' }, mismatch: 'LOG' }] })],
    req: get('/', { headers: { auth: 'x' } }),
    allowed: false,
    opts: secrets,
  },
  {
    name: 'headerMatch secret without resolver never matches',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', secret: { name: 'token' } }] })],
    req: get('/', { headers: { auth: 's3cret' } }),
    allowed: false,
  },
  {
    name: 'headerMatch empty secret is presence',
    rules: [rule({ headerMatches: [{ pos, name: 'Auth', secret: { name: 'empty' } }] })],
    req: get('/', { headers: { auth: 'anything' } }),
    allowed: true,
    opts: secrets,
  },
  {
    name: 'headerMatch LOG hides secret',
    rules: [
      rule({
        headerMatches: [{ pos, name: 'Auth', secret: { namespace: 'web', name: 'token' }, mismatch: 'LOG' }],
      }),
    ],
    req: get('/', { headers: { auth: 'guess' } }),
    allowed: true,
    actions: [{ op: 'LOG', name: 'auth' }],
    opts: secrets,
  },
  {
    name: 'headerMatch bad action never matches',
    rules: [rule({ headerMatches: [{ pos, name: 'X', mismatch: 'DROP' as 'LOG' }] })],
    req: get('/', { headers: { x: '1' } }),
    allowed: false,
  },
  {
    name: 'invalid regex never matches',
    rules: [rule({ path: '*' }), rule({ path: '/ok' })],
    req: get('/ok'),
    allowed: true,
    ruleIndex: 1,
  },
  { name: 'backreference rejected (RE2)', rules: [rule({ path: '(a)\\1' })], req: get('aa'), allowed: false },
  // literal fast path must agree with RE2
  {
    name: 'literal alternation with empty arm',
    rules: [rule({ method: 'GET|' })],
    req: get('/', { method: '' }),
    allowed: true,
  },
  {
    name: 'literal alternation no partial',
    rules: [rule({ method: 'GET|PUT' })],
    req: get('/', { method: 'GETPUT' }),
    allowed: false,
  },
  { name: 'literal non-ASCII', rules: [rule({ path: '/café' })], req: get('/café'), allowed: true },
  {
    name: 'literal with dash and slash',
    rules: [rule({ path: '/a-b/c_d' })],
    req: get('/a-b/c_d'),
    allowed: true,
  },
  // `literal.*` prefix fast path must agree with RE2 (`.` does not match a newline)
  {
    name: 'prefix: longer path',
    rules: [rule({ path: '/public/.*' })],
    req: get('/public/a/b?x=1'),
    allowed: true,
  },
  {
    name: 'prefix: exactly the prefix',
    rules: [rule({ path: '/public/.*' })],
    req: get('/public/'),
    allowed: true,
  },
  { name: 'prefix: shorter', rules: [rule({ path: '/public/.*' })], req: get('/public'), allowed: false },
  {
    name: 'prefix: newline after it',
    rules: [rule({ path: '/public/.*' })],
    req: get('/public/a\nb'),
    allowed: false,
  },
  { name: 'prefix: newline inside it', rules: [rule({ path: 'a\n.*' })], req: get('a\nb'), allowed: true },
  { name: 'prefix: .* alone, empty', rules: [rule({ path: '.*' })], req: get(''), allowed: true },
  { name: 'prefix: .* alone, newline', rules: [rule({ path: '.*' })], req: get('\n'), allowed: false },
  { name: 'prefix with an escape: RE2', rules: [rule({ path: '/a\\..*' })], req: get('/a.b'), allowed: true },
  {
    name: 'prefix with an escape: RE2, no',
    rules: [rule({ path: '/a\\..*' })],
    req: get('/ab'),
    allowed: false,
  },
  { name: 'not a prefix: a.*b', rules: [rule({ path: '/a.*b' })], req: get('/axxb'), allowed: true },
  { name: 'not a prefix: (x|y).*', rules: [rule({ path: '(/x|/y).*' })], req: get('/yz'), allowed: true },
  {
    name: 'method prefix',
    rules: [rule({ method: 'P.*' })],
    req: get('/', { method: 'PATCH' }),
    allowed: true,
  },
  // gRPC
  {
    name: 'gRPC service method',
    rules: [rule({ method: 'POST', path: '/shop\\.Cart/Add' })],
    req: grpcRequest('shop.Cart', 'Add'),
    allowed: true,
  },
  {
    name: 'gRPC service wildcard',
    rules: [rule({ path: '/shop\\.Cart/.*' })],
    req: grpcRequest('shop.Cart', 'Remove'),
    allowed: true,
  },
  {
    name: 'gRPC other service',
    rules: [rule({ path: '/shop\\.Cart/.*' })],
    req: grpcRequest('shop.Order', 'Add'),
    allowed: false,
  },
  {
    name: 'gRPC content-type header',
    rules: [rule({ headers: ['content-type: application/grpc'] })],
    req: grpcRequest('a.B', 'C'),
    allowed: true,
  },
  // hostile / non-ASCII
  { name: 'non-ASCII path', rules: [rule({ path: '/caf.' })], req: get('/café'), allowed: true },
  { name: 'astral char is one char', rules: [rule({ path: '/.' })], req: get('/😀'), allowed: true },
  {
    name: 'lone surrogate fails closed',
    rules: [rule({ path: '/..' })],
    req: get('/\uDC00\uD800'),
    allowed: false,
  },
  {
    name: 'lone surrogate fails every rule that checks the field, not only the first',
    rules: [rule({ path: '/x.*' }), rule({ path: '/.*' })],
    req: get('/\uD800'),
    allowed: false,
  },
  {
    name: 'lone surrogate in a field no rule checks: the rule still matches',
    rules: [rule({ method: 'GET' })],
    req: get('/\uD800'),
    allowed: true,
  },
  {
    name: 'lone surrogate in the host fails a host rule',
    rules: [rule({ host: '.*' })],
    req: get('/', { host: 'a\uDC00' }),
    allowed: false,
  },
  { name: 'NUL in path', rules: [rule({ path: '/a' })], req: get('/a\u0000'), allowed: false },
  {
    name: 'non-string path',
    rules: [rule({ path: '.*' })],
    req: get(undefined as unknown as string),
    allowed: false,
  },
];

describe('matchHTTP', () => {
  for (const row of rows) {
    test(row.name, () => {
      const m = matchHTTP(compileHTTPRules(row.rules, row.opts), row.req);
      assert.equal(m.allowed, row.allowed, m.reason);
      if (row.ruleIndex !== undefined) assert.equal(m.ruleIndex, row.ruleIndex);
      if (row.actions !== undefined) assert.deepEqual(m.headerActions, row.actions);
      if (!row.allowed) {
        assert.equal(m.ruleIndex, undefined);
        assert.ok(m.reason);
      }
    });
  }

  test('hostile: 1 MB path and (a*)*b stay linear', () => {
    const p = compileHTTPRules([rule({ path: '(a*)*b' }), rule({ path: '/public.*' })]);
    const t0 = performance.now();
    assert.equal(matchHTTP(p, get('a'.repeat(1 << 20))).allowed, false);
    assert.equal(matchHTTP(p, get(`/public${'x'.repeat(1 << 20)}`)).allowed, true);
    assert.ok(performance.now() - t0 < 5000);
  });
  test('hostile: many headers', () => {
    const headers: Array<[string, string]> = [];
    for (let i = 0; i < 10_000; i++) headers.push([`x-${i}`, 'v']);
    const p = compileHTTPRules([rule({ headers: ['x-9999: v'] })]);
    assert.equal(matchHTTP(p, get('/', { headers })).allowed, true);
  });
  test('malformed request object', () => {
    assert.equal(matchHTTP(compileHTTPRules([rule({})]), null as unknown as HTTPRequest).allowed, false);
  });
  test('compile errors listed', () => {
    const p = compileHTTPRules([rule({ path: '*' }), rule({}), rule({ headerMatches: [{ pos, name: '' }] })]);
    assert.deepEqual(
      p.errors.map((e) => e.ruleIndex),
      [0, 2],
    );
  });
});

describe('parseHeaderRule', () => {
  const rows: Array<[string, string, { name: string; value?: string }]> = [
    ['presence', 'X-Token', { name: 'x-token' }],
    ['colon and value', 'X-Env: prod', { name: 'x-env', value: 'prod' }],
    ['double colon dropped', 'X-Env:: prod', { name: 'x-env', value: 'prod' }],
    ['split at first space only', 'X-A:  b c', { name: 'x-a', value: ' b c' }],
    ['presence keeps colon', 'X-A:', { name: 'x-a:' }],
  ];
  for (const [name, input, want] of rows) test(name, () => assert.deepEqual(parseHeaderRule(input), want));
});

describe('grpcRequest', () => {
  test('shape', () => {
    assert.deepEqual(grpcRequest('pkg.Svc', 'Method'), {
      method: 'POST',
      path: '/pkg.Svc/Method',
      headers: [['content-type', 'application/grpc']],
    });
  });
});

// Item 9: a rule's pattern is compiled alone before it is anchored, so an unbalanced pattern is a
// rule that never matches (deny), and RE2's \Q… without \E cannot quote the anchors away.
interface InjectionRow {
  name: string;
  rule: Omit<PortRuleHTTP, 'pos'>;
  /** Requests this rule must admit (whole-value match of the whole pattern, as Envoy). */
  allow: HTTPRequest[];
  /** Requests it must refuse. */
  deny: HTTPRequest[];
}
const ADMIN = get('/admin/delete-all');
const injectionRows: InjectionRow[] = [
  {
    name: 'item 9: path /public)|( denies everything',
    rule: { path: '/public)|(' },
    allow: [],
    deny: [ADMIN, get('/public'), get('')],
  },
  {
    name: 'item 9: path /x)|(.* denies everything',
    rule: { path: '/x)|(.*' },
    allow: [],
    deny: [ADMIN, get('/x')],
  },
  {
    name: 'item 9: method GET)|( denies everything',
    rule: { method: 'GET)|(' },
    allow: [],
    deny: [ADMIN, get('/', { method: 'DELETE' })],
  },
  {
    name: 'item 9: host a)|( denies everything',
    rule: { host: 'a)|(' },
    allow: [],
    deny: [get('/', { host: 'evil' }), get('/', { host: 'a' })],
  },
  {
    name: 'item 9: path (/public denies everything',
    rule: { path: '(/public' },
    allow: [],
    deny: [ADMIN, get('/public')],
  },
  {
    name: 'item 9: /a\\Q matches /a literally',
    rule: { path: '/a\\Q' },
    allow: [get('/a')],
    deny: [ADMIN, get('/a\\Q'), get('/a)$')],
  },
  {
    name: 'item 9: \\Qa)b matches a)b',
    rule: { path: '\\Qa)b' },
    allow: [get('a)b')],
    deny: [ADMIN, get('a'), get('a)b)$')],
  },
  {
    name: 'item 9: /public\\Q)|( is one literal',
    rule: { path: '/public\\Q)|(' },
    allow: [get('/public)|(')],
    deny: [ADMIN, get('/public'), get('')],
  },
  {
    name: 'item 9: \\Q/admin\\E quotes the slash as a slash',
    rule: { path: '\\Q/admin\\E' },
    allow: [get('/admin')],
    deny: [get('\\/admin'), ADMIN],
  },
  {
    name: 'item 9: /a\\Q/b.* quotes to the end',
    rule: { path: '/a\\Q/b.*' },
    allow: [get('/a/b.*')],
    deny: [get('/a/bc'), get('/a\\/b.*')],
  },
  {
    name: 'item 9: \\u0061 is no RE2 escape: never matches',
    rule: { path: '/\\u0061' },
    allow: [],
    deny: [get('/a'), ADMIN],
  },
  {
    name: 'item 9: (?i)get ignores case, whole value',
    rule: { method: '(?i)get' },
    allow: [get('/'), get('/', { method: 'gEt' })],
    deny: [get('/', { method: 'GETX' })],
  },
  {
    name: 'item 9: a|b is whole-value alternation',
    rule: { path: '/a|/b' },
    allow: [get('/a'), get('/b')],
    deny: [ADMIN, get('/a/b'), get('/ab'), get('x/b')],
  },
  {
    name: 'item 9: /public.* still a prefix match',
    rule: { path: '/public.*' },
    allow: [get('/public/x')],
    deny: [ADMIN],
  },
];
for (const row of injectionRows) {
  test(`http regex: ${row.name}`, () => {
    const policy = compileHTTPRules([rule(row.rule)]);
    for (const req of row.allow)
      assert.equal(matchHTTP(policy, req).allowed, true, `allow ${JSON.stringify(req)}`);
    for (const req of row.deny)
      assert.equal(matchHTTP(policy, req).allowed, false, `deny ${JSON.stringify(req)}`);
    if (row.allow.length === 0) assert.equal(policy.errors.length, 1, 'the rule is marked invalid');
  });
}

describe('the literal.* fast path agrees with RE2 on random values', () => {
  test('prefix patterns, values with newlines and non-ASCII', async () => {
    const { FullMatchRegex, fullMatchRegex } = await import('../core/regex.ts');
    const prefixes = ['', '/', '/public/', '/a-b_c~', 'GET', '/café/', 'a\n'];
    const alphabet = ['a', '/', '\n', 'é', '.', '-', '\r', ' ', 'public'];
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (const p of prefixes) {
      const source = `${p}.*`;
      const [r] = compileHTTPRules([rule({ path: source })]).rules;
      const re = fullMatchRegex(source);
      assert.ok(!(r!.path instanceof FullMatchRegex), `${source}: the string fast path, not RE2`);
      for (let i = 0; i < 300; i++) {
        let v = rnd(3) === 0 ? '' : p;
        for (let k = rnd(6); k > 0; k--) v += alphabet[rnd(alphabet.length)];
        assert.equal(r!.path!.test(v), re.test(v), `${JSON.stringify(source)} on ${JSON.stringify(v)}`);
      }
    }
  });
});
