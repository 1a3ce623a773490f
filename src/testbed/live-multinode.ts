// `seawall test --live` for a PolicyTest whose endpoints name several nodes (`node:`): one node
// namespace per node on one underlay, an etcd of its own, one engine and runtime per node in
// kvstore mode (testbed/cluster.ts). Each flow is sent from its source's node to its
// destination's node, so egress is judged where the source runs and ingress where the
// destination runs, by the identity the destination's node has for the source address. `host`
// is the other side's own node, `remote-node` another node. L7 requests, outside addresses and the other entities need test hosts per node: skipped
// with the reason. Flow records are not checked across nodes yet (said per flow).

import type { LivePeer } from '../datapath/node.ts';
import { etcdBinary } from '../kvstore/testing/etcd.ts';
import type { EngineFactory, PeerRef } from '../policy/types.ts';
import type { FlowResult, PolicyTest, TestFlow } from '../policytest/types.ts';
import { type ClusterNode, LiveCluster } from './cluster.ts';
import type { LiveFlowResult } from './live-test.ts';
import { ProbePool, ping } from './probe.ts';

const nodeOf = (e: { node?: string }): string => e.node ?? 'node-1';

/** Endpoints on a node other than node-1: the test needs several nodes. */
export function isMultiNode(test: Pick<PolicyTest, 'endpoints'>): boolean {
  return test.endpoints.some((e) => !e.external && e.namespace !== undefined && nodeOf(e) !== 'node-1');
}

/** Why several nodes cannot be replayed here, or undefined. */
export function multiNodeUnavailable(): string | undefined {
  return etcdBinary() === undefined ? 'endpoint on another node: needs etcd (Debian etcd-server)' : undefined;
}

/** Why a flow of a multi-node test is not replayed live, or undefined. */
export function multiNodeSkip(flow: TestFlow, offline?: FlowResult): string | undefined {
  if (flow.request.l7 !== undefined && (offline === undefined || offline.l7 !== undefined))
    return 'L7 request in a multi-node test: no L7 proxies per node yet';
  for (const p of [flow.request.src, flow.request.dst]) {
    if (p.kind === 'ip') return 'outside address in a multi-node test: no test hosts per node yet';
    if (p.kind === 'entity' && p.entity !== 'host' && p.entity !== 'remote-node')
      return `entity ${p.entity} in a multi-node test: no test hosts per node yet`;
  }
  return undefined;
}

function proto(flow: TestFlow): 'tcp' | 'udp' | 'icmp' {
  return flow.request.protocol === 'UDP' ? 'udp' : flow.request.protocol === 'TCP' ? 'tcp' : 'icmp';
}

export async function replayMultiNode(
  test: PolicyTest,
  opts: {
    createEngine: EngineFactory;
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
  const cluster = await LiveCluster.start({
    nodes: names.map((n, k) => ({
      name: nsName(k),
      pods: test.endpoints
        .filter((e) => !e.external && e.namespace !== undefined && nodeOf(e) === n)
        .map((e) => ({
          name: e.name,
          namespace: e.namespace!,
          labels: e.labels,
          ip: e.ip,
          ...(e.ports ? { ports: e.ports } : {}),
        })),
    })),
    policies: test.policies,
    namespaces,
    createEngine: factory,
  });
  const probes = new ProbePool();
  const abort = (): void => void cluster.stop();
  opts.signal?.addEventListener('abort', abort);
  const results: LiveFlowResult[] = [];
  try {
    await cluster.settle();
    const byK8s = new Map<string, ClusterNode>(names.map((n, k) => [n, cluster.nodes[k]!]));
    const nodeOfPeer = (p: PeerRef): ClusterNode | undefined => {
      if (p.kind !== 'endpoint') return undefined;
      const ep = test.endpoints.find((e) => e.namespace === p.namespace && e.name === p.name);
      return ep === undefined ? undefined : byK8s.get(nodeOf(ep));
    };
    const place = (p: PeerRef, other: PeerRef): LivePeer | undefined => {
      if (p.kind === 'endpoint') return nodeOfPeer(p)?.rt.datapath.live(p);
      if (p.kind === 'entity' && (p.entity === 'host' || p.entity === 'remote-node')) {
        const mine = nodeOfPeer(other) ?? cluster.nodes[0];
        const n = p.entity === 'host' ? mine : cluster.nodes.find((x) => x !== mine);
        return n === undefined
          ? undefined
          : { key: `entity:${p.entity}`, ip: n.ip, peer: p, ns: n.spec.name };
      }
      return undefined;
    };
    const live = (f: TestFlow): { src?: LivePeer; dst?: LivePeer; why?: string } => {
      const why =
        opts.skips.get(f.index) ??
        multiNodeSkip(
          f,
          opts.offline.find((r) => r.flow === f.index),
        );
      if (why !== undefined) return { why };
      // `host` is the other side's own node (what the offline engine, one node, means by it);
      // `remote-node` a node other than the other side's
      const src = place(f.request.src, f.request.dst);
      const dst = place(f.request.dst, f.request.src);
      return { ...(src ? { src } : {}), ...(dst ? { dst } : {}) };
    };
    for (const f of test.flows) {
      const { dst, why } = live(f);
      if (why === undefined && dst !== undefined && proto(f) !== 'icmp' && f.request.dport !== undefined)
        await probes.get(dst.ns).listen(proto(f) as 'tcp' | 'udp', f.request.dport);
    }
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
      const { src, dst, why } = live(f);
      if (why !== undefined || src === undefined || dst === undefined) {
        results.push({ ...base, note: why ?? 'no live host for this flow in a multi-node test' });
        continue;
      }
      const timeoutMs = opts.timeoutMs ?? 300;
      const r =
        proto(f) === 'icmp'
          ? await ping(src.ns, dst.ip, Math.max(timeoutMs, 500))
          : await probes
              .get(src.ns)
              .connect(proto(f) as 'tcp' | 'udp', dst.ip, f.request.dport ?? 0, timeoutMs);
      const verdict = r.passed ? 'allowed' : 'denied';
      const notes = verdict === base.offline ? [] : [`live ${verdict} but offline ${base.offline}`];
      const res: LiveFlowResult = {
        ...base,
        live: verdict,
        outcome: verdict === f.expect && notes.length === 0 ? 'pass' : 'fail',
        ms: Math.round(r.ms),
        recordsNote: `across nodes (${nodeName(test, f.request.src)} → ${nodeName(test, f.request.dst)}): records not checked yet`,
      };
      if (notes.length > 0) res.note = notes.join('; ');
      results.push(res);
    }
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    probes.closeAll();
    await cluster.stop();
  }
  return results;
}

function nodeName(test: PolicyTest, p: PeerRef): string {
  if (p.kind === 'endpoint')
    return nodeOf(test.endpoints.find((e) => e.namespace === p.namespace && e.name === p.name) ?? {});
  if (p.kind === 'entity') return p.entity === 'host' ? 'node-1' : p.entity;
  return p.ip;
}
