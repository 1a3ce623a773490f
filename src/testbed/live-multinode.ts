// `seawall test --live` for a PolicyTest whose endpoints name several nodes (`node:`): one node
// namespace per node on one underlay, an etcd of its own, one engine and runtime per node in
// kvstore mode (testbed/cluster.ts). Each flow is sent from its source's node to its
// destination's node, so egress is judged where the source runs and ingress where the
// destination runs, by the identity the destination's node has for the source address. `host`
// is the other side's own node, `remote-node` another node.
//
// As on one node: every node runs the HTTP proxy (and the Kafka and DNS proxies where the test
// needs them), so egress L7 is judged by the source node's proxy and ingress L7 by the
// destination node's; HTTP, gRPC, Kafka and DNS requests are sent by the same clients to the
// same test servers (live-replay.ts, shared with the single-node replay). Outside addresses and the world and kube-apiserver entities are test hosts
// in namespaces of their own, on the node of the flow's endpoint (where its traffic to or from
// the outside enters or leaves the cluster). Flow records are not checked across nodes yet (said
// per flow).

import { dnsComponents, FQDNComponent } from '../agent/fqdn.ts';
import { ProxyComponent } from '../agent/proxy.ts';
import type { RuntimeComponent, TestHostSpec } from '../agent/runtime.ts';
import { type LivePeer, peerKey } from '../datapath/node.ts';
import { etcdBinary } from '../kvstore/testing/etcd.ts';
import type { EngineFactory, PeerRef, PolicyEngineAPI } from '../policy/types.ts';
import { prepareEngine } from '../policytest/runner.ts';
import type { FlowResult, PolicyTest, TestEndpoint, TestFlow } from '../policytest/types.ts';
import { type ClusterNode, LiveCluster } from './cluster.ts';
import {
  isDNSQuery,
  isKafka,
  type LiveFlowResult,
  nodePlan,
  ReplayServers,
  sendFlow,
  startServers,
} from './live-replay.ts';

const nodeOf = (e: { node?: string }): string => e.node ?? 'node-1';

/** Endpoints on a node other than node-1: the test needs several nodes. */
export function isMultiNode(test: Pick<PolicyTest, 'endpoints'>): boolean {
  return test.endpoints.some((e) => !e.external && e.namespace !== undefined && nodeOf(e) !== 'node-1');
}

/** Why several nodes cannot be replayed here, or undefined. */
export function multiNodeUnavailable(): string | undefined {
  return etcdBinary() === undefined ? 'endpoint on another node: needs etcd (Debian etcd-server)' : undefined;
}

function endpointOf(test: Pick<PolicyTest, 'endpoints'>, p: PeerRef): TestEndpoint | undefined {
  if (p.kind !== 'endpoint') return undefined;
  return test.endpoints.find((e) => !e.external && e.namespace === p.namespace && e.name === p.name);
}

/**
 * The flow's source redirects it to its node's proxy (egress L7) and the destination, on another
 * node, enforces ingress. The proxy's upstream leaves from the source pod's address (as Cilium's
 * transparent proxy), so the destination's node judges the pod; when that denies, the source's
 * proxy answers as Envoy does, 503 (its upstream connect failed), which is the expected denial here.
 */
export function proxiedIntoIngress(
  test: Pick<PolicyTest, 'endpoints'>,
  engine: PolicyEngineAPI,
  flow: TestFlow,
): boolean {
  const r = flow.request;
  const src = endpointOf(test, r.src);
  const dst = endpointOf(test, r.dst);
  if (src === undefined || dst === undefined || nodeOf(src) === nodeOf(dst)) return false;
  if (r.protocol !== 'TCP' && r.protocol !== 'UDP') return false;
  const proto = r.protocol === 'TCP' ? 6 : 17;
  const port = r.dport ?? 0;
  const dstId = engine.identityOf(r.dst);
  const eg = engine.endpointPolicy(src.namespace!, src.name);
  const redirects =
    eg.egress.enforced &&
    eg.entries.some(
      (e) =>
        e.verdict === 'redirect' &&
        e.key.direction === 'EGRESS' &&
        (e.key.identity === 0 || e.key.identity === dstId) &&
        (e.key.proto === 0 || e.key.proto === proto) &&
        port >= e.key.portLo &&
        port <= e.key.portHi,
    );
  return redirects && engine.endpointPolicy(dst.namespace!, dst.name).ingress.enforced;
}

