import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { matchL7 } from '../../policy/l7match.ts';
import type { PortRuleHTTP } from '../../policy-api/types.ts';
import type { HTTPRuleSet } from './context.ts';
import { applyHeaderActions, HTTPJudge, type JudgeRequest, loadSecretsDir, secretsFromDir } from './judge.ts';
import { pos, rules } from './test-support.ts';

const set = (direction: 'INGRESS' | 'EGRESS', rs: PortRuleHTTP[]): HTTPRuleSet => ({
  direction,
  rules: rs,
  namespace: 'web',
});
const req = (
  method: string,
  path: string,
  headers: Array<[string, string]> = [],
  host = 'shop',
): JudgeRequest => ({
  method,
  path,
  host,
  headers: [['host', host], ...headers],
});

interface Row {
  name: string;
  sets: HTTPRuleSet[];
  req: JudgeRequest;
  allowed: boolean;
  /** Headers forwarded (only checked when given). */
  headers?: Array<[string, string]>;
  logged?: string[];
}

const secretDir = mkdtempSync(join(tmpdir(), 'seawall-secrets-'));
mkdirSync(join(secretDir, 'web'));
writeFileSync(join(secretDir, 'web', 'token'), 's3cret\n');
process.on('exit', () => rmSync(secretDir, { recursive: true, force: true }));

