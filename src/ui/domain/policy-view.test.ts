import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { backend, coredns, world } from '../../flow/testing/flows.ts';
import { loadPolicyBytes } from '../../policy-api/load.ts';
import type { EgressRule, IngressRule } from '../../policy-api/types.ts';
import { buildPolicyView, cnpEntryPeers, flowPeerGroup, ruleEntries } from './policy-view.ts';
import { host, uiFlows } from './testing/flows.ts';

const FILE = join(import.meta.dirname, '..', 'testdata', 'policies.yaml');
const policies = () => loadPolicyBytes(FILE, readFileSync(FILE), { lint: false }).policies;
const pos = { file: 'x.yaml', line: 1, column: 1 };
const sel = (matchLabels: Record<string, string>) => ({ pos, matchLabels });

describe('peer grouping of a rule entry', () => {
  const rows: { name: string; entry: object; ingress?: boolean; ns?: string; want: string[] }[] = [
    {
      name: 'a selector in a CNP is in its namespace',
      entry: { toEndpoints: [sel({ app: 'db' })] },
      ns: 'shop',
      want: ['in-namespace app=db'],
    },
    {
      name: 'a selector naming another namespace is in the cluster',
      entry: { toEndpoints: [sel({ 'k8s:io.kubernetes.pod.namespace': 'kube-system', app: 'dns' })] },
      ns: 'shop',
      want: ['in-cluster k8s:io.kubernetes.pod.namespace=kube-system, app=dns'],
    },
    {
      name: 'a selector naming its own namespace stays in it',
      entry: { toEndpoints: [sel({ 'k8s:io.kubernetes.pod.namespace': 'shop' })] },
      ns: 'shop',
      want: ['in-namespace k8s:io.kubernetes.pod.namespace=shop'],
    },
    {
      name: 'an empty selector: all pods of the namespace',
      entry: { fromEndpoints: [{ pos }] },
      ingress: true,
      ns: 'shop',
      want: ['in-namespace all pods in shop'],
    },
    {
      name: 'a CCNP selector is cluster-wide',
      entry: { toEndpoints: [sel({ app: 'db' })] },
      want: ['in-cluster app=db'],
    },
    {
      name: 'world is outside, host in the cluster',
      entry: { toEntities: ['world', 'host'] },
      ns: 'shop',
      want: ['outside entity world', 'in-cluster entity host'],
    },
    {
      name: 'CIDR and FQDN are outside',
      entry: { toCIDR: ['10.0.0.0/8'], toFQDNs: [{ pos, matchName: 'api.github.com' }] },
      ns: 'shop',
      want: ['outside 10.0.0.0/8', 'outside api.github.com'],
    },
    {
      name: 'no peer at all is any peer',
      entry: { toPorts: [] },
      ns: 'shop',
      want: ['in-namespace any peer', 'in-cluster any peer', 'outside any peer'],
    },
    {
      name: 'entity none is no peer',
      entry: { fromEntities: ['none'] },
      ingress: true,
      ns: 'shop',
      want: [],
    },
  ];
  for (const r of rows)
    it(r.name, () => {
      const got = cnpEntryPeers({ pos, ...r.entry } as IngressRule | EgressRule, r.ingress ?? false, r.ns);
      assert.deepEqual(
        got.map((p) => `${p.group} ${p.text}`),
        r.want,
      );
    });

  it('KNP peers: podSelector in the namespace, namespaceSelector in the cluster, ipBlock outside', () => {
    const knp = policies().find((p) => p.metadata.name === 'allow-world')!;
    const entries = ruleEntries(knp, new Set([0]));
    assert.deepEqual(
      entries.map(
        (e) => `${e.section}[${e.entryIndex}] ${e.peers.map((p) => `${p.group} ${p.text}`).join('; ')}`,
      ),
      ['egress[0] outside 198.51.100.0/24'],
    );
  });
});

describe('flow peer groups', () => {
  const rows: [string, object | undefined, string][] = [
    ['same namespace pod', backend, 'in-namespace'],
    ['other namespace pod', coredns, 'in-cluster'],
    ['host', host, 'in-cluster'],
    ['world', world, 'outside'],
  ];
  for (const [name, ep, want] of rows) it(name, () => assert.equal(flowPeerGroup(ep, 'production'), want));
});

describe('policy view', () => {
  it("per entry the endpoint's flows, in the group of their peer; an unused entry is marked", () => {
    const p = policies().find((x) => x.metadata.name === 'backend-ingress')!;
    const view = buildPolicyView({
      namespace: 'production',
      name: 'backend',
      ingress: { enforced: true, defaultDeny: true },
      egress: { enforced: false, defaultDeny: false },
      entries: ruleEntries(p, new Set([0])),
      flows: uiFlows(),
    });
    const summary = (g: 'in-namespace' | 'in-cluster' | 'outside') =>
      view.ingress.groups[g].map(
        (c) =>
          `${c.section}[${c.entryIndex}] flows=${c.flows.join(',')}${c.matchedNothing ? ' nothing' : ''}`,
      );
    assert.deepEqual(summary('in-namespace'), ['ingress[0] flows=1,3', 'ingress[2] flows= nothing']);
    assert.deepEqual(summary('in-cluster'), ['ingress[1] flows=8']);
    assert.deepEqual(summary('outside'), []);
    // icmpDefaultDenyIngress (4), remoteNodeDrop (9) and the audit (10) no entry decided.
    assert.deepEqual(view.ingress.unmatched, [4, 9, 10]);
    assert.equal(view.ingress.groups['in-namespace'][0]!.line, 13);
  });
});
