// Hubble FlowFilter compilation: the values Hubble refuses are errors naming the field, and the
// parts with their own syntax (label selectors, node-name globs, status prefixes) match as Hubble's.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tcpAllowedIngress } from '../../flow/testing/flows.ts';
import type { Flow } from '../../flow/types.ts';
import {
  compileFlowFilter,
  compileFlowFilters,
  type HubbleFlowFilter,
  parseLabelSelector,
} from './filter.ts';

describe('compileFlowFilter refuses bad values', () => {
  const rows: { name: string; filter: HubbleFlowFilter; error: RegExp }[] = [
    {
      name: 'ip not an address',
      filter: { source_ip: ['10.0.0'] },
      error: /FlowFilter\.source_ip: "10\.0\.0" is not/,
    },
    { name: 'CIDR length too long', filter: { destination_ip: ['fd00::/129'] }, error: /destination_ip/ },
    {
      name: 'port not a number',
      filter: { source_port: ['http'] },
      error: /FlowFilter\.source_port: "http" is not a port/,
    },
    { name: 'port too big', filter: { destination_port: ['65536'] }, error: /destination_port/ },
    {
      name: 'unknown protocol',
      filter: { protocol: ['bogus'] },
      error: /FlowFilter\.protocol: unknown protocol "bogus"/,
    },
    {
      name: 'bad status code',
      filter: { http_status_code: ['4xx'] },
      error: /FlowFilter\.http_status_code: "4xx"/,
    },
    {
      name: 'bad http_path regex (RE2)',
      filter: { http_path: ['(a'] },
      error: /FlowFilter\.http_path: "\(a"/,
    },
    { name: 'RE2 has no backreferences', filter: { http_url: ['(a)\\1'] }, error: /FlowFilter\.http_url/ },
    {
      name: 'bad pod reference',
      filter: { source_pod: ['a/b/c'] },
      error: /FlowFilter\.source_pod: "a\/b\/c"/,
    },
    {
      name: 'bad fqdn pattern',
      filter: { destination_fqdn: ['exa mple.com'] },
      error: /FlowFilter\.destination_fqdn/,
    },
    {
      name: 'bad label selector',
      filter: { source_label: ['=frontend'] },
      error: /FlowFilter\.source_label/,
    },
    { name: 'empty node name', filter: { node_name: [''] }, error: /FlowFilter\.node_name: empty/ },
  ];
  for (const r of rows) it(r.name, () => assert.throws(() => compileFlowFilter(r.filter), r.error));
});

describe('compileFlowFilter matches', () => {
  const f: Flow = { ...tcpAllowedIngress, node_name: 'cluster-a/node-1' };
  const rows: { name: string; filter: HubbleFlowFilter; want: boolean }[] = [
    { name: 'empty filter passes', filter: {}, want: true },
    { name: 'empty lists are unset', filter: { verdict: [], source_ip: [] }, want: true },
    { name: 'node glob on the node part', filter: { node_name: ['node-*'] }, want: true },
    { name: 'node with cluster', filter: { node_name: ['cluster-a/node-1'] }, want: true },
    { name: 'cluster only', filter: { node_name: ['cluster-a/'] }, want: true },
    { name: 'other cluster', filter: { node_name: ['cluster-b/'] }, want: false },
    { name: 'glob does not cross /', filter: { node_name: ['*1'] }, want: true },
    { name: 'glob with cluster part', filter: { node_name: ['cluster-*/node-1'] }, want: true },
    { name: 'label exists with source', filter: { source_label: ['k8s:app'] }, want: true },
    { name: 'label with wrong source', filter: { source_label: ['reserved:app'] }, want: false },
    { name: 'label any: source', filter: { source_label: ['any:app=frontend'] }, want: true },
    { name: 'label notin', filter: { destination_label: ['app notin (frontend)'] }, want: true },
    { name: 'label == ', filter: { destination_label: ['app==backend'] }, want: true },
    {
      name: 'all requirements of one selector',
      filter: { destination_label: ['app=backend,app=frontend'] },
      want: false,
    },
    { name: 'IPv6 CIDR against IPv4 address', filter: { source_ip: ['fd00::/8'] }, want: false },
    { name: 'reply false', filter: { reply: [false] }, want: true },
    { name: 'status code on a non-HTTP flow', filter: { http_status_code: ['2+'] }, want: false },
  ];
  for (const r of rows) it(r.name, () => assert.equal(compileFlowFilter(r.filter)(f), r.want));

  it('reply filter does not match an absent is_reply', () => {
    const { is_reply: _, ...noReply } = tcpAllowedIngress;
    assert.equal(compileFlowFilter({ reply: [false] })(noReply as Flow), false);
  });

  it('blacklist wins over whitelist', () => {
    assert.equal(compileFlowFilters([{ verdict: ['FORWARDED'] }], [{ source_port: ['40000'] }])(f), false);
  });
});

describe('parseLabelSelector', () => {
  it('splits on commas outside parentheses', () => {
    assert.deepEqual(parseLabelSelector('x', 'k8s:app in (a, b),!tier,env!=prod'), [
      { source: 'k8s', key: 'app', op: 'in', values: ['a', 'b'] },
      { source: '', key: 'tier', op: 'notexists', values: [] },
      { source: '', key: 'env', op: 'notin', values: ['prod'] },
    ]);
  });
});