const rows: Row[] = [
  { name: 'no rule sets: denied', sets: [], req: req('GET', '/'), allowed: false },
  { name: 'empty rule list: denied', sets: [set('INGRESS', [])], req: req('GET', '/'), allowed: false },
  {
    name: 'L7 wildcard (one empty rule): allowed',
    sets: [set('INGRESS', rules({}))],
    req: req('DELETE', '/x'),
    allowed: true,
  },
  {
    name: 'method allowed',
    sets: [set('INGRESS', rules({ method: 'GET' }))],
    req: req('GET', '/'),
    allowed: true,
  },
  {
    name: 'method denied',
    sets: [set('INGRESS', rules({ method: 'GET' }))],
    req: req('POST', '/'),
    allowed: false,
  },
  {
    name: 'path is a whole-value match with the query',
    sets: [set('INGRESS', rules({ path: '/public/.*' }))],
    req: req('GET', '/public/x?y=1'),
    allowed: true,
  },
  {
    name: 'path prefix is not enough',
    sets: [set('INGRESS', rules({ path: '/public' }))],
    req: req('GET', '/public/x'),
    allowed: false,
  },
  {
    name: 'host matched with port',
    sets: [set('INGRESS', rules({ host: 'shop(:[0-9]+)?' }))],
    req: req('GET', '/', [], 'shop:8080'),
    allowed: true,
  },
  {
    name: 'host mismatch',
    sets: [set('INGRESS', rules({ host: 'shop' }))],
    req: req('GET', '/', [], 'evil'),
    allowed: false,
  },
  {
    name: 'header present',
    sets: [set('INGRESS', rules({ headers: ['X-Env: prod'] }))],
    req: req('GET', '/', [['x-env', 'prod']]),
    allowed: true,
  },
  {
    name: 'header wrong value',
    sets: [set('INGRESS', rules({ headers: ['X-Env: prod'] }))],
    req: req('GET', '/', [['x-env', 'dev']]),
    allowed: false,
  },
  {
    name: 'egress and ingress both allow',
    sets: [set('EGRESS', rules({ method: 'GET' })), set('INGRESS', rules({ path: '/a' }))],
    req: req('GET', '/a'),
    allowed: true,
  },
  {
    name: 'egress allows, ingress denies',
    sets: [set('EGRESS', rules({ method: 'GET' })), set('INGRESS', rules({ path: '/b' }))],
    req: req('GET', '/a'),
    allowed: false,
  },
  {
    name: 'ingress allows, egress denies',
    sets: [set('INGRESS', rules({ method: 'GET' })), set('EGRESS', rules({ path: '/b' }))],
    req: req('GET', '/a'),
    allowed: false,
  },
  {
    name: 'ingress sees the header egress added',
    sets: [
      set('INGRESS', rules({ headers: ['x-team: a'] })),
      set('EGRESS', rules({ headerMatches: [{ name: 'X-Team', value: 'a', mismatch: 'ADD' }] })),
    ],
    req: req('GET', '/'),
    allowed: true,
    headers: [
      ['host', 'shop'],
      ['x-team', 'a'],
    ],
  },
  {
    name: 'ADD appends',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-a', value: '1', mismatch: 'ADD' }] }))],
    req: req('GET', '/', [['x-a', '2']]),
    allowed: true,
    headers: [
      ['host', 'shop'],
      ['x-a', '2'],
      ['x-a', '1'],
    ],
  },
  {
    name: 'REPLACE sets in place',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-a', value: '1', mismatch: 'REPLACE' }] }))],
    req: req('GET', '/', [
      ['x-a', '2'],
      ['x-b', 'b'],
      ['x-a', '3'],
    ]),
    allowed: true,
    headers: [
      ['host', 'shop'],
      ['x-a', '1'],
      ['x-b', 'b'],
    ],
  },
  {
    name: 'DELETE removes every value',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-a', value: '1', mismatch: 'DELETE' }] }))],
    req: req('GET', '/', [
      ['x-a', '2'],
      ['x-a', '3'],
    ]),
    allowed: true,
    headers: [['host', 'shop']],
  },
  {
    name: 'LOG forwards unchanged and is logged',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-a', value: '1', mismatch: 'LOG' }] }))],
    req: req('GET', '/', [['x-a', '2']]),
    allowed: true,
    headers: [
      ['host', 'shop'],
      ['x-a', '2'],
    ],
    logged: ['x-a'],
  },
  {
    name: 'headerMatches without action: mismatch denies',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-a', value: '1' }] }))],
    req: req('GET', '/', [['x-a', '2']]),
    allowed: false,
  },
  {
    name: 'secret from the directory matches',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-token', secret: { name: 'token' } }] }))],
    req: req('GET', '/', [['x-token', 's3cret']]),
    allowed: true,
  },
  {
    name: 'secret from the directory, wrong value',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-token', secret: { name: 'token' } }] }))],
    req: req('GET', '/', [['x-token', 'guess']]),
    allowed: false,
  },
  {
    name: 'missing secret without value never matches',
    sets: [set('INGRESS', rules({ headerMatches: [{ name: 'x-token', secret: { name: 'absent' } }] }))],
    req: req('GET', '/', [['x-token', '']]),
    allowed: false,
  },
  {
    name: 'secret name that climbs out of the directory is not read',
    sets: [
      set(
        'INGRESS',
        rules({ headerMatches: [{ name: 'x-token', secret: { namespace: '..', name: 'web' } }] }),
      ),
    ],
    req: req('GET', '/', [['x-token', '']]),
    allowed: false,
  },
  {
    name: 'bad regex never matches',
    sets: [set('INGRESS', rules({ path: '(' }))],
    req: req('GET', '('),
    allowed: false,
  },
];

describe('HTTPJudge', () => {
  const judge = new HTTPJudge({ secrets: secretsFromDir(secretDir) });
  for (const r of rows) {
    test(r.name, () => {
      const j = judge.judge(r.sets, r.req);
      assert.equal(j.allowed, r.allowed, j.reason);
      if (!r.allowed) assert.ok(j.reason !== undefined && j.reason.length > 0);
      if (r.headers !== undefined) assert.deepEqual(j.headers, r.headers);
      if (r.logged !== undefined)
        assert.deepEqual(
          j.logged.map((a) => a.name),
          r.logged,
        );
    });
  }

  test('a rule-set getter that throws is a denial', () => {
    const bad = {
      direction: 'INGRESS',
      get rules(): PortRuleHTTP[] {
        throw new Error('boom');
      },
    } as HTTPRuleSet;
    const j = new HTTPJudge().judge([bad], req('GET', '/'));
    assert.equal(j.allowed, false);
    assert.match(j.reason ?? '', /policy engine error: boom/);
  });

  test('secret-compared headers are reported for redaction', () => {
    const j = judge.judge(
      [set('INGRESS', rules({ headerMatches: [{ name: 'X-Token', secret: { name: 'token' } }] }))],
      req('GET', '/', [['x-token', 's3cret']]),
    );
    assert.deepEqual([...j.secretHeaders], ['x-token']);
  });
});

