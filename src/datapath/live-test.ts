// `seawall test --live`: the PolicyTest files the offline runner takes, replayed as real traffic
// through the enforcing datapath. Per test: a node namespace of its own, one namespace per
// endpoint and per outside peer, the engine's MapState compiled into nftables, listeners on the
// ports the flows use, then each flow sent in order by a real client. The verdict observed on
// the wire is compared with the expectation and with the offline engine's verdict.

import type { PeerRef } from '../policy/types.ts';
import { collectTestFiles } from '../policytest/files.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import { formatIssue } from '../policytest/report.ts';
import { type EngineFactory, prepareEngine, runPolicyTest } from '../policytest/runner.ts';
import type { FlowResult, PolicyTest, TestFlow } from '../policytest/types.ts';
import { peerLabel } from '../policytest/types.ts';
import { ENTITY_IPS, type LivePeer, NodeDatapath, peerKey } from './node.ts';
import { liveUnavailable } from './preflight.ts';
import { ProbePool, ping } from './probe.ts';

export interface LiveOptions {
  output?: 'human' | 'json';
  /** Where lines go (default stdout). */
  write?: (line: string) => void;
  /** TCP/UDP client timeout in ms (a denied flow costs this much). */
  timeoutMs?: number;
  /** Node namespace name (default: one per process, so runs never collide with the agent). */
  node?: string;
  /** Engine factory; default the real PolicyEngine. */
  createEngine?: EngineFactory;
}

export type LiveOutcome = 'pass' | 'fail' | 'skip';

export interface LiveFlowResult {
  file: string;
  test: string;
  flow: number;
  name?: string;
  from: string;
  to: string;
  protocol: string;
  port?: number;
  expected: string;
  offline: string;
  live?: 'allowed' | 'denied';
  outcome: LiveOutcome;
  note?: string;
  ms?: number;
}

/** Why a flow cannot be replayed live yet, or undefined when it can. */
export function liveSkip(test: PolicyTest, flow: TestFlow): string | undefined {
  const r = flow.request;
  if (r.l7) return `${r.l7.kind} request: needs the L7 proxy (a later issue)`;
  if (flow.toFQDN) return 'FQDN destination: needs the DNS proxy to learn addresses (a later issue)';
  if (flow.expect === 'audited') return 'audit verdicts are not observable on the wire';
  if (r.protocol === 'SCTP') return 'no SCTP client on this platform';
  if (r.protocol === 'ICMPv6' || r.icmp?.family === 'IPv6') return 'the live datapath is IPv4 only';
  if (r.protocol === 'ICMP' && (r.icmp?.type ?? 8) !== 8) return 'only ICMP echo requests are sent live';
  const onOtherNode = (p: PeerRef): boolean =>
    p.kind === 'endpoint' &&
    test.endpoints.some(
      (e) => e.namespace === p.namespace && e.name === p.name && (e.node ?? 'node-1') !== 'node-1',
    );
  if (onOtherNode(r.src) || onOtherNode(r.dst))
    return 'endpoint on another node: needs node2 (a later issue)';
  if (peerKey(r.src) === peerKey(r.dst)) return 'a flow to itself never leaves the pod';
  if (learntFromDNS(test, flow)) {
    return 'destination learnt from an earlier DNS answer: needs the DNS proxy (a later issue)';
  }
  return undefined;
}

/** Offline, an earlier DNS flow may have taught the engine this address (toFQDNs); live cannot yet. */
function learntFromDNS(test: PolicyTest, flow: TestFlow): boolean {
  const dst = flow.request.dst;
  const ip =
    dst.kind === 'ip'
      ? dst.ip
      : test.endpoints.find(
          (e) => dst.kind === 'endpoint' && e.name === dst.name && e.namespace === dst.namespace,
        )?.ip;
  if (!ip || !test.dns.some((d) => d.ips.includes(ip))) return false;
  return test.flows.some((f) => f.index < flow.index && f.request.l7?.kind === 'dns');
}

function proto(flow: TestFlow): 'tcp' | 'udp' | 'icmp' {
  const p = flow.request.protocol;
  return p === 'UDP' ? 'udp' : p === 'ICMP' ? 'icmp' : 'tcp';
}

async function defaultFactory(): Promise<EngineFactory> {
  const mod = (await import('../policytest/default-engine.ts')) as { defaultEngineFactory: EngineFactory };
  return mod.defaultEngineFactory;
}

let liveNode: NodeDatapath | undefined;
let liveProbes: ProbePool | undefined;

async function teardown(): Promise<void> {
  liveProbes?.closeAll();
  liveProbes = undefined;
  const n = liveNode;
  liveNode = undefined;
  if (n) await n.down();
}

function onSignal(sig: NodeJS.Signals): void {
  void teardown().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
}