/** An endpoint's pods whose policy redirects DNS (their node needs the DNS proxy). */
function redirectsDNSOn(engine: PolicyEngineAPI, pods: readonly TestEndpoint[]): boolean {
  return pods.some((p) =>
    engine
      .endpointPolicy(p.namespace!, p.name)
      .entries.some((e) => e.verdict === 'redirect' && e.l7?.parser === 'dns'),
  );
}

export async function replayMultiNode(
  test: PolicyTest,
  opts: {
    createEngine: EngineFactory;
    /** The offline engine of the test (which pods redirect DNS, which flows cannot be replayed). */
    engine?: PolicyEngineAPI;
    offline: readonly FlowResult[];
    skips: ReadonlyMap<number, string>;
    timeoutMs?: number;
    signal?: AbortSignal;
  },
): Promise<LiveFlowResult[]> {
  const names = [...new Set(['node-1', ...test.endpoints.filter((e) => !e.external).map(nodeOf)])];
  const nsName = (k: number): string => `sw-lt${process.pid % 100000}-${k + 1}`;
  const namespaces = new Map<string, Record<string, string>>();
  for (const ns of test.namespaces) namespaces.set(ns.name, ns.labels);
  for (const e of test.endpoints)
    if (e.namespace !== undefined && !namespaces.has(e.namespace)) namespaces.set(e.namespace, {});
  const factory: EngineFactory = (c, d) =>
    opts.createEngine({ ...c, enforcementMode: test.enforcementMode }, d);
  const engine = opts.engine ?? prepareEngine(test, opts.createEngine).engine;
  const skips = new Map(opts.skips);
  const k8sNodeOf = (p: PeerRef): string | undefined => {
    const ep = endpointOf(test, p);
    return ep === undefined ? undefined : nodeOf(ep);
  };
  // Test hosts as one node would have them (their addresses), each on the node of the flow's
  // endpoint; `host` and `remote-node` are the nodes themselves here.
  const hostOf = new Map<string, TestHostSpec>();
  for (const h of nodePlan(test, skips).hosts ?? [])
    if (!(h.peer.kind === 'entity' && (h.peer.entity === 'host' || h.peer.entity === 'remote-node')))
      hostOf.set(peerKey(h.peer), h);
  const hostsOn = new Map<string, Map<string, TestHostSpec>>();
  for (const f of test.flows) {
    if (skips.has(f.index)) continue;
    for (const [p, other] of [
      [f.request.src, f.request.dst],
      [f.request.dst, f.request.src],
    ] as const) {
      const h = hostOf.get(peerKey(p));
      if (h === undefined) continue;
      const n = k8sNodeOf(other) ?? 'node-1';
      const m = hostsOn.get(n) ?? new Map<string, TestHostSpec>();
      m.set(peerKey(p), h);
      hostsOn.set(n, m);
    }
  }
  const kafka = test.flows.some((f) => !skips.has(f.index) && isKafka(f));
  const cluster = await LiveCluster.start({
    nodes: names.map((n, k) => {
      const eps = test.endpoints.filter((e) => !e.external && e.namespace !== undefined && nodeOf(e) === n);
      // the proxies of this node, as one node runs them: HTTP always, Kafka and DNS when needed
      const components: RuntimeComponent[] = [
        new ProxyComponent({ parser: 'http' }),
        ...(kafka ? [new ProxyComponent({ parser: 'kafka' })] : []),
        ...(redirectsDNSOn(engine, eps)
          ? dnsComponents(new FQDNComponent({ cacheFile: false }), () => {})
          : []),
      ];
      return {
        name: nsName(k),
        pods: eps.map((e) => ({
          name: e.name,
          namespace: e.namespace!,
          labels: e.labels,
          ip: e.ip,
          ...(e.ports ? { ports: e.ports } : {}),
        })),
        hosts: [...(hostsOn.get(n)?.values() ?? [])],
        components,
      };
    }),
    policies: test.policies,
    namespaces,
    createEngine: factory,
  });
  const servers = new ReplayServers();
  const abort = (): void => void cluster.stop();
  opts.signal?.addEventListener('abort', abort);
  const results: LiveFlowResult[] = [];
  try {
    await cluster.settle();
    const byK8s = new Map<string, ClusterNode>(names.map((n, k) => [n, cluster.nodes[k]!]));
    const nodeOfPeer = (p: PeerRef): ClusterNode | undefined => {
      const n = k8sNodeOf(p);
      return n === undefined ? undefined : byK8s.get(n);
    };
    const place = (p: PeerRef, other: PeerRef): LivePeer | undefined => {
      if (p.kind === 'endpoint') return nodeOfPeer(p)?.rt.datapath.live(p);
      // `host` is the other side's own node (what the offline engine, one node, means by it);
      // `remote-node` a node other than the other side's
      const mine = nodeOfPeer(other) ?? cluster.nodes[0];
      if (p.kind === 'entity' && (p.entity === 'host' || p.entity === 'remote-node')) {
        const n = p.entity === 'host' ? mine : cluster.nodes.find((x) => x !== mine);
        return n === undefined
          ? undefined
          : { key: `entity:${p.entity}`, ip: n.ip, peer: p, ns: n.spec.name };
      }
      // an outside address or another entity: the test host on the endpoint's node
      return mine?.rt.datapath.live(p);
    };
    const ends = (f: TestFlow): { src?: LivePeer; dst?: LivePeer } => {
      const src = place(f.request.src, f.request.dst);
      const dst = place(f.request.dst, f.request.src);
      return { ...(src ? { src } : {}), ...(dst ? { dst } : {}) };
    };
    const flows = test.flows.filter((f) => !skips.has(f.index));
    await startServers(
      test,
      skips,
      {
        dst: (f) => ends(f).dst,
        // a DNS server runs where the first query to it is sent
        dnsAt: (d) => {
          const f = flows.find(
            (x) => isDNSQuery(x) && peerKey(x.request.dst) === peerKey(d.peer) && x.request.dport === d.port,
          );
          return f === undefined ? undefined : ends(f).dst;
        },
      },
      servers,
    );
    for (const f of test.flows) {
      if (opts.signal?.aborted) break;
      const off = opts.offline.find((r) => r.flow === f.index);
      const base: LiveFlowResult = {
        file: test.file,
        test: test.name,
        flow: f.index,
        from: f.from,
        to: f.to,
        protocol: f.request.protocol,
        expected: f.expect,
        offline: off?.actual ?? 'unknown',
        outcome: 'skip',
        ...(f.name !== undefined ? { name: f.name } : {}),
        ...(f.request.dport !== undefined ? { port: f.request.dport } : {}),
      };
      const why = skips.get(f.index);
      const { src, dst } = why === undefined ? ends(f) : {};
      if (why !== undefined || src === undefined || dst === undefined) {
        results.push({ ...base, note: why ?? 'no live host for this flow in a multi-node test' });
        continue;
      }
      const s = await sendFlow(test, f, off, src, dst, {
        timeoutMs: opts.timeoutMs ?? 300,
        servers,
        proxiedIntoIngress: proxiedIntoIngress(test, engine, f),
      });
      if (s.live !== base.offline) s.notes.unshift(`live ${s.live} but offline ${base.offline}`);
      const res: LiveFlowResult = {
        ...base,
        live: s.live,
        outcome: s.live === f.expect && s.notes.length === 0 ? 'pass' : 'fail',
        ms: Math.round(s.ms),
        ...(s.records !== undefined ? { records: s.records } : {}),
        recordsNote: `across nodes (${nodeName(test, f.request.src)} → ${nodeName(test, f.request.dst)}): records not checked yet`,
      };
      if (s.notes.length > 0) res.note = s.notes.join('; ');
      results.push(res);
    }
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    await servers.closeAll();
    await cluster.stop();
  }
  return results;
}

function nodeName(test: PolicyTest, p: PeerRef): string {
  if (p.kind === 'endpoint') return nodeOf(endpointOf(test, p) ?? {});
  if (p.kind === 'entity') return p.entity === 'host' ? 'node-1' : p.entity;
  return p.ip;
}