describe('decision memo', () => {
  test('a header rule is never answered from a decision taken for other headers', () => {
    const j = new HTTPJudge();
    const s = set('INGRESS', rules({ headers: ['X-Env: prod'] }));
    assert.equal(j.judge([s], req('GET', '/', [['x-env', 'prod']])).allowed, true);
    assert.equal(j.judge([s], req('GET', '/', [['x-env', 'dev']])).allowed, false);
    assert.equal(j.judge([s], req('GET', '/', [['x-env', 'prod']])).allowed, true);
  });

  test('fields cannot run into each other in the key', () => {
    const j = new HTTPJudge();
    const s = set('INGRESS', rules({ method: 'GET', path: '/a' }));
    assert.equal(j.judge([s], { method: 'GET', path: '/a', headers: [] }).allowed, true);
    assert.equal(j.judge([s], { method: 'GET/', path: 'a', headers: [] }).allowed, false);
  });

  test('a shared judge answers as a fresh one, request after request', () => {
    const shared = new HTTPJudge();
    const s = set(
      'INGRESS',
      rules({ method: 'GET', path: '/public/.*' }, { method: 'POST', host: 'shop', headers: ['x-env'] }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST'),
        fc.constantFrom('/public/a', '/admin', '/public/b?x'),
        fc.constantFrom('shop', 'evil'),
        fc.constantFrom<Array<[string, string]>>([], [['x-env', '1']]),
        (m, path, host, h) => {
          const r = req(m, path, h, host);
          assert.deepEqual(shared.judge([s], r).allowed, new HTTPJudge().judge([s], r).allowed);
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });
});

describe('decision memo of sets that read no header (method → host → path)', () => {
  const plainSet = set(
    'INGRESS',
    rules(
      { method: 'GET', path: '/public/.*' },
      { method: 'POST', path: '/api', host: 'shop' },
      // Matches an empty Host, not a missing one.
      { method: 'PUT', host: '(shop)?' },
    ),
  );
  test('no Host, an empty Host and a Host are three requests; so are methods and paths', () => {
    const shared = new HTTPJudge();
    const hosts: Array<string | undefined> = [undefined, '', 'shop', 'evil'];
    fc.assert(
      fc.property(
        fc.constantFrom('GET', 'POST', 'PUT'),
        fc.constantFrom('/public/a', '/api', '/admin', '/'),
        fc.constantFrom(...hosts),
        (method, path, host) => {
          const r: JudgeRequest = { method, path, headers: [] };
          if (host !== undefined) r.host = host;
          assert.deepEqual(shared.judge([plainSet], r), new HTTPJudge().judge([plainSet], r));
        },
      ),
      { numRuns: 400, seed: 9 },
    );
  });

  test('past its bound (10,000 decisions) the memo starts again and still answers right', () => {
    const shared = new HTTPJudge();
    for (let i = 0; i < 10_050; i++) {
      const r = req(i % 3 === 0 ? 'POST' : 'GET', i % 2 === 0 ? `/public/${i}` : `/x/${i}`);
      assert.equal(shared.judge([plainSet], r).allowed, i % 2 === 0 && i % 3 !== 0, `request ${i}`);
    }
    for (const [m, p, ok] of [
      ['GET', '/public/1', true],
      ['GET', '/x/1', false],
      ['POST', '/api', true],
    ] as const)
      assert.equal(shared.judge([plainSet], req(m, p)).allowed, ok, `${m} ${p}`);
  });

  test('a path too long for the memo is judged, not remembered', () => {
    const shared = new HTTPJudge();
    const long = `/public/${'a'.repeat(5000)}`;
    assert.equal(shared.judge([plainSet], req('GET', long)).allowed, true);
    assert.equal(shared.judge([plainSet], req('POST', long)).allowed, false);
  });
});

describe('applyHeaderActions', () => {
  test('REPLACE of an absent header adds it', () => {
    assert.deepEqual(applyHeaderActions([['a', '1']], [{ op: 'REPLACE', name: 'b', value: '2' }]), [
      ['a', '1'],
      ['b', '2'],
    ]);
  });
});

describe('live and offline agree (same matcher as decide)', () => {
  const methods = ['GET', 'POST', 'PUT', 'DELETE'];
  const paths = ['/', '/public/a', '/admin', '/api/v1/items/7', '/x?y=1'];
  const ruleArb = fc.record(
    {
      method: fc.constantFrom('GET', 'POST', 'GET|HEAD', 'P.*'),
      path: fc.constantFrom('/public/.*', '/admin', '/api/v1/items/[0-9]+', '/.*'),
      host: fc.constantFrom('shop', 'shop(:[0-9]+)?', 'evil'),
      headers: fc.constantFrom<string[]>(['X-Env: prod'], ['x-env'], []),
    },
    { requiredKeys: [] },
  );
  test('judge === matchL7 on random rules and requests', () => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.array(ruleArb, { maxLength: 4 }),
        fc.constantFrom(...methods),
        fc.constantFrom(...paths),
        fc.constantFrom('shop', 'shop:8080', 'evil'),
        fc.constantFrom<Array<[string, string]>>([], [['x-env', 'prod']], [['x-env', 'dev']]),
        (rs, method, path, host, headers) => {
          const prs: PortRuleHTTP[] = rs.map((r) => ({ pos, ...r }) as PortRuleHTTP);
          const live = new HTTPJudge().judge([set('INGRESS', prs)], req(method, path, headers, host));
          const offline = matchL7({ parser: 'http', rules: prs }, `parity-${n++}`, {
            kind: 'http',
            method,
            path,
            host,
            headers: Object.fromEntries([['host', host], ...headers]),
          });
          assert.equal(live.allowed, offline.allowed);
          if (live.allowed) assert.equal(live.outcomes[0]?.ruleIndex, offline.matchedRule);
        },
      ),
      { numRuns: 400, seed: 9 },
    );
  });
});