/** Replays one PolicyTest live; the node is always torn down. */
export async function replayTest(
  test: PolicyTest,
  opts: LiveOptions & { createEngine: EngineFactory },
): Promise<LiveFlowResult[]> {
  const offline = runPolicyTest(test, { createEngine: opts.createEngine });
  const { engine } = prepareEngine(test, opts.createEngine);
  const node = new NodeDatapath(engine, { node: opts.node ?? `seawall-lt${process.pid % 100000}` });
  const probes = new ProbePool();
  liveNode = node;
  liveProbes = probes;
  const timeoutMs = opts.timeoutMs ?? 300;
  const results: LiveFlowResult[] = [];
  try {
    await node.up();
    for (const ep of test.endpoints) {
      if (ep.external || ep.namespace === undefined) continue;
      await node.addPod({ ...ep, namespace: ep.namespace }, { sync: false });
    }
    const skips = new Map<number, string>();
    for (const f of test.flows) {
      const why = liveSkip(test, f);
      if (why) {
        skips.set(f.index, why);
        continue;
      }
      for (const p of [f.request.src, f.request.dst]) {
        if (node.live(p)) continue;
        const ip = p.kind === 'ip' ? p.ip : p.kind === 'entity' ? ENTITY_IPS[p.entity] : undefined;
        if (ip) await node.addTestHost(p, ip, { sync: false });
      }
    }
    await node.sync();
    // servers first, so every flow finds a listener behind the policy
    for (const f of test.flows) {
      if (skips.has(f.index) || proto(f) === 'icmp') continue;
      const dst = node.live(f.request.dst);
      if (dst && f.request.dport !== undefined)
        await probes.get(dst.ns).listen(proto(f) as 'tcp' | 'udp', f.request.dport);
    }
    for (const f of test.flows) {
      const off: FlowResult | undefined = offline.results.find((r) => r.flow === f.index);
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
      const src: LivePeer | undefined = node.live(f.request.src);
      const dst: LivePeer | undefined = node.live(f.request.dst);
      if (why || !src || !dst) {
        results.push({
          ...base,
          note: why ?? `no live host for ${!src ? peerLabel(f.request.src) : peerLabel(f.request.dst)}`,
        });
        continue;
      }
      const p = proto(f);
      const r =
        p === 'icmp'
          ? await ping(src.ns, dst.ip, Math.max(timeoutMs, 500))
          : await probes.get(src.ns).connect(p, dst.ip, f.request.dport ?? 0, timeoutMs);
      const live = r.passed ? 'allowed' : 'denied';
      const agree = live === base.offline;
      const pass = live === f.expect && agree;
      results.push({
        ...base,
        live,
        outcome: pass ? 'pass' : 'fail',
        ms: Math.round(r.ms),
        ...(agree ? {} : { note: `live ${live} but offline ${base.offline}` }),
      });
    }
  } finally {
    probes.closeAll();
    await node.down();
    liveNode = undefined;
    liveProbes = undefined;
  }
  return results;
}

export function formatLiveResult(r: LiveFlowResult): string {
  const tag = r.outcome === 'pass' ? 'PASS' : r.outcome === 'fail' ? 'FAIL' : 'SKIP';
  const what = `${r.protocol}${r.port !== undefined ? `/${r.port}` : ''}`;
  const label = r.name ? ` ${r.name}` : '';
  const verdicts =
    r.outcome === 'skip'
      ? `skipped-live: ${r.note ?? ''}`
      : `live=${r.live} expected=${r.expected} offline=${r.offline}${r.note ? ` (${r.note})` : ''}`;
  return `${tag}  ${r.test} #${r.flow}${label}: ${r.from} -> ${r.to} ${what}  ${verdicts}`;
}

/** Entry point of `seawall test --live FILE...`; returns the exit code (0 pass, 1 fail, 2 bad input). */
export async function runLive(paths: string[], opts: LiveOptions = {}): Promise<number> {
  const write = opts.write ?? ((l: string) => process.stdout.write(`${l}\n`));
  const why = liveUnavailable();
  if (why) {
    write(`seawall test --live: ${why}`);
    return 2;
  }
  const { files, missing } = collectTestFiles(paths);
  if (missing.length > 0) {
    for (const m of missing) write(`${m}: no such file or directory`);
    return 2;
  }
  const tests: PolicyTest[] = [];
  let invalid = false;
  for (const f of files) {
    const parsed = await loadPolicyTestFile(f);
    for (const i of parsed.issues) {
      if (i.severity !== 'error') continue;
      invalid = true;
      write(formatIssue(i));
    }
    tests.push(...parsed.tests);
  }
  if (invalid) return 2;
  const createEngine = opts.createEngine ?? (await defaultFactory());
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    for (const t of tests) {
      const rs = await replayTest(t, { ...opts, createEngine });
      for (const r of rs) {
        if (r.outcome === 'pass') passed++;
        else if (r.outcome === 'fail') failed++;
        else skipped++;
        write(opts.output === 'json' ? JSON.stringify(r) : formatLiveResult(r));
      }
    }
  } finally {
    await teardown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (opts.output !== 'json') write(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  return failed > 0 ? 1 : 0;
}
