// `seawall test --live`: the PolicyTest files the offline runner takes, replayed as real traffic
// through the enforcing datapath. Per test: a node namespace of its own, one namespace per
// endpoint and per outside peer, the engine's MapState compiled into nftables, listeners on the
// ports the flows use, then each flow sent in order by a real client. The verdict observed on
// the wire is compared with the expectation and with the offline engine's verdict.
//
// Flow records: the node runs the same flow pipeline as the agent (ulogd2 → records). After each
// flow, every direction whose policy is enforced must have produced its record (FORWARDED when
// the flow got through, DROPPED in one of them when it did not), and the kernel's verdict must
// agree with the engine's for each record (`agrees`); otherwise the flow fails. Without ulogd2
// the records are not checked and the run says so. The servers and clients are live-replay.ts's
// (shared with the multi-node replay, live-multinode.ts); the record checks are this file's.

import { writeFileSync } from 'node:fs';
import { dnsComponents, FQDNComponent } from '../agent/fqdn.ts';
import { ProxyComponent } from '../agent/proxy.ts';
import { NodeRuntime } from '../agent/runtime.ts';
import { type LivePeer, peerKey } from '../datapath/node.ts';
import { liveUnavailable } from '../datapath/preflight.ts';
import type { KernelRecord } from '../flow/kernel.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';
import type { RingEntry } from '../observe/sink.ts';
import type { EngineFactory, PeerRef, PolicyEngineAPI, TrafficDirection } from '../policy/types.ts';
import { collectTestFiles } from '../policytest/files.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import { formatIssue } from '../policytest/report.ts';
import { prepareEngine, runPolicyTest } from '../policytest/runner.ts';
import type { FlowResult, PolicyTest, TestFlow } from '../policytest/types.ts';
import { peerLabel } from '../policytest/types.ts';
import { formatTestSuites } from '../report/junit.ts';
import { isMultiNode, multiNodeUnavailable, replayMultiNode } from './live-multinode.ts';
import {
  flowProto,
  isDNSQuery,
  isGRPC,
  isKafka,
  isPlainHTTP,
  type LiveFlowResult,
  nodePlan,
  ReplayServers,
  type Sent,
  sendFlow,
  startServers,
} from './live-replay.ts';

// the shared replay's names, where the CLI and the tests have always found them
export {
  CONNECTIVITY_NAME,
  dnsServerPort,
  dnsServers,
  EXPECTED_GRPC_CODES,
  GRPC_STATUS_NAMES,
  grpcMethodOf,
  isDNSQuery,
  isGRPC,
  isKafka,
  isPlainHTTP,
  type LiveFlowResult,
  type LiveOutcome,
  nodePlan,
} from './live-replay.ts';

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
  /** Also write JUnit XML here (one testsuite per PolicyTest, skipped-live flows as skipped). */
  junit?: string;
  /** Print each flow's records (direction and verdict) on its line. */
  verbose?: boolean;
  /** How long to wait for a flow's records after the probe returns (ms). */
  recordTimeoutMs?: number;
  /** Aborted (by the CLI on SIGINT/SIGTERM): the node in use is torn down and the run returns. */
  signal?: AbortSignal;
  /** Every endpoint in PolicyAuditMode (--policy-audit-mode). */
  policyAuditMode?: boolean;
}

/** Why a flow cannot be replayed live yet, or undefined when it can. */
export function liveSkip(test: PolicyTest, flow: TestFlow, offline?: FlowResult): string | undefined {
  const r = flow.request;
  // A request on a port that no L7 rule redirects is judged at L3/L4 alone (offline says which):
  // the connection is replayed without its request. Where a proxy would judge it, wait for one.
  // HTTP requests are sent with curl, gRPC calls with grpc-js, through the node's HTTP proxy;
  // Kafka requests with the Kafka client (kafka-client.ts) through the node's Kafka proxy; DNS
  // queries with dig through its DNS proxy (to a dnsmasq answering from the test's `dns`)
  if (
    r.l7 &&
    (offline === undefined || offline.l7 !== undefined) &&
    !isPlainHTTP(flow) &&
    !isGRPC(flow) &&
    !isKafka(flow) &&
    !isDNSQuery(flow)
  )
    return `${r.l7.kind === 'http' ? 'gRPC' : r.l7.kind} request: needs its L7 client or proxy (a later issue)`;
  if (r.protocol === 'SCTP') return 'no SCTP client on this platform';
  if (r.protocol === 'ICMPv6' || r.icmp?.family === 'IPv6') return 'the live datapath is IPv4 only';
  if (r.protocol === 'ICMP' && (r.icmp?.type ?? 8) !== 8) return 'only ICMP echo requests are sent live';
  const onOtherNode = (p: PeerRef): boolean =>
    p.kind === 'endpoint' &&
    test.endpoints.some(
      (e) => e.namespace === p.namespace && e.name === p.name && (e.node ?? 'node-1') !== 'node-1',
    );
  // several nodes are replayed through etcd (live-multinode.ts) when it is installed
  if ((onOtherNode(r.src) || onOtherNode(r.dst)) && multiNodeUnavailable() !== undefined)
    return multiNodeUnavailable();
  if (peerKey(r.src) === peerKey(r.dst)) return 'a flow to itself never leaves the pod';
  return undefined;
}

