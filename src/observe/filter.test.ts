import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { icmpWorldEgress, udpDefaultDenyEgress, udpExplicitDenyEgress } from '../flow/testing/flows.ts';
import type { Flow } from '../flow/types.ts';
import { FilterError, type FilterFlags, filterFromFlags, matchFlow, parsePodRef } from './filter.ts';

function flow(p: Partial<Flow> = {}): Flow {
  return {
    time: '2025-01-02T03:04:05.678Z',
    uuid: 'u',
    verdict: 'FORWARDED',
    IP: { source: '10.0.1.10', destination: '10.0.1.20', ipVersion: 'IPv4' },
    l4: { TCP: { source_port: 40000, destination_port: 8080, flags: { SYN: true } } },
    source: { identity: 1001, namespace: 'production', pod_name: 'frontend-7d9' },
    destination: { identity: 1002, namespace: 'backend', pod_name: 'api' },
    Type: 'L3_L4',
    event_type: { type: 5 },
    traffic_direction: 'INGRESS',
    ...p,
  };
}

// The base record above crosses namespaces (production → backend), which the pod and namespace
// rows rely on; the others are the shared fixtures.
const dropped = udpDefaultDenyEgress;
const world = udpExplicitDenyEgress;
const icmp = icmpWorldEgress;

describe('matchFlow', () => {
  const cases: Array<{ name: string; flags: FilterFlags; flow: Flow; want: boolean }> = [
    { name: 'empty filter passes everything', flags: {}, flow: flow(), want: true },
    { name: 'verdict matches', flags: { verdict: ['FORWARDED'] }, flow: flow(), want: true },
    { name: 'verdict is case-insensitive', flags: { verdict: ['dropped'] }, flow: dropped, want: true },
    { name: 'verdict mismatch', flags: { verdict: ['DROPPED'] }, flow: flow(), want: false },
    {
      name: 'verdict AUDIT matches an audited flow',
      flags: { verdict: ['AUDIT'] },
      flow: { ...flow(), verdict: 'AUDIT' },
      want: true,
    },
    { name: 'verdict AUDIT is no FORWARDED', flags: { verdict: ['AUDIT'] }, flow: flow(), want: false },
    {
      name: 'verdicts are alternatives',
      flags: { verdict: ['DROPPED', 'FORWARDED'] },
      flow: flow(),
      want: true,
    },
    { name: 'from-pod by prefix', flags: { fromPod: ['production/frontend'] }, flow: flow(), want: true },
    { name: 'from-pod other namespace', flags: { fromPod: ['backend/frontend'] }, flow: flow(), want: false },
    {
      name: 'from-pod without namespace means default',
      flags: { fromPod: ['frontend'] },
      flow: flow(),
      want: false,
    },
    { name: 'to-pod exact', flags: { toPod: ['backend/api'] }, flow: flow(), want: true },
    {
      name: 'to-pod is the destination only',
      flags: { toPod: ['production/frontend'] },
      flow: flow(),
      want: false,
    },
    { name: 'to-pod never matches a non-pod', flags: { toPod: ['default/x'] }, flow: world, want: false },
    { name: 'pod matches either side', flags: { pod: ['backend/api'] }, flow: flow(), want: true },
    { name: 'namespace matches the source', flags: { namespace: ['production'] }, flow: flow(), want: true },
    {
      name: 'namespace matches the destination',
      flags: { namespace: ['backend'] },
      flow: flow(),
      want: true,
    },
    { name: 'namespace on neither side', flags: { namespace: ['kube-system'] }, flow: flow(), want: false },
    {
      name: 'from-namespace is the source only',
      flags: { fromNamespace: ['backend'] },
      flow: flow(),
      want: false,
    },
    { name: 'to-namespace', flags: { toNamespace: ['backend'] }, flow: flow(), want: true },
    {
      name: 'criteria are ANDed',
      flags: { verdict: ['DROPPED'], fromPod: ['production/frontend'] },
      flow: flow(),
      want: false,
    },
    {
      name: 'from-pod and to-pod together',
      flags: { fromPod: ['production/f'], toPod: ['backend/a'] },
      flow: flow(),
      want: true,
    },
    { name: 'ip either side', flags: { ip: ['203.0.113.10'] }, flow: world, want: true },
    { name: 'from-ip', flags: { fromIp: ['10.0.1.10'] }, flow: flow(), want: true },
    { name: 'to-ip mismatch', flags: { toIp: ['10.0.1.10'] }, flow: flow(), want: false },
    { name: 'protocol tcp', flags: { protocol: ['TCP'] }, flow: flow(), want: true },
    { name: 'protocol udp on tcp', flags: { protocol: ['udp'] }, flow: flow(), want: false },
    { name: 'protocol icmp covers ICMPv4', flags: { protocol: ['icmp'] }, flow: icmp, want: true },
    { name: 'port either side', flags: { port: ['40000'] }, flow: flow(), want: true },
    { name: 'to-port', flags: { toPort: ['53'] }, flow: world, want: true },
    { name: 'to-port on icmp', flags: { toPort: ['53'] }, flow: icmp, want: false },
    { name: 'traffic direction', flags: { trafficDirection: ['egress'] }, flow: dropped, want: true },
    {
      name: 'traffic direction mismatch',
      flags: { trafficDirection: ['ingress'] },
      flow: dropped,
      want: false,
    },
    { name: 'type policy-verdict', flags: { type: ['policy-verdict'] }, flow: flow(), want: true },
    { name: 'type drop on a policy verdict', flags: { type: ['drop'] }, flow: flow(), want: false },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(matchFlow(filterFromFlags(c.flags), c.flow), c.want));
  }
});

describe('filterFromFlags rejects what hubble would', () => {
  const cases: Array<{ name: string; flags: FilterFlags; code: FilterError['code'] }> = [
    { name: 'unknown verdict', flags: { verdict: ['ALLOWED'] }, code: 'bad-verdict' },
    { name: 'port not a number', flags: { port: ['http'] }, code: 'bad-port' },
    { name: 'port out of range', flags: { toPort: ['70000'] }, code: 'bad-port' },
    { name: 'direction', flags: { trafficDirection: ['inbound'] }, code: 'bad-direction' },
    { name: 'type', flags: { type: ['capture'] }, code: 'bad-type' },
    { name: 'pod with two slashes', flags: { fromPod: ['a/b/c'] }, code: 'bad-pod' },
    { name: 'pod with empty namespace', flags: { toPod: ['/x'] }, code: 'bad-pod' },
  ];
  for (const c of cases) {
    it(c.name, () =>
      assert.throws(
        () => filterFromFlags(c.flags),
        (e: unknown) => e instanceof FilterError && e.code === c.code,
      ),
    );
  }
});

describe('parsePodRef', () => {
  const cases = [
    {
      name: 'namespace and name',
      in: 'production/frontend',
      want: { namespace: 'production', prefix: 'frontend' },
    },
    { name: 'name only', in: 'frontend', want: { namespace: 'default', prefix: 'frontend' } },
    { name: 'whole namespace', in: 'production/', want: { namespace: 'production', prefix: '' } },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(parsePodRef(c.in), c.want));
});
