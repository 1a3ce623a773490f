// Item 9 end to end in the engine: a policy whose HTTP pattern would match everything once wrapped
// in `^(?:` … `)$` reaches the engine (built in code, not validated): the request is still refused.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cnp, engineWith, flow, pod } from './testutil.ts';
import type { L7Request } from './types.ts';

const EPS = [pod('shop/web', { app: 'web' }, '10.0.1.1'), pod('shop/api', { app: 'api' }, '10.0.1.2')];

function engineFor(http: Record<string, string>) {
  const p = cnp('shop', 'api-in', {
    endpointSelector: { matchLabels: { app: 'api' } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: 'web' } }],
        toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }], rules: { http: [http] } }],
      },
    ],
  });
  return engineWith(EPS, [p]);
}

const req = (method: string, path: string): L7Request => ({ kind: 'http', method, path });

const rows: Array<{ name: string; http: Record<string, string>; allowed: L7Request[] }> = [
  { name: 'item 9: path /public)|(', http: { path: '/public)|(' }, allowed: [] },
  { name: 'item 9: method GET)|(', http: { method: 'GET)|(' }, allowed: [] },
  {
    name: 'item 9: path /public\\Q)|( (valid: one literal)',
    http: { path: '/public\\Q)|(' },
    allowed: [req('GET', '/public)|(')],
  },
  { name: 'item 9: path /a\\Q (valid: /a)', http: { path: '/a\\Q' }, allowed: [req('GET', '/a')] },
];

for (const row of rows) {
  test(`engine: ${row.name} denies DELETE /admin/delete-all`, () => {
    const e = engineFor(row.http);
    const admin = e.decide(flow('shop/web', 'shop/api', '80/TCP', EPS, req('DELETE', '/admin/delete-all')));
    assert.equal(admin.verdict, 'DROPPED');
    for (const ok of row.allowed) {
      const v = e.decide(flow('shop/web', 'shop/api', '80/TCP', EPS, ok));
      assert.equal(v.verdict, 'FORWARDED', JSON.stringify(ok));
    }
  });
}
