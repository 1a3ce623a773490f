// Audit mode in the nft compile: audit sets (denies of audited policies) never decide; a new
// connection they cover that the chain lets pass is logged `sw/audit/...` instead of `sw/fwd/...`;
// an audited default deny passes and logs `audit`; enforcing denies and default denies still drop.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { golden as goldenFile } from '../../core/testing/golden.ts';
import { parsePrefix } from '../../flow/nflog.ts';
import type { EndpointPolicy, MapStateEntry, MapStateVerdict } from '../../policy/types.ts';
import {
  type CompileInput,
  compile,
  compileEndpoint,
  patchEndpoint,
  renderDelta,
  renderFull,
} from './compile.ts';

const TESTDATA = join(import.meta.dirname, 'testdata');

function e(
  identity: number,
  port: number,
  verdict: MapStateVerdict,
  direction: 'INGRESS' | 'EGRESS' = 'INGRESS',
): MapStateEntry {
  return {
    key: { direction, identity, proto: 6, portLo: port, portHi: port },
    verdict,
    derivedFrom: [],
  };
}

function input(entries: MapStateEntry[], ingress: EndpointPolicy['ingress']): CompileInput {
  return {
    ipcache: new Map([
      ['10.0.1.10', 256],
      ['10.0.1.20', 257],
    ]),
    endpoints: [
      {
        id: 7,
        ip: '10.0.1.20',
        iface: 'swv0000000007',
        policy: {
          endpoint: 'prod/backend',
          identity: 257,
          ingress,
          egress: { enforced: false, defaultDeny: false },
          entries,
          selectedBy: [],
        },
      },
    ],
  };
}

const chainRules = (script: string): string[] =>
  script
    .split('\n')
    .filter((l) => l.startsWith('add rule inet seawall ep7_in '))
    .map((l) => l.slice('add rule inet seawall ep7_in '.length));

describe('nft compile: audit', () => {
  const rows: Array<{
    name: string;
    entries: MapStateEntry[];
    ingress: EndpointPolicy['ingress'];
    want: string[];
  }> = [
    {
      name: 'audited deny over an allow, enforcing default deny',
      entries: [e(256, 80, 'allow'), e(256, 80, 'audit'), e(256, 22, 'deny')],
      ingress: { enforced: true, defaultDeny: true },
      want: [
        'meta mark set 2',
        'meta mark set ip saddr map @ipcache',
        'meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_deny_l4 log prefix "sw/deny/in/7/" group 1 drop',
        'ct state new meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_allow_l4 meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_audit_l4 log prefix "sw/audit/in/7/" group 1 return',
        'ct state new meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_allow_l4 log prefix "sw/fwd/in/7/" group 1 return',
        'meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_allow_l4 return',
        'ct state new meta mark 1 meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_audit_l4 log prefix "sw/audit/in/7/" group 1 return',
        'ct state new meta mark 1 log prefix "sw/fwd/in/7/" group 1 return',
        'meta mark 1 return',
        'log prefix "sw/denied/in/7/" group 1 drop',
      ],
    },
    {
      name: 'audited default deny: passes, logged audit',
      entries: [e(256, 80, 'allow')],
      ingress: { enforced: true, defaultDeny: true, auditDefaultDeny: true },
      want: [
        'meta mark set 2',
        'meta mark set ip saddr map @ipcache',
        'ct state new meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_allow_l4 log prefix "sw/fwd/in/7/" group 1 return',
        'meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_allow_l4 return',
        'ct state new meta mark 1 log prefix "sw/fwd/in/7/" group 1 return',
        'meta mark 1 return',
        'ct state new log prefix "sw/audit/in/7/" group 1 return',
        'return',
      ],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      assert.deepEqual(chainRules(renderFull(compile(input(row.entries, row.ingress)))), row.want);
    });
  }

  it('nat_pre: a redirect an audit set covers is redirected and logged audit', () => {
    const redirect: MapStateEntry = { ...e(256, 80, 'redirect'), l7: { parser: 'http', rules: [] } };
    const script = renderFull(
      compile(input([redirect, e(256, 80, 'audit')], { enforced: true, defaultDeny: true })),
    );
    const l7 = script
      .split('\n')
      .filter((l) => l.startsWith('add rule inet seawall ep7_in_l7 '))
      .map((l) => l.slice('add rule inet seawall ep7_in_l7 '.length));
    assert.deepEqual(l7, [
      'meta mark set 2',
      'meta mark set ip saddr map @ipcache',
      'meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_redir_l4 meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_audit_l4 ct mark set ct mark | 0x00000011 log prefix "sw/audit/in/7/" group 1 return',
      'meta l4proto { tcp, udp, sctp } meta mark . meta l4proto . th dport @ep7_in_redir_l4 ct mark set ct mark | 0x00000011 log prefix "sw/redir/in/7/" group 1 return',
      'meta mark 1 return',
      'ct mark set ct mark | 0x00000004 return',
    ]);
  });

  it('nat_pre: audit sets alone set no bit, and an audited default deny never sets the deny bit', () => {
    const script = renderFull(
      compile(input([e(256, 80, 'audit')], { enforced: true, defaultDeny: true, auditDefaultDeny: true })),
    );
    const l7 = script.split('\n').filter((l) => l.startsWith('add rule inet seawall ep7_in_l7 '));
    assert.ok(l7.length > 0);
    for (const l of l7) assert.doesNotMatch(l, /audit|0x00000004/, l);
  });

  it('the audit prefix parses back', () => {
    assert.deepEqual(parsePrefix('sw/audit/in/7/'), { verdict: 'audit', dir: 'in', endpointId: 7 });
  });

  it('an audit entry added to an existing audit set patches one element', () => {
    const ing = { enforced: true, defaultDeny: true } as const;
    const a = input([e(256, 80, 'allow'), e(256, 80, 'audit')], ing);
    const prev = compileEndpoint(a.endpoints[0]!);
    const next = patchEndpoint(prev, { removed: [], added: [e(256, 81, 'audit')] });
    assert.ok(next !== undefined);
    const full = compile(input([e(256, 80, 'allow'), e(256, 80, 'audit'), e(256, 81, 'audit')], ing));
    assert.deepEqual(next.in, full.endpoints.get(7)!.in);
  });

  it('renders the full audit table (golden) and the kernel accepts it', (t) => {
    const script = renderFull(
      compile(
        input(
          [
            e(256, 80, 'allow'),
            e(256, 80, 'audit'),
            e(0, 443, 'audit'),
            e(256, 22, 'deny'),
            { ...e(256, 8080, 'redirect'), l7: { parser: 'http', rules: [] } },
            e(256, 8080, 'audit'),
          ],
          {
            enforced: true,
            defaultDeny: true,
          },
        ),
      ),
    );
    goldenFile(join(TESTDATA, 'audit-full.nft'), script);
    const delta = renderDelta(
      compile(input([e(256, 80, 'allow')], { enforced: true, defaultDeny: true })),
      compile(input([e(256, 80, 'allow')], { enforced: true, defaultDeny: true, auditDefaultDeny: true })),
    );
    assert.match(delta, /flush chain inet seawall ep7_in\n/);
    assert.match(delta, /sw\/audit\/in\/7\//);
    if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v nft && command -v ip']).status !== 0) {
      t.skip('needs root, ip and nft');
      return;
    }
    const ns = `sw-audit-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    try {
      const r = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', join(TESTDATA, 'audit-full.nft')], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });
});
