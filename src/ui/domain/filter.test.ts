import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLOWS } from '../../flow/testing/flows.ts';
import { type FlowFilter, flowMatches, parseFilter } from './filter.ts';
import { hostProbe, httpGet, remoteNodeDrop, tcpAudit, tcpReply } from './testing/flows.ts';

const ALL = { ...FLOWS, httpGet, tcpReply, hostProbe, remoteNodeDrop, tcpAudit };
const names = (filter: FlowFilter): string[] =>
  Object.entries(ALL)
    .filter(([, f]) => flowMatches(f, filter))
    .map(([n]) => n)
    .sort();

describe('filter bar parsing', () => {
  const rows: { name: string; input: string; want?: object[]; error?: RegExp }[] = [
    { name: 'empty', input: '   ', want: [] },
    {
      name: 'kind=value is both directions',
      input: 'pod=frontend',
      want: [{ kind: 'pod', direction: 'both', value: 'frontend', negative: false }],
    },
    {
      name: 'direction and negation',
      input: '!to:label=k8s:app=backend',
      want: [{ kind: 'label', direction: 'to', value: 'k8s:app=backend', negative: true }],
    },
    {
      name: 'several entries, spaces and commas',
      input: 'from:ip=10.0.1.10, to:port=8080',
      want: [
        { kind: 'ip', direction: 'from', value: '10.0.1.10', negative: false },
        { kind: 'port', direction: 'to', value: '8080', negative: false },
      ],
    },
    { name: 'unknown kind', input: 'colour=red', error: /"colour" is not a filter kind/ },
    { name: 'bad direction', input: 'into:pod=x', error: /"into" is not a direction/ },
    { name: 'no value', input: 'pod=', error: /pod= needs a value/ },
    { name: 'no =', input: 'frontend', error: /no "="/ },
    { name: 'port not a number', input: 'port=http', error: /a port is a number/ },
    { name: 'port too big', input: 'port=70000', error: /a port is a number/ },
    { name: 'identity not a number', input: 'identity=world', error: /an identity is a number/ },
  ];
  for (const r of rows)
    it(r.name, () => {
      const p = parseFilter(r.input);
      if (r.error) {
        assert.equal(p.errors.length, 1, JSON.stringify(p));
        assert.match(p.errors[0]!.message, r.error);
      } else {
        assert.deepEqual(p.errors, []);
        assert.deepEqual(
          p.entries.map(({ text: _t, ...e }) => e),
          r.want,
        );
      }
    });

  it('an error says where the entry starts', () => {
    const p = parseFilter('pod=frontend  bogus=1');
    assert.equal(p.errors[0]!.offset, 14);
    assert.equal(p.errors[0]!.entry, 'bogus=1');
    assert.equal(p.entries.length, 1);
  });
});

describe('filter matching', () => {
  const rows: { name: string; input: string; verdict?: FlowFilter['verdict']; want: string[] }[] = [
    {
      name: 'from:pod matches the source side only',
      input: 'from:pod=production/backend',
      want: ['tcpReply'],
    },
    {
      name: 'to:pod matches the destination side only',
      input: 'to:pod=frontend',
      want: ['tcpReply'],
    },
    {
      name: 'label without source matches any source',
      input: 'to:label=app=coredns',
      want: ['dnsL7Egress'],
    },
    {
      name: 'label key alone: presence',
      input: 'from:label=reserved:host',
      want: ['hostProbe'],
    },
    {
      name: 'ip on either side',
      input: 'ip=203.0.113.10',
      want: ['udpDefaultDenyEgress', 'udpExplicitDenyEgress'],
    },
    { name: 'identity', input: 'from:identity=6', want: ['remoteNodeDrop'] },
    { name: 'dns query name, trailing dot optional', input: 'dns=api.github.com', want: ['dnsL7Egress'] },
    { name: 'to:port', input: 'to:port=9090', want: ['remoteNodeDrop'] },
    { name: 'both: either side, as no direction', input: 'both:ip=10.0.0.1', want: ['hostProbe'] },
    {
      name: 'negated both: neither side',
      input: '!both:pod=frontend',
      want: ['hostProbe', 'remoteNodeDrop'],
    },
    {
      name: 'negation',
      input: '!from:pod=frontend',
      want: ['hostProbe', 'remoteNodeDrop', 'tcpReply'],
    },
    {
      name: 'entries AND together',
      input: 'from:pod=frontend to:port=8080',
      want: ['httpGet', 'tcpAllowedIngress'],
    },
    {
      name: 'verdict filter dropped',
      input: '',
      verdict: 'dropped',
      want: ['icmpDefaultDenyIngress', 'remoteNodeDrop', 'udpDefaultDenyEgress', 'udpExplicitDenyEgress'],
    },
    { name: 'verdict filter audit', input: '', verdict: 'audit', want: ['tcpAudit'] },
    {
      name: 'verdict and entry',
      input: 'to:pod=backend',
      verdict: 'dropped',
      want: ['icmpDefaultDenyIngress', 'remoteNodeDrop'],
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const p = parseFilter(r.input);
      assert.deepEqual(p.errors, []);
      assert.deepEqual(names({ entries: p.entries, verdict: r.verdict ?? 'all' }), r.want.sort());
    });
});
