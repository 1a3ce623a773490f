// What both live replays share (one node: live-test.ts; several through etcd: live-multinode.ts):
// which kind of client a flow needs, the test hosts a test's flows use, the servers behind the
// flows' destinations, and sending one flow with its client. Each replay adds its own on top: the
// single-node one checks the flow records, the multi-node one places peers on their nodes.

import type { NodePlan, TestHostSpec } from '../agent/runtime.ts';
import { ENTITY_IPS, type LivePeer, peerKey } from '../datapath/node.ts';
import type { EndpointSpec, PeerRef } from '../policy/types.ts';
import type { FlowResult, PolicyTest, TestFlow } from '../policytest/types.ts';
import { type DNSServer, dig, startDNSServer } from './dns-server.ts';
import { grpcCall } from './grpc-probe.ts';
import { type GRPCMethod, GRPCServers, grpcPathOf } from './grpc-server.ts';
import { curlStatus, HTTPServers } from './http-server.ts';
import { KafkaBrokers } from './kafka-broker.ts';
import { KafkaClientPool } from './kafka-client.ts';
import { ProbePool, ping } from './probe.ts';

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

export function flowProto(flow: TestFlow): 'tcp' | 'udp' | 'icmp' {
  const p = flow.request.protocol;
  return p === 'UDP' ? 'udp' : p === 'ICMP' ? 'icmp' : 'tcp';
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

/** The servers and clients of one replay; closeAll() stops every one. */
export class ReplayServers {
  readonly probes = new ProbePool();
  readonly http = new HTTPServers();
  readonly grpc = new GRPCServers();
  readonly kafkaBrokers = new KafkaBrokers();
  readonly kafkaClients = new KafkaClientPool();
  readonly dns: DNSServer[] = [];

  async closeAll(): Promise<void> {
    await this.kafkaClients.closeAll();
    await this.kafkaBrokers.closeAll().catch(() => {});
    await this.http.closeAll().catch(() => {});
    await this.grpc.closeAll().catch(() => {});
    for (const d of this.dns.splice(0)) await d.stop().catch(() => {});
    this.probes.closeAll();
  }
}

/**
 * The servers the flows need, in their destinations' namespaces: dnsmasq for DNS servers
 * (answering from `dns`; `dnsAt` says where each runs), grpc-js for gRPC ports, an HTTP server
 * for HTTP ports, the test broker for Kafka ports, a plain listener for every other port. One
 * listener per namespace and port, in that order (a TCP probe to an HTTP port connects to it).
 */
export async function startServers(
  test: PolicyTest,
  skips: ReadonlyMap<number, string>,
  place: {
    dst: (f: TestFlow) => LivePeer | undefined;
    dnsAt: (d: { peer: PeerRef; port: number }) => LivePeer | undefined;
  },
  s: ReplayServers,
): Promise<void> {
  const flows = test.flows.filter((f) => !skips.has(f.index) && f.request.dport !== undefined);
  const records = test.dns.map((x) => ({ name: x.name, ips: x.ips, ttl: x.ttl }));
  const taken = new Set<string>();
  for (const d of dnsServers(test)) {
    const at = place.dnsAt(d);
    if (at === undefined || taken.has(`${at.ns}:${d.port}`)) continue;
    taken.add(`${at.ns}:${d.port}`);
    s.dns.push(await startDNSServer(at.ns, at.ip, records, { port: d.port }));
  }
  // gRPC before HTTP: one listener per port, and an h2c server cannot answer HTTP/1.1
  const grpcPorts = new Map<string, Map<number, GRPCMethod[]>>();
  for (const f of flows) {
    const m = grpcMethodOf(f);
    const dst = place.dst(f);
    if (m === undefined || dst === undefined) continue;
    const byPort = grpcPorts.get(dst.ns) ?? new Map<number, GRPCMethod[]>();
    const ms = byPort.get(f.request.dport!) ?? [];
    if (!ms.some((x) => x.path === m.path)) ms.push(m);
    byPort.set(f.request.dport!, ms);
    grpcPorts.set(dst.ns, byPort);
    taken.add(`${dst.ns}:${f.request.dport}`);
  }
  for (const [ns, ports] of grpcPorts) await s.grpc.start(ns, ports);
  const httpPorts = new Map<string, number[]>();
  for (const f of flows) {
    const dst = place.dst(f);
    if (!isPlainHTTP(f) || dst === undefined || taken.has(`${dst.ns}:${f.request.dport}`)) continue;
    httpPorts.set(dst.ns, [...(httpPorts.get(dst.ns) ?? []), f.request.dport!]);
    taken.add(`${dst.ns}:${f.request.dport}`);
  }
  for (const [ns, ports] of httpPorts) await s.http.start(ns, ports);
  for (const f of flows) {
    const dst = place.dst(f);
    if (!isKafka(f) || dst === undefined || taken.has(`${dst.ns}:${f.request.dport}`)) continue;
    await s.kafkaBrokers.start(dst.ns, dst.ip, f.request.dport!);
    taken.add(`${dst.ns}:${f.request.dport}`);
  }
  for (const f of flows) {
    const dst = place.dst(f);
    if (flowProto(f) === 'icmp' || dst === undefined || isDNSQuery(f) || dnsServerPort(test, f)) continue;
    if (taken.has(`${dst.ns}:${f.request.dport}`)) continue;
    await s.probes.get(dst.ns).listen(flowProto(f) as 'tcp' | 'udp', f.request.dport!);
    taken.add(`${dst.ns}:${f.request.dport}`);
  }
}

/** What a flow's client saw: the verdict, the L7 answer (as records), notes on anything odd. */
export interface Sent {
  /** Which client sent it: an L7 request (its answer is the record) or an L3/L4 probe. */
  kind: 'http' | 'grpc' | 'dns' | 'kafka' | 'l4';
  live: 'allowed' | 'denied';
  ms: number;
  records?: string[];
  notes: string[];
}

/**
 * Sends one flow from `src` to `dst` with the client its request needs: curl for HTTP, grpc-js
 * for gRPC, dig for DNS, the Kafka client, else a TCP/UDP probe or a ping. `proxiedIntoIngress`:
 * the source's proxy forwards into an ingress on another node (a 503 is then a denial).
 */
export async function sendFlow(
  test: PolicyTest,
  f: TestFlow,
  off: FlowResult | undefined,
  src: LivePeer,
  dst: LivePeer,
  o: { timeoutMs: number; servers: ReplayServers; proxiedIntoIngress?: boolean },
): Promise<Sent> {
  const l7 = f.request.l7;
  const port = f.request.dport;
  const timeoutMs = o.timeoutMs;
  const t0 = performance.now();
  const ms = (): number => performance.now() - t0;
  if (isPlainHTTP(f) && l7?.kind === 'http' && port !== undefined) {
    // a real request through the proxy: 200 allowed, 403 (Access denied) or no answer denied
    const status = await curlStatus(src.ns, dst.ip, port, l7, Math.max(timeoutMs, 2000));
    const expected =
      status === 200 || status === 403 || status === 0 || (o.proxiedIntoIngress === true && status === 503);
    return {
      kind: 'http',
      live: status === 200 ? 'allowed' : 'denied',
      ms: ms(),
      records: [`HTTP ${status || 'no answer'}`],
      notes: expected ? [] : [`unexpected HTTP status ${status}`],
    };
  }
  const gm = grpcMethodOf(f);
  if (gm !== undefined && port !== undefined) {
    // a real gRPC call (through the proxy where L7 rules apply): OK allowed, any other status
    // denied; PERMISSION_DENIED is the proxy's refusal, UNAVAILABLE/DEADLINE_EXCEEDED an L4 drop
    const g = await grpcCall(src.ns, dst.ip, port, gm, Math.max(timeoutMs, 3000));
    const name = GRPC_STATUS_NAMES[g.code];
    return {
      kind: 'grpc',
      live: g.code === 0 ? 'allowed' : 'denied',
      ms: ms(),
      records: [`gRPC status ${g.code}${name ? ` ${name}` : ''}`],
      notes: EXPECTED_GRPC_CODES.has(g.code) ? [] : [`unexpected gRPC status ${g.code} (${g.details})`],
    };
  }
  const query = isDNSQuery(f) && l7?.kind === 'dns';
  if (query || dnsServerPort(test, f)) {
    // A real query through the DNS proxy: an answer allowed (and taught toFQDNs before it was
    // released), REFUSED denied by a DNS rule, no answer denied at L3/L4. A flow without a
    // query to the DNS server's port asks for a name no table has (nothing is learnt): any
    // answer, REFUSED included, shows the connection passed L3/L4.
    const a = await dig(src.ns, dst.ip, query ? l7.query : CONNECTIVITY_NAME, {
      port: port!,
      tcp: f.request.protocol === 'TCP',
      type: query ? l7.qtype : 'A',
      timeoutS: Math.max(1, Math.ceil(timeoutMs / 1000)),
    });
    return {
      kind: 'dns',
      live: a.noAnswer || (query && a.status === 'REFUSED') ? 'denied' : 'allowed',
      ms: ms(),
      records: [
        `DNS ${a.noAnswer ? 'no answer' : a.status}${a.answers.length > 0 ? ` ${a.answers.join(',')}` : ''}`,
      ],
      notes: [],
    };
  }
  if (isKafka(f) && l7?.kind === 'kafka' && port !== undefined && off?.l7 !== undefined) {
    // a real Kafka request through the proxy: code 29 (TOPIC_AUTHORIZATION_FAILED) or no
    // answer is denied; any other answer came from the broker
    const a = await o.servers.kafkaClients.get(src.ns).request({
      host: dst.ip,
      port,
      apiKey: l7.apiKey,
      apiVersion: l7.apiVersion,
      clientID: l7.clientID,
      topics: l7.topics,
      timeoutMs: Math.max(timeoutMs, 3000),
    });
    return {
      kind: 'kafka',
      live: a.answered && a.refused !== true ? 'allowed' : 'denied',
      ms: ms(),
      records: [
        a.answered
          ? `Kafka ${a.refused ? 'refused' : 'answered'}, error_code ${[...new Set(a.errorCodes)].join(',') || '(none)'}`
          : `Kafka no answer (${a.error ?? ''})`,
      ],
      notes: [],
    };
  }
  const p = flowProto(f);
  const r =
    p === 'icmp'
      ? await ping(src.ns, dst.ip, Math.max(timeoutMs, 500))
      : await o.servers.probes.get(src.ns).connect(p, dst.ip, port ?? 0, timeoutMs);
  return { kind: 'l4', live: r.passed ? 'allowed' : 'denied', ms: r.ms, notes: [] };
}
