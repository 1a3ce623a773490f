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
import { dnsComponents, FQDNComponent } from '../agent/fqdn.ts';
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
import { type DNSServer, dig, startDNSServer } from './dns-server.ts';
import { grpcCall } from './grpc-probe.ts';
import { type GRPCMethod, GRPCServers, grpcPathOf } from './grpc-server.ts';
import { curlStatus, HTTPServers } from './http-server.ts';
import { KafkaBrokers } from './kafka-broker.ts';
import { KafkaClientPool } from './kafka-client.ts';
import { isMultiNode, multiNodeUnavailable, replayMultiNode } from './live-multinode.ts';
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
  /** Every endpoint in PolicyAuditMode (--policy-audit-mode). */
  policyAuditMode?: boolean;
}

export type LiveOutcome = 'pass' | 'fail' | 'skip';

/** A flow as `seawall test -o json` names it, with what the live replay observed. */
export interface LiveFlowResult
  extends Pick<
    FlowResult,
    'file' | 'test' | 'flow' | 'name' | 'from' | 'to' | 'port' | 'protocol' | 'expected'
  > {
  offline: string;
  live?: 'allowed' | 'denied' | 'audited';
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

/** What a connection without a query to a DNS server's port asks (never in a test's table). */
export const CONNECTIVITY_NAME = 'connectivity.seawall.invalid';

/** A DNS query flow over UDP or TCP: sent with dig through the node's DNS proxy. */
export function isDNSQuery(flow: TestFlow): boolean {
  const p = flow.request.protocol;
  return flow.request.l7?.kind === 'dns' && (p === 'UDP' || p === 'TCP') && flow.request.dport !== undefined;
}

/** Where the test's DNS servers run: the destination and port of every DNS query flow. */
export function dnsServers(test: PolicyTest): Array<{ peer: PeerRef; port: number }> {
  const out = new Map<string, { peer: PeerRef; port: number }>();
  for (const f of test.flows) {
    if (!isDNSQuery(f)) continue;
    out.set(`${peerKey(f.request.dst)}:${f.request.dport}`, { peer: f.request.dst, port: f.request.dport! });
  }
  return [...out.values()];
}

/** The flow goes to a port where one of the test's DNS servers listens (dnsmasq holds it). */
export function dnsServerPort(test: PolicyTest, flow: TestFlow): boolean {
  const p = flow.request.protocol;
  if (p !== 'UDP' && p !== 'TCP') return false;
  const k = peerKey(flow.request.dst);
  return dnsServers(test).some((d) => peerKey(d.peer) === k && d.port === flow.request.dport);
}

/** An HTTP/1.1 request flow (not gRPC): sent with curl through the node proxy. */
export function isPlainHTTP(flow: TestFlow): boolean {
  const l7 = flow.request.l7;
  return l7?.kind === 'http' && l7.grpc !== true && flow.request.protocol === 'TCP';
}

/** A gRPC call flow (`grpc:`): sent with a grpc-js client, judged per stream by the node proxy. */
export function isGRPC(flow: TestFlow): boolean {
  const l7 = flow.request.l7;
  return l7?.kind === 'http' && l7.grpc === true && flow.request.protocol === 'TCP';
}

/** A Kafka request flow: one request of its key/version sent through the node's Kafka proxy. */
export function isKafka(flow: TestFlow): boolean {
  return flow.request.l7?.kind === 'kafka' && flow.request.protocol === 'TCP';
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
export function nodePlan(test: PolicyTest, skips: ReadonlyMap<number, string>): NodePlan {
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
  if (isMultiNode(test) && multiNodeUnavailable() === undefined)
    return replayMultiNode(test, {
      createEngine: opts.createEngine,
      engine,
      offline: offline.results,
      skips,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    });
  const probes = new ProbePool();
  const httpServers = new HTTPServers();
  const grpcServers = new GRPCServers();
  const kafkaBrokers = new KafkaBrokers();
  const kafkaClients = new KafkaClientPool();
  const kafkaFlows = test.flows.filter(
    (f) => !skips.has(f.index) && isKafka(f) && f.request.dport !== undefined,
  );
  const dnsProcs: DNSServer[] = [];
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
        // a real DNS server in each DNS server endpoint (the kube-dns pod), answering from `dns`
        name: 'dns servers',
        start: async (r) => {
          for (const d of dnsServers(test)) {
            const live = r.datapath.live(d.peer);
            if (!live) continue;
            const records = test.dns.map((x) => ({ name: x.name, ips: x.ips, ttl: x.ttl }));
            dnsProcs.push(await startDNSServer(live.ns, live.ip, records, { port: d.port }));
          }
        },
        stop: async () => {
          for (const d of dnsProcs.splice(0)) await d.stop().catch(() => {});
        },
      },
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
          // ports a gRPC flow targets get a grpc-js server with the flows' methods (before HTTP:
          // one listener per port, and an h2c server cannot answer HTTP/1.1)
          const grpcPorts = new Map<string, Map<number, GRPCMethod[]>>();
          for (const f of test.flows) {
            const m = grpcMethodOf(f);
            if (skips.has(f.index) || !m || f.request.dport === undefined) continue;
            const dst = r.datapath.live(f.request.dst);
            if (!dst) continue;
            const byPort = grpcPorts.get(dst.ns) ?? new Map<number, GRPCMethod[]>();
            const ms = byPort.get(f.request.dport) ?? [];
            if (!ms.some((x) => x.path === m.path)) ms.push(m);
            byPort.set(f.request.dport, ms);
            grpcPorts.set(dst.ns, byPort);
            httpPorts.get(dst.ns)?.delete(f.request.dport);
          }
          for (const [ns, ports] of httpPorts) if (ports.size > 0) await httpServers.start(ns, [...ports]);
          for (const [ns, ports] of grpcPorts) await grpcServers.start(ns, ports);
          // ports a Kafka flow targets get the test broker (TCP probes to them connect to it)
          for (const f of kafkaFlows) {
            const dst = r.datapath.live(f.request.dst);
            if (
              !dst ||
              httpPorts.get(dst.ns)?.has(f.request.dport!) ||
              kafkaBrokers.has(dst.ns, f.request.dport!)
            )
              continue;
            await kafkaBrokers.start(dst.ns, dst.ip, f.request.dport!);
          }
          for (const f of test.flows) {
            if (skips.has(f.index) || proto(f) === 'icmp' || isDNSQuery(f) || dnsServerPort(test, f))
              continue;
            const d = r.datapath.live(f.request.dst);
            if (d && f.request.dport !== undefined && httpPorts.get(d.ns)?.has(f.request.dport)) continue;
            if (d && f.request.dport !== undefined && grpcPorts.get(d.ns)?.has(f.request.dport)) continue;
            if (d && f.request.dport !== undefined && kafkaBrokers.has(d.ns, f.request.dport)) continue;
            const dst = r.datapath.live(f.request.dst);
            if (dst && f.request.dport !== undefined)
              await probes.get(dst.ns).listen(proto(f) as 'tcp' | 'udp', f.request.dport);
          }
        },
        stop: async () => {
          await kafkaClients.closeAll();
          await kafkaBrokers.closeAll();
          await httpServers.closeAll();
          await grpcServers.closeAll();
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
        let live: 'allowed' | 'denied' | 'audited' = status === 200 ? 'allowed' : 'denied';
        // the proxy's L7 records, not the kernel's, describe this flow: kernel records are not
        // checked, except the AUDIT record an audited redirect leaves (nat_pre logs it)
        const records = [`HTTP ${status || 'no answer'}`];
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
        const notes: string[] = live === base.offline ? [] : [`live ${live} but offline ${base.offline}`];
        if (status !== 200 && status !== 403 && status !== 0) notes.push(`unexpected HTTP status ${status}`);
        const res: LiveFlowResult = {
          ...base,
          live,
          outcome: live === f.expect && notes.length === 0 ? 'pass' : 'fail',
          ms: Math.round(performance.now() - t0),
          records,
        };
        if (notes.length > 0) res.note = notes.join('; ');
        results.push(res);
        continue;
      }
      const gm = grpcMethodOf(f);
      if (gm && f.request.dport !== undefined) {
        // a real gRPC call (through the proxy where L7 rules apply): OK allowed, any other status
        // denied; PERMISSION_DENIED is the proxy's refusal, UNAVAILABLE/DEADLINE_EXCEEDED an L4 drop
        const t0 = performance.now();
        const g = await grpcCall(src.ns, dst.ip, f.request.dport, gm, Math.max(timeoutMs, 3000));
        rt.checkStopping();
        const live = g.code === 0 ? 'allowed' : 'denied';
        const notes: string[] = live === base.offline ? [] : [`live ${live} but offline ${base.offline}`];
        if (!EXPECTED_GRPC_CODES.has(g.code)) notes.push(`unexpected gRPC status ${g.code} (${g.details})`);
        const res: LiveFlowResult = {
          ...base,
          live,
          outcome: live === f.expect && notes.length === 0 ? 'pass' : 'fail',
          ms: Math.round(performance.now() - t0),
          // the proxy's L7 records, not the kernel's, describe this flow: kernel records not checked
          records: [
            `gRPC status ${g.code}${GRPC_STATUS_NAMES[g.code] ? ` ${GRPC_STATUS_NAMES[g.code]}` : ''}`,
          ],
        };
        if (notes.length > 0) res.note = notes.join('; ');
        results.push(res);
        continue;
      }
      const query = isDNSQuery(f) && l7?.kind === 'dns';
      if (query || dnsServerPort(test, f)) {
        // A real query through the DNS proxy: an answer allowed (and taught toFQDNs before it was
        // released), REFUSED denied by a DNS rule, no answer denied at L3/L4. A flow without a
        // query to the DNS server's port asks for a name no table has (nothing is learnt): any
        // answer, REFUSED included, shows the connection passed L3/L4.
        const t0 = performance.now();
        const a = await dig(src.ns, dst.ip, query ? l7.query : CONNECTIVITY_NAME, {
          port: f.request.dport!,
          tcp: f.request.protocol === 'TCP',
          type: query ? l7.qtype : 'A',
          timeoutS: Math.max(1, Math.ceil(timeoutMs / 1000)),
        });
        rt.checkStopping();
        const live = a.noAnswer || (query && a.status === 'REFUSED') ? 'denied' : 'allowed';
        const notes: string[] = live === base.offline ? [] : [`live ${live} but offline ${base.offline}`];
        const res: LiveFlowResult = {
          ...base,
          live,
          outcome: live === f.expect && notes.length === 0 ? 'pass' : 'fail',
          ms: Math.round(performance.now() - t0),
          // the DNS proxy's L7 records describe this flow: kernel records not checked
          records: [
            `DNS ${a.noAnswer ? 'no answer' : a.status}${a.answers.length > 0 ? ` ${a.answers.join(',')}` : ''}`,
          ],
        };
        if (notes.length > 0) res.note = notes.join('; ');
        results.push(res);
        continue;
      }
      if (isKafka(f) && l7?.kind === 'kafka' && f.request.dport !== undefined && off?.l7 !== undefined) {
        // a real Kafka request through the proxy: code 29 (TOPIC_AUTHORIZATION_FAILED) or no
        // answer is denied; any other answer came from the broker
        const t0 = performance.now();
        const a = await kafkaClients.get(src.ns).request({
          host: dst.ip,
          port: f.request.dport,
          apiKey: l7.apiKey,
          apiVersion: l7.apiVersion,
          clientID: l7.clientID,
          topics: l7.topics,
          timeoutMs: Math.max(timeoutMs, 3000),
        });
        rt.checkStopping();
        const live = a.answered && a.refused !== true ? 'allowed' : 'denied';
        const notes: string[] = live === base.offline ? [] : [`live ${live} but offline ${base.offline}`];
        const res: LiveFlowResult = {
          ...base,
          live,
          outcome: 'fail',
          ms: Math.round(performance.now() - t0),
          // the proxy judged this request: its L7 records, not the kernel's, describe it
          records: [
            a.answered
              ? `Kafka ${a.refused ? 'refused' : 'answered'}, error_code ${[...new Set(a.errorCodes)].join(',') || '(none)'}`
              : `Kafka no answer (${a.error ?? ''})`,
          ],
        };
        res.outcome = live === f.expect && notes.length === 0 ? 'pass' : 'fail';
        if (notes.length > 0) res.note = notes.join('; ');
        results.push(res);
        continue;
      }
      const r =
        p === 'icmp'
          ? await ping(src.ns, dst.ip, Math.max(timeoutMs, 500))
          : await probes.get(src.ns).connect(p, dst.ip, f.request.dport ?? 0, timeoutMs);
      rt.checkStopping(); // a probe cut short by the teardown says nothing about the policy
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

/** OK, PERMISSION_DENIED (the proxy), DEADLINE_EXCEEDED and UNAVAILABLE (an L4 drop or reset). */
export const EXPECTED_GRPC_CODES = new Set([0, 4, 7, 14]);
export const GRPC_STATUS_NAMES: Record<number, string> = {
  0: 'OK',
  4: 'DEADLINE_EXCEEDED',
  7: 'PERMISSION_DENIED',
  12: 'UNIMPLEMENTED',
  14: 'UNAVAILABLE',
};

/** The method a gRPC flow calls (unary: a PolicyTest flow names no streaming kind). */
export function grpcMethodOf(f: TestFlow): GRPCMethod | undefined {
  const l7 = f.request.l7;
  if (!isGRPC(f) || l7?.kind !== 'http') return undefined;
  const path = grpcPathOf(l7.path);
  return path === undefined ? undefined : { path, kind: 'unary' };
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
