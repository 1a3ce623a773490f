// hubble observe's flags → GetFlows requests (cilium/hubble cmd/observe/flows_filter.go,
// flows.go): the left/right pairing of either-side flags, namespaces applied to pods, --not,
// conflicts, selectors, and wrong values as errors. The requests are golden (flags.golden.json).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { goldenJSON } from '../core/testing/golden.ts';
import { FlagError, parseObserveArgs } from './flags.ts';

const NOW = Date.parse('2026-01-02T03:04:05Z');

describe('parseObserveArgs: requests (golden)', () => {
  const rows: [name: string, argv: string[]][] = [
    ['no flags: the last 20', []],
    ['--all', ['--all']],
    ['--first 5', ['--first', '5']],
    ['--last 3 --follow', ['--last', '3', '-f']],
    ['--follow alone: only new flows', ['-f']],
    ['--since a duration ago, --until RFC 3339', ['--since', '5m', '--until', '2026-01-02T03:00:00.5Z']],
    [
      '--until is dropped with --follow (as hubble)',
      ['--since', '1h', '--until', '2026-01-02T03:00:00Z', '-f'],
    ],
    ['--pod with -n: shop/client on either side', ['--pod', 'client', '-n', 'shop']],
    ['-n alone: source or destination in the namespace', ['-n', 'shop']],
    ['--pod A --port 80: source pairs with source port', ['--pod', 'shop/a', '--port', '80']],
    ['--from-pod with --port: both sides of the port', ['--from-pod', 'shop/a', '--port', '80']],
    ['--ip with CIDRs, --to-port', ['--ip', '10.0.0.0/8', '--ip', '192.168.1.1', '--to-port', '443']],
    ['-l (either side); --from-label with --to-label', ['-l', 'k8s:app=web']],
    ['--from-label with --to-label', ['--from-label', 'k8s:app=web', '--to-label', 'reserved:world']],
    ['--identity names and numbers', ['--identity', 'world']],
    ['--from-identity, --to-identity', ['--from-identity', '1234', '--to-identity', 'kube-apiserver']],
    [
      '--fqdn, --service, --workload',
      ['--to-fqdn', '*.cilium.io', '--service', 'shop/api', '--workload', 'Deployment/web'],
    ],
    [
      '--node-name, --uuid, --drop-reason-desc',
      ['--node-name', 'seawall-*', '--uuid', 'abc', '--drop-reason-desc', 'policy_denied'],
    ],
    [
      '--tcp-flags, --traffic-direction, --verdict AUDIT',
      ['--tcp-flags', 'syn,ack', '--traffic-direction', 'ingress', '--verdict', 'AUDIT'],
    ],
    ['-t TYPE and TYPE:SUBTYPE', ['-t', 'drop', '-t', 'trace:to-endpoint', '-t', '5']],
    [
      '--protocol http, --http-*',
      [
        '--protocol',
        'http',
        '--http-status',
        '5+',
        '--http-method',
        'GET',
        '--http-path',
        '/api/.*',
        '--http-url',
        'http://x/.*',
        '--http-header',
        'x-user:bob',
      ],
    ],
    ['--not: the next filter into the denylist', ['--verdict', 'DROPPED', '--not', '--pod', 'kube-system/']],
    [
      '--allowlist and --denylist raw filters',
      [
        '--allowlist',
        '{"source_pod":["a/"]}{"destination_pod":["b/"]}',
        '--denylist',
        '{"protocol":["dns"]}',
      ],
    ],
    ['-4 and --ip-version', ['-4', '--ip-version', 'v6']],
    [
      'output flags',
      [
        '-o',
        'table',
        '--time-format',
        'RFC3339',
        '--color',
        'never',
        '--numeric',
        '--print-node-name',
        '--print-policy-names',
      ],
    ],
    ['source flags', ['--server', 'localhost:4245', '--node', 'seawall-n2']],
    ['--flag=value form', ['--pod=shop/a', '-tdrop', '--last=7']],
  ];
  const out: Record<string, unknown> = {};
  for (const [name, argv] of rows) out[name] = { argv, ...parseObserveArgs(argv, NOW) };
  it('matches the golden requests', () =>
    goldenJSON(join(import.meta.dirname, 'testdata', 'flags.golden.json'), out));
});

describe("parseObserveArgs: wrong values are errors (as hubble's)", () => {
  const rows: [name: string, argv: string[], want: RegExp][] = [
    ['verdict in lower case', ['--verdict', 'dropped'], /invalid --verdict value: dropped/],
    ['unknown protocol', ['--protocol', 'bogus'], /unknown protocol "bogus"/],
    ['bad CIDR', ['--ip', '10.0.0.0/33'], /not an IP address or CIDR/],
    ['unknown type', ['-t', 'bogus'], /unable to parse type 'bogus'/],
    ['unknown trace sub-type', ['-t', 'trace:sideways'], /unable to parse event sub-type 'sideways'/],
    ['unknown tcp flag', ['--tcp-flags', 'syn,xyz'], /unknown tcp flag: xyz/],
    ['bad identity', ['--identity', 'everyone'], /invalid security identity/],
    ['bad direction', ['--traffic-direction', 'sideways'], /invalid traffic direction/],
    [
      '--port with --to-port',
      ['--port', '1', '--to-port', '2'],
      /filters --to-port and --port cannot be combined/,
    ],
    ['--ip with --namespace', ['--ip', '1.1.1.1', '-n', 'x'], /cannot be combined/],
    ['consecutive --not', ['--not', '--not', '--pod', 'a'], /consecutive --not/],
    ['trailing --not', ['--pod', 'a', '--not'], /trailing --not/],
    ['--first with --last', ['--first', '1', '--last', '2'], /both --first and --last/],
    ['--first with --follow', ['--first', '1', '-f'], /both --first and --follow/],
    ['--last with --all', ['--last', '1', '--all'], /both --last and --all/],
    ['table with follow', ['-o', 'table', '-f'], /not compatible with follow/],
    ['bad output', ['-o', 'yaml'], /--output: invalid value "yaml"/],
    ['bad time format', ['--time-format', 'Kitchen'], /--time-format: invalid value/],
    ['bad color', ['--color', 'sometimes'], /--color: invalid value/],
    ['bad since', ['--since', 'yesterday'], /--since: failed to parse/],
    ['-A with -n', ['-A', '-n', 'shop'], /--all-namespaces \(-A\) and --namespace \(-n\)/],
    ['bad raw filter', ['--allowlist', '{nope'], /invalid --allowlist flag/],
    ['unknown flag', ['--bogus'], /unknown flag: --bogus/],
    ['missing value', ['--pod'], /--pod needs a value/],
    ['not a number', ['--last', 'ten'], /--last: not a number/],
    ['bad label selector', ['-l', 'app in (a'], /FlowFilter\.source_label/],
  ];
  for (const [name, argv, want] of rows)
    it(name, () =>
      assert.throws(
        () => parseObserveArgs(argv, NOW),
        (e: unknown) => e instanceof FlagError && want.test((e as Error).message),
      ),
    );
});