describe('loadSecretsDir (read once, before the proxy drops to its uid)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'seawall-secrets-load-'));
  mkdirSync(join(dir, 'web'));
  mkdirSync(join(dir, 'Bad_NS'));
  mkdirSync(join(dir, 'web', 'a-dir'));
  writeFileSync(join(dir, 'web', 'token'), 's3cret\n');
  writeFileSync(join(dir, 'web', 'crlf'), 'v\r\n');
  writeFileSync(join(dir, 'web', 'two-lines'), 'a\nb\n');
  writeFileSync(join(dir, 'web', 'UPPER'), 'x');
  writeFileSync(join(dir, 'Bad_NS', 'token'), 'x');
  writeFileSync(join(dir, 'stray-file'), 'x');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const loaded = loadSecretsDir(dir);
  rmSync(join(dir, 'web', 'token'));
  const rows: Array<{ name: string; ns: string | undefined; key: string; want: string | undefined }> = [
    { name: 'one trailing newline dropped', ns: 'web', key: 'token', want: 's3cret' },
    { name: 'CRLF dropped', ns: 'web', key: 'crlf', want: 'v' },
    { name: 'inner newlines kept', ns: 'web', key: 'two-lines', want: 'a\nb' },
    { name: 'not an object name: not loaded', ns: 'web', key: 'UPPER', want: undefined },
    { name: 'namespace not an object name: not loaded', ns: 'Bad_NS', key: 'token', want: undefined },
    { name: 'a directory is not a secret', ns: 'web', key: 'a-dir', want: undefined },
    { name: 'missing: never matches', ns: 'web', key: 'nope', want: undefined },
    { name: 'no namespace: not found', ns: undefined, key: 'token', want: undefined },
  ];
  for (const r of rows) test(r.name, () => assert.equal(loaded.resolver(r.ns, r.key), r.want));
  test('counted and skipped as listed; read at load time, not per request', () => {
    assert.equal(loaded.count, 3);
    assert.deepEqual(loaded.skipped, ['Bad_NS', 'stray-file', 'web/UPPER', 'web/a-dir']);
  });
  test('a missing directory is an error naming it', () => {
    assert.throws(() => loadSecretsDir(join(dir, 'absent')), /secrets directory .*absent: /);
  });
});
