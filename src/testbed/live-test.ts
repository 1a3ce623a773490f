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
// the records are not checked and the run says so.

import { writeFileSync } from 'node:fs';
import { ProxyComponent } from '../agent/proxy.ts';
import { type NodePlan, NodeRuntime, type TestHostSpec } from '../agent/runtime.ts';
import { ENTITY_IPS, type LivePeer, peerKey } from '../datapath/node.ts';
import { liveUnavailable } from '../datapath/preflight.ts';
import type { KernelRecord } from '../flow/kernel.ts';
import type { Flow, FlowEvent } from '../flow/types.ts';
import type { RingEntry } from '../observe/sink.ts';
import type {
  EndpointSpec,
  EngineFactory,
  PeerRef,
  PolicyEngineAPI,
  TrafficDirection,
} from '../policy/types.ts';
import { collectTestFiles } from '../policytest/files.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import { formatIssue } from '../policytest/report.ts';
import { prepareEngine, runPolicyTest } from '../policytest/runner.ts';
import type { FlowResult, PolicyTest, TestFlow } from '../policytest/types.ts';
import { peerLabel } from '../policytest/types.ts';
import { formatTestSuites } from '../report/junit.ts';
import { curlStatus, HTTPServers } from './http-server.ts';
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
  /** Also write JUnit XML here (one testsuite per PolicyTest, skipped-live flows as skipped). */
  junit?: string;
  /** Print each flow's records (direction and verdict) on its line. */
  verbose?: boolean;
  /** How long to wait for a flow's records after the probe returns (ms). */
  recordTimeoutMs?: number;
  /** Aborted (by the CLI on SIGINT/SIGTERM): the node in use is torn down and the run returns. */
  signal?: AbortSignal;
}

export type LiveOutcome = 'pass' | 'fail' | 'skip';

/** A flow as `seawall test -o json` names it, with what the live replay observed. */
export interface LiveFlowResult
  extends Pick<
    FlowResult,
    'file' | 'test' | 'flow' | 'name' | 'from' | 'to' | 'port' | 'protocol' | 'expected'
  > {
  offline: string;
  live?: 'allowed' | 'denied';
  outcome: LiveOutcome;
  note?: string;
  ms?: number;
  /** The flow records the kernel produced for this flow: `INGRESS DROPPED (POLICY_DENIED)`. */
  records?: string[];
  /** Why records were not checked (ulogd2 unavailable), when they were not. */
  recordsNote?: string;
}