/** Some pod of the test has a DNS redirect entry (its DNS goes through the DNS proxy). */
export function redirectsDNS(engine: PolicyEngineAPI, test: PolicyTest): boolean {
  return test.endpoints.some(
    (ep) =>
      !ep.external &&
      ep.namespace !== undefined &&
      engine
        .endpointPolicy(ep.namespace, ep.name)
        .entries.some((e) => e.verdict === 'redirect' && e.l7?.parser === 'dns'),
  );
}

async function defaultFactory(): Promise<EngineFactory> {
  const mod = (await import('../policy/default-engine.ts')) as { defaultEngineFactory: EngineFactory };
  return mod.defaultEngineFactory;
}

/**
 * Replays one PolicyTest live through a node runtime of its own; the node is always torn down.
 * An abort (a signal) tears it down at once and makes this reject with code `agent-stopped`.
 */
export async function replayTest(
  test: PolicyTest,
  opts: LiveOptions & { createEngine: EngineFactory },
): Promise<LiveFlowResult[]> {
  const offline = runPolicyTest(test, { createEngine: opts.createEngine });
  const { engine } = prepareEngine(test, opts.createEngine);
  const skips = new Map<number, string>();
  for (const f of test.flows) {
    const why = liveSkip(
      test,
      f,
      offline.results.find((r) => r.flow === f.index),
    );
    if (why) skips.set(f.index, why);
  }
  if (isMultiNode(test) && multiNodeUnavailable() === undefined)
    return replayMultiNode(test, {
      createEngine: opts.createEngine,
      engine,
      offline: offline.results,
      skips,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
  const servers = new ReplayServers();
  const kafkaFlows = test.flows.filter(
    (f) => !skips.has(f.index) && isKafka(f) && f.request.dport !== undefined,
  );
  const agreement = new WeakMap<FlowEvent, KernelRecord>();
  const rt = new NodeRuntime({
    engine,
    node: opts.node ?? `seawall-lt${process.pid % 100000}`,
    flows: {
      flowLog: false,
      socket: false,
      // every packet its record: two identical pings in a row are two flows here
      dedupWindowMs: 0,
      pollMs: 20,
      onRecord: (r, e) => agreement.set(e, r),
    },
    components: [
      // redirect entries go through the node's HTTP and DNS proxies, as under the agent (never at
      // L4); DNS answers teach toFQDNs before they reach the pod
      new ProxyComponent({ parser: 'http' }),
      // Kafka redirect entries through the node's Kafka proxy, when a flow carries a Kafka request
      ...(kafkaFlows.length > 0 ? [new ProxyComponent({ parser: 'kafka' })] : []),
      // the DNS proxy where some pod's policy redirects DNS (a process less for the other tests)
      ...(redirectsDNS(engine, test) ? dnsComponents(new FQDNComponent({ cacheFile: false }), () => {}) : []),
      {
        // the flows' servers (a DNS server in each DNS server endpoint, answering from `dns`)
        // after the flow pipeline, so every flow finds a listener behind the policy
        name: 'probe servers',
        start: (r) =>
          startServers(
            test,
            skips,
            { dst: (f) => r.datapath.live(f.request.dst), dnsAt: (d) => r.datapath.live(d.peer) },
            servers,
          ),
        stop: () => servers.closeAll(),
      },
    ],
  });
  const abort = (): void => void rt.stop();
  if (opts.signal?.aborted) abort();
  opts.signal?.addEventListener('abort', abort);
  const timeoutMs = opts.timeoutMs ?? 300;
  const results: LiveFlowResult[] = [];
  try {
    await rt.start(nodePlan(test, skips));
    const node = rt.datapath;
    const pipeline = rt.flows;
    for (const f of test.flows) {
      rt.checkStopping();
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
      pipeline?.drain();
      const fromSeq = pipeline?.nextSeq ?? 0;
      const sent = await sendFlow(test, f, off, src, dst, { timeoutMs, servers });
      rt.checkStopping(); // a client cut short by the teardown says nothing about the policy
      if (sent.kind === 'http') {
        let live: 'allowed' | 'denied' | 'audited' = sent.live;
        // the proxy's L7 records, not the kernel's, describe this flow: kernel records are not
        // checked, except the AUDIT record an audited redirect leaves (nat_pre logs it)
        const records = [...(sent.records ?? [])];
        if (
          live === 'allowed' &&
          (base.offline === 'audited' || f.expect === 'audited') &&
          pipeline?.available
        ) {
          const audit = (e: RingEntry): boolean =>
            e.event.flow.verdict === 'AUDIT' && sameFlow(e.event.flow, src, dst, f);
          const entries = await pipeline.waitFor(
            fromSeq,
            (es) => es.some(audit),
            opts.recordTimeoutMs ?? 2000,
          );
          rt.checkStopping();
          const seen = entries.filter(audit);
          if (seen.length > 0) live = 'audited';
          records.push(...seen.map((e) => recordText(e.event.flow)));
        }
        results.push(judged(base, f, live, sent, records));
        continue;
      }
      if (sent.kind !== 'l4') {
        // the proxies' L7 records, not the kernel's, describe this flow: kernel records not checked
        results.push(judged(base, f, sent.live, sent, sent.records ?? []));
        continue;
      }
      const r = { passed: sent.live === 'allowed', ms: sent.ms };
      // audited: the traffic passed and a record says AUDIT (audit mode lets policy drops pass)
      let live: 'allowed' | 'denied' | 'audited' = r.passed ? 'allowed' : 'denied';
      const res: LiveFlowResult = { ...base, live, outcome: 'fail', ms: Math.round(r.ms) };
      const notes: string[] = [];
      if (pipeline?.available) {
        const dirs = enforcedDirections(engine, src, dst);
        const awaited = r.passed && (base.offline === 'audited' || f.expect === 'audited') ? 'audited' : live;
        const entries = await pipeline.waitFor(
          fromSeq,
          (es) =>
            checkRecords(
              es.filter((e) => sameFlow(e.event.flow, src, dst, f)),
              dirs,
              awaited,
            ).done,
          opts.recordTimeoutMs ?? 2000,
        );
        rt.checkStopping();
        const mine = entries.filter((e) => sameFlow(e.event.flow, src, dst, f));
        if (r.passed && mine.some((e) => e.event.flow.verdict === 'AUDIT')) live = 'audited';
        res.live = live;
        res.records = mine.map((e) => recordText(e.event.flow));
        const check = checkRecords(mine, dirs, live);
        notes.push(...check.problems);
        for (const e of mine) {
          const k = agreement.get(e.event);
          if (k !== undefined && !k.agrees) {
            notes.push(
              `kernel ${e.event.flow.verdict} but engine ${k.engineVerdict} on ${e.event.flow.traffic_direction}: the datapath disagrees with the engine`,
            );
          }
        }
      } else if (pipeline !== undefined) {
        res.recordsNote = `flow records unavailable (${pipeline.status().reason ?? 'unknown'})`;
      }
      if (live !== base.offline) notes.unshift(`live ${live} but offline ${base.offline}`);
      if (notes.length > 0) res.note = notes.join('; ');
      res.outcome = live === f.expect && notes.length === 0 ? 'pass' : 'fail';
      results.push(res);
    }
  } finally {
    opts.signal?.removeEventListener('abort', abort);
    await rt.stop();
  }
  return results;
}

/** An L7 flow's result: the client's verdict against the expectation and the offline verdict. */
function judged(
  base: LiveFlowResult,
  f: TestFlow,
  live: 'allowed' | 'denied' | 'audited',
  sent: Sent,
  records: string[],
): LiveFlowResult {
  const notes = [
    ...(live === base.offline ? [] : [`live ${live} but offline ${base.offline}`]),
    ...sent.notes,
  ];
  const res: LiveFlowResult = {
    ...base,
    live,
    outcome: live === f.expect && notes.length === 0 ? 'pass' : 'fail',
    ms: Math.round(sent.ms),
    records,
  };
  if (notes.length > 0) res.note = notes.join('; ');
  return res;
}

/** Directions whose policy the kernel enforces for this flow: each logs its verdict. */
export function enforcedDirections(
  engine: PolicyEngineAPI,
  src: LivePeer,
  dst: LivePeer,
): TrafficDirection[] {
  const out: TrafficDirection[] = [];
  if (src.endpointId !== undefined && src.peer.kind === 'endpoint') {
    if (engine.endpointPolicy(src.peer.namespace, src.peer.name).egress.enforced) out.push('EGRESS');
  }
  if (dst.endpointId !== undefined && dst.peer.kind === 'endpoint') {
    if (engine.endpointPolicy(dst.peer.namespace, dst.peer.name).ingress.enforced) out.push('INGRESS');
  }
  return out;
}

function l4Of(f: Flow): { proto: string; dport?: number } {
  const l4 = f.l4;
  if (l4 === undefined) return { proto: '' };
  if ('TCP' in l4)
    return { proto: 'tcp', ...(l4.TCP.destination_port ? { dport: l4.TCP.destination_port } : {}) };
  if ('UDP' in l4)
    return { proto: 'udp', ...(l4.UDP.destination_port ? { dport: l4.UDP.destination_port } : {}) };
  if ('ICMPv4' in l4) return { proto: 'icmp' };
  return { proto: Object.keys(l4)[0]?.toLowerCase() ?? '' };
}

/** A record of this flow: its addresses, protocol and destination port. */
function sameFlow(rec: Flow, src: LivePeer, dst: LivePeer, f: TestFlow): boolean {
  // the policy verdicts: the drop (type 1) and trace (type 4) events of the same packets say no more
  if (rec.event_type !== undefined && rec.event_type.type !== 5) return false;
  if (rec.IP?.source !== src.ip || rec.IP?.destination !== dst.ip) return false;
  const l4 = l4Of(rec);
  if (l4.proto !== flowProto(f)) return false;
  return l4.proto === 'icmp' || l4.dport === f.request.dport;
}

export function recordText(f: Flow): string {
  const reason = f.drop_reason_desc !== undefined ? ` (${f.drop_reason_desc})` : '';
  // a trace record names its observation point as `hubble observe` does (to-proxy)
  const point = f.trace_observation_point === 'TO_PROXY' ? ' to-proxy' : '';
  return `${f.traffic_direction ?? '?'} ${f.verdict}${reason}${point}`;
}

/**
 * What the records of one flow must show: allowed → a FORWARDED (or REDIRECTED, AUDIT) record for
 * every enforced direction and no drop; audited → the same, and an AUDIT record in one of them;
 * denied → a DROPPED record in an enforced direction.
 */
export function checkRecords(
  entries: readonly RingEntry[],
  dirs: readonly TrafficDirection[],
  live: 'allowed' | 'denied' | 'audited',
): { done: boolean; problems: string[] } {
  const flows = entries.map((e) => e.event.flow);
  const problems: string[] = [];
  if (live === 'audited' && !flows.some((f) => f.verdict === 'AUDIT')) {
    problems.push('no AUDIT flow record for a flow audit mode let through');
  }
  if (live === 'allowed' || live === 'audited') {
    for (const d of dirs) {
      if (!flows.some((f) => f.traffic_direction === d && f.verdict !== 'DROPPED')) {
        problems.push(`no FORWARDED flow record for the enforced ${d} direction`);
      }
    }
    for (const f of flows) {
      if (f.verdict === 'DROPPED')
        problems.push(`a ${f.traffic_direction} DROPPED record for a flow that got through`);
    }
  } else if (dirs.length > 0) {
    if (
      !flows.some((f) => f.verdict === 'DROPPED' && dirs.includes(f.traffic_direction as TrafficDirection))
    ) {
      problems.push(`no DROPPED flow record in the enforced ${dirs.join('/')} direction(s)`);
    }
  }
  return { done: problems.length === 0, problems };
}

export function formatLiveResult(r: LiveFlowResult, verbose = false): string {
  const tag = r.outcome === 'pass' ? 'PASS' : r.outcome === 'fail' ? 'FAIL' : 'SKIP';
  const what = `${r.protocol}${r.port !== undefined ? `/${r.port}` : ''}`;
  const label = r.name ? ` ${r.name}` : '';
  const verdicts =
    r.outcome === 'skip'
      ? `skipped-live: ${r.note ?? ''}`
      : `live=${r.live ?? 'not run'} expected=${r.expected} offline=${r.offline}${r.note ? ` (${r.note})` : ''}`;
  const records =
    verbose && r.live !== undefined
      ? `  records: ${r.recordsNote ?? (r.records && r.records.length > 0 ? r.records.join(', ') : '(none: no enforced direction)')}`
      : '';
  return `${tag}  ${r.test} #${r.flow}${label}: ${r.from} -> ${r.to} ${what}  ${verdicts}${records}`;
}

/**
 * JUnit XML in the offline runner's layout (testsuites → one testsuite per PolicyTest → one
 * testcase per flow), with skipped-live flows as <skipped/> so they never count as passed.
 */
export function formatLiveJUnit(results: readonly LiveFlowResult[], seconds: Map<string, number>): string {
  const suites = new Map<string, LiveFlowResult[]>();
  for (const r of results) {
    const k = `${r.file}\u0000${r.test}`;
    const list = suites.get(k) ?? [];
    list.push(r);
    suites.set(k, list);
  }
  return formatTestSuites({
    name: 'seawall test --live',
    skippedCounts: true,
    suites: [...suites].map(([k, rs]) => ({
      name: rs[0]!.test,
      file: rs[0]!.file,
      time: seconds.get(k) ?? 0,
      cases: rs.map((r) => {
        const port = r.port !== undefined ? `${r.port}/${r.protocol}` : r.protocol;
        return {
          name: `flows[${r.flow}]${r.name !== undefined ? ` ${r.name}` : ''}: ${r.from} → ${r.to} ${port}`,
          classname: rs[0]!.test,
          ...(r.ms !== undefined ? { time: r.ms / 1000 } : {}),
          outcome: r.outcome,
          message:
            r.outcome === 'skip'
              ? `skipped-live: ${r.note ?? ''}`
              : `expected ${r.expected}, live ${r.live ?? 'unknown'}, offline ${r.offline}${r.note ? ` (${r.note})` : ''}`,
          body: (r.records ?? []).join('\n'),
        };
      }),
    })),
  });
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
  const given = opts.createEngine ?? (await defaultFactory());
  const createEngine: EngineFactory =
    opts.policyAuditMode === true ? (c, d) => given({ ...c, policyAuditMode: true }, d) : given;
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const all: LiveFlowResult[] = [];
  const seconds = new Map<string, number>();
  let warned = false;
  for (const t of tests) {
    if (opts.signal?.aborted) break;
    const t0 = performance.now();
    let rs: LiveFlowResult[];
    try {
      rs = await replayTest(t, { ...opts, createEngine });
    } catch (e) {
      // interrupted: the node is down; what ran so far is reported
      if (opts.signal?.aborted) break;
      // one test that cannot be built live fails its flows; the others still run
      const msg = `live setup failed: ${(e as Error).message}`;
      rs = t.flows.map((f) => ({
        file: t.file,
        test: t.name,
        flow: f.index,
        ...(f.name !== undefined ? { name: f.name } : {}),
        from: f.from,
        to: f.to,
        protocol: f.request.protocol,
        ...(f.request.dport !== undefined ? { port: f.request.dport } : {}),
        expected: f.expect,
        offline: 'unknown',
        outcome: 'fail' as const,
        note: msg,
      }));
    }
    seconds.set(`${t.file}\u0000${t.name}`, (performance.now() - t0) / 1000);
    for (const r of rs) {
      all.push(r);
      if (r.outcome === 'pass') passed++;
      else if (r.outcome === 'fail') failed++;
      else skipped++;
      if (r.recordsNote && !warned && opts.output !== 'json') {
        warned = true;
        write(`WARNING: ${r.recordsNote}: flow records are not checked`);
      }
      write(opts.output === 'json' ? JSON.stringify(r) : formatLiveResult(r, opts.verbose === true));
    }
  }
  if (opts.signal?.aborted && opts.output !== 'json') write('interrupted: the node is torn down');
  if (opts.output !== 'json') write(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (opts.junit !== undefined) {
    try {
      writeFileSync(opts.junit, formatLiveJUnit(all, seconds));
    } catch (e) {
      write(`seawall test --live: cannot write ${opts.junit}: ${(e as Error).message}`);
      return 2;
    }
  }
  return failed > 0 ? 1 : 0;
}