/** Why a flow cannot be replayed live yet, or undefined when it can. */
export function liveSkip(test: PolicyTest, flow: TestFlow, offline?: FlowResult): string | undefined {
  const r = flow.request;
  // A request on a port that no L7 rule redirects is judged at L3/L4 alone (offline says which):
  // the connection is replayed without its request. Where a proxy would judge it, wait for one.
  // HTTP requests are sent with curl through the node's HTTP proxy; gRPC, Kafka and DNS wait
  if (r.l7 && (offline === undefined || offline.l7 !== undefined) && !isPlainHTTP(flow))
    return `${r.l7.kind === 'http' ? 'gRPC' : r.l7.kind} request: needs its L7 client or proxy (a later issue)`;
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

/** An HTTP/1.1 request flow (not gRPC): sent with curl through the node proxy. */
export function isPlainHTTP(flow: TestFlow): boolean {
  const l7 = flow.request.l7;
  return l7?.kind === 'http' && l7.grpc !== true && flow.request.protocol === 'TCP';
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

/**
 * The test host address of an entity: its usual one, or (when a test's external endpoint already
 * has it) one from 100.64.255.0/24, which no test policy names.
 */
function entityIp(used: ReadonlySet<string>, entity: string): string | undefined {
  const usual = ENTITY_IPS[entity];
  if (usual === undefined || !used.has(usual)) return usual;
  for (let i = 10; i < 250; i++) {
    const ip = `100.64.255.${i}`;
    if (!used.has(ip)) return ip;
  }
  return undefined;
}

function proto(flow: TestFlow): 'tcp' | 'udp' | 'icmp' {
  const p = flow.request.protocol;
  return p === 'UDP' ? 'udp' : p === 'ICMP' ? 'icmp' : 'tcp';
}

async function defaultFactory(): Promise<EngineFactory> {
  const mod = (await import('../policy/default-engine.ts')) as { defaultEngineFactory: EngineFactory };
  return mod.defaultEngineFactory;
}

/** The test's pods and the test hosts its live flows need (outside addresses, then entities). */
function nodePlan(test: PolicyTest, skips: ReadonlyMap<number, string>): NodePlan {
  const pods: EndpointSpec[] = [];
  const used = new Set<string>();
  for (const ep of test.endpoints) {
    if (ep.external || ep.namespace === undefined) continue;
    pods.push({ ...ep, namespace: ep.namespace });
    used.add(ep.ip);
  }
  const hosts = new Map<string, TestHostSpec>();
  for (const f of test.flows) {
    if (skips.has(f.index)) continue;
    for (const p of [f.request.src, f.request.dst]) {
      if (p.kind === 'ip' && !hosts.has(peerKey(p))) {
        hosts.set(peerKey(p), { peer: p, ip: p.ip });
        used.add(p.ip);
      }
    }
  }
  // entities after the outside addresses, so an entity never takes an address a test names
  for (const f of test.flows) {
    if (skips.has(f.index)) continue;
    for (const p of [f.request.src, f.request.dst]) {
      if (p.kind !== 'entity' || p.entity === 'host' || hosts.has(peerKey(p))) continue;
      const ip = entityIp(used, p.entity);
      if (ip === undefined) continue;
      hosts.set(peerKey(p), { peer: p, ip });
      used.add(ip);
    }
  }
  return { pods, hosts: [...hosts.values()] };
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
  const probes = new ProbePool();
  const httpServers = new HTTPServers();
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
      // redirect entries go through the node's HTTP proxy, as under the agent (never at L4)
      new ProxyComponent({ parser: 'http' }),
      {
        // servers after the flow pipeline, so every flow finds a listener behind the policy
        name: 'probe servers',
        start: async (r) => {
          // ports an HTTP flow targets get a real HTTP server (TCP probes to them connect to it)
          const httpPorts = new Map<string, Set<number>>();
          for (const f of test.flows) {
            if (skips.has(f.index) || !isPlainHTTP(f) || f.request.dport === undefined) continue;
            const dst = r.datapath.live(f.request.dst);
            if (!dst) continue;
            const s = httpPorts.get(dst.ns) ?? new Set<number>();
            s.add(f.request.dport);
            httpPorts.set(dst.ns, s);
          }
          for (const [ns, ports] of httpPorts) await httpServers.start(ns, [...ports]);
          for (const f of test.flows) {
            if (skips.has(f.index) || proto(f) === 'icmp') continue;
            const d = r.datapath.live(f.request.dst);
            if (d && f.request.dport !== undefined && httpPorts.get(d.ns)?.has(f.request.dport)) continue;
            const dst = r.datapath.live(f.request.dst);
            if (dst && f.request.dport !== undefined)
              await probes.get(dst.ns).listen(proto(f) as 'tcp' | 'udp', f.request.dport);
          }
        },
        stop: async () => {
          await httpServers.closeAll();
          await probes.closeAll();
        },
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
      const p = proto(f);
      pipeline?.drain();
      const fromSeq = pipeline?.nextSeq ?? 0;
      const l7 = f.request.l7;
      if (isPlainHTTP(f) && l7?.kind === 'http' && f.request.dport !== undefined) {
        // a real request through the proxy: 200 allowed, 403 (Access denied) or no answer denied
        const t0 = performance.now();
        const status = await curlStatus(src.ns, dst.ip, f.request.dport, l7, Math.max(timeoutMs, 2000));
        rt.checkStopping();
        const live = status === 200 ? 'allowed' : 'denied';
        const notes: string[] = live === base.offline ? [] : [`live ${live} but offline ${base.offline}`];
        if (status !== 200 && status !== 403 && status !== 0) notes.push(`unexpected HTTP status ${status}`);
        const res: LiveFlowResult = {
          ...base,
          live,
          outcome: live === f.expect && notes.length === 0 ? 'pass' : 'fail',
          ms: Math.round(performance.now() - t0),
          // the proxy's L7 records, not the kernel's, describe this flow: kernel records not checked
          records: [`HTTP ${status || 'no answer'}`],
        };
        if (notes.length > 0) res.note = notes.join('; ');
        results.push(res);
        continue;
      }
      const r =
        p === 'icmp'
          ? await ping(src.ns, dst.ip, Math.max(timeoutMs, 500))
          : await probes.get(src.ns).connect(p, dst.ip, f.request.dport ?? 0, timeoutMs);
      rt.checkStopping(); // a probe cut short by the teardown says nothing about the policy
      const live = r.passed ? 'allowed' : 'denied';
      const agree = live === base.offline;
      const notes: string[] = agree ? [] : [`live ${live} but offline ${base.offline}`];
      const res: LiveFlowResult = { ...base, live, outcome: 'fail', ms: Math.round(r.ms) };
      if (pipeline?.available) {
        const dirs = enforcedDirections(engine, src, dst);
        const entries = await pipeline.waitFor(
          fromSeq,
          (es) =>
            checkRecords(
              es.filter((e) => sameFlow(e.event.flow, src, dst, f)),
              dirs,
              live,
            ).done,
          opts.recordTimeoutMs ?? 2000,
        );
        rt.checkStopping();
        const mine = entries.filter((e) => sameFlow(e.event.flow, src, dst, f));
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
  if (l4.proto !== proto(f)) return false;
  return l4.proto === 'icmp' || l4.dport === f.request.dport;
}

export function recordText(f: Flow): string {
  const reason = f.drop_reason_desc !== undefined ? ` (${f.drop_reason_desc})` : '';
  return `${f.traffic_direction ?? '?'} ${f.verdict}${reason}`;
}

/**
 * What the records of one flow must show: allowed → a FORWARDED (or REDIRECTED) record for every
 * enforced direction and no drop; denied → a DROPPED record in an enforced direction.
 */
export function checkRecords(
  entries: readonly RingEntry[],
  dirs: readonly TrafficDirection[],
  live: 'allowed' | 'denied',
): { done: boolean; problems: string[] } {
  const flows = entries.map((e) => e.event.flow);
  const problems: string[] = [];
  if (live === 'allowed') {
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
  const createEngine = opts.createEngine ?? (await defaultFactory());
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
