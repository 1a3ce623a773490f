// Where the UI's flows come from: a running agent's Hubble Observer API (followed as a stream), a
// saved flow file (a flow log or `hubble observe -o jsonpb` output), or the policies alone (the
// engine's verdicts on the PolicyTest's flows, or on every pod pair and declared port of the
// manifests: no traffic needed).

import { readRegularFile } from '../../core/files.ts';
import { type FlowReadIssue, parseFlowText } from '../../flow/read.ts';
import { flowFromVerdict } from '../../flow/record.ts';
import type { Flow } from '../../flow/types.ts';
import { connectHubble, type HubbleClient } from '../../observe/hubble/client.ts';
import type { FlowRequest } from '../../policy/types.ts';
import { answerLearnt } from '../../policytest/runner.ts';
import type { PolicyTest, TestEndpoint } from '../../policytest/types.ts';
import { entityAddress, outsideRequests } from './outside.ts';
import type { PolicyContext } from './policies.ts';

export interface FlowLine {
  flow: Flow;
  node_name?: string;
  time: string;
}

export interface FlowSource {
  /** What the header shows: `file flows.jsonl`, `agent unix:///run/…`, `policies`. */
  readonly describe: string;
  /** Starts delivering; `onFlow` for each flow, `onStatus` for connection news. */
  start(onFlow: (f: FlowLine) => void, onStatus: (s: string) => void): void;
  stop(): void;
}

export class SourceError extends Error {
  constructor(
    message: string,
    readonly issues: FlowReadIssue[] = [],
  ) {
    super(message);
  }
}

/** Reads the whole file up front so that a bad file is an error before the server starts. */
export function fileSource(file: string): FlowSource {
  const r = readRegularFile(file, 256 * 1024 * 1024);
  if (!r.ok) throw new SourceError(`${file}: ${r.message}`);
  const read = parseFlowText(file, r.bytes.toString('utf8'));
  if (read.issues.length > 0) throw new SourceError(`${file}: not a flow file`, read.issues);
  return {
    describe: `file ${file}`,
    start(onFlow) {
      read.flows.forEach((flow) => {
        onFlow({
          flow,
          ...(flow.node_name !== undefined ? { node_name: flow.node_name } : {}),
          time: flow.time,
        });
      });
    },
    stop() {},
  };
}

/** `unix:///path`, `unix:/path` or `host:port`, as `hubble observe --server` takes it. */
export function hubbleTarget(server: string): string {
  if (server.startsWith('unix://') || server.startsWith('unix:')) return server;
  if (server.startsWith('/')) return `unix://${server}`;
  if (!/^[\w.-]+:\d+$/.test(server) && !/^\[[\d:a-f]+\]:\d+$/i.test(server))
    throw new SourceError(`--server ${server}: write unix:///PATH or HOST:PORT`);
  return server;
}

/** An RFC 3339 time as google.protobuf.Timestamp (what the gRPC request takes). */
export function timestamp(rfc3339: string): { seconds: string; nanos: number } {
  const ms = Date.parse(rfc3339);
  if (!Number.isFinite(ms)) throw new SourceError(`not an RFC 3339 time: ${rfc3339}`);
  const frac = /\.(\d{1,9})/.exec(rfc3339)?.[1] ?? '';
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number(frac.padEnd(9, '0')) };
}

/** Follows an agent's Hubble API: the last `last` flows, then every new one; reconnects. */
export function hubbleSource(server: string, last = 10_000): FlowSource {
  const target = hubbleTarget(server);
  let client: HubbleClient | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let since: string | undefined;
  const seenAtSince = new Set<string>();
  return {
    describe: `agent ${target}`,
    start(onFlow, onStatus) {
      const connect = () => {
        if (stopped) return;
        client = connectHubble(target);
        // After a reconnect, ask only for what came after the last flow seen.
        const req: Record<string, unknown> = { follow: true };
        if (since !== undefined) req.since = timestamp(since);
        else req.number = String(last);
        const s = client.streamFlows(req);
        onStatus(`connected to ${target}`);
        s.on('data', (r: Record<string, unknown>) => {
          const flow = r.flow as Flow | undefined;
          if (flow === undefined) return;
          // `since` is inclusive: after a reconnect, the flows already seen at that instant again.
          if (flow.time === since && seenAtSince.has(flow.uuid)) return;
          if (flow.time !== since) seenAtSince.clear();
          seenAtSince.add(flow.uuid);
          since = flow.time;
          onFlow({
            flow,
            ...(typeof r.node_name === 'string' ? { node_name: r.node_name } : {}),
            time: String(r.time ?? flow.time),
          });
        });
        const retry = (why: string) => {
          client?.close();
          client = undefined;
          if (stopped) return;
          onStatus(`${target}: ${why}; retrying in 2 s`);
          timer = setTimeout(connect, 2000);
        };
        s.on('error', (e: Error) => retry(e.message));
        s.on('end', () => retry('stream ended'));
      };
      connect();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      client?.close();
    },
  };
}

/**
 * What the proxy would have recorded for the request (the L7 part of the record) and the name
 * the destination was known by, so that the map's cards and the table show them.
 */
function withL7(flow: Flow, req: FlowRequest, fqdn: string | undefined, allowed: boolean): void {
  if (fqdn !== undefined) flow.destination_names = [fqdn];
  const l7 = req.l7;
  if (l7 === undefined) return;
  // The proxy's record of a request: FORWARDED or DROPPED, as Hubble's L7 records are.
  flow.verdict = allowed ? 'FORWARDED' : 'DROPPED';
  const host =
    req.dst.kind === 'endpoint' ? req.dst.name : req.dst.kind === 'ip' ? req.dst.ip : req.dst.entity;
  if (l7.kind === 'http') {
    flow.Type = 'L7';
    flow.l7 = {
      type: 'REQUEST',
      http: {
        method: l7.method,
        url: `http://${l7.host ?? host}${l7.path}`,
        protocol: l7.grpc ? 'HTTP/2' : 'HTTP/1.1',
      },
    };
    flow.Summary = `HTTP ${l7.method} ${l7.path}`;
  } else if (l7.kind === 'dns') {
    flow.Type = 'L7';
    const q = l7.query.endsWith('.') ? l7.query : `${l7.query}.`;
    flow.l7 = { type: 'REQUEST', dns: { query: q, qtypes: [l7.qtype] } };
    flow.Summary = `DNS Query ${q} ${l7.qtype}`;
  } else {
    flow.Type = 'L7';
    flow.l7 = { type: 'REQUEST', kafka: { api_key: String(l7.apiKey), topic: l7.topics[0] ?? '' } };
  }
}

/**
 * The addresses of the policies-only flows, as the live replay of the same file would show them:
 * a pod's or test host's own, an IP peer's, and for an entity the test host the replay gives it
 * (the node for host; never an address an endpoint or flow of the test already has).
 */
function addressBook(endpoints: readonly TestEndpoint[], test: PolicyTest | undefined) {
  const used = new Set(endpoints.map((e) => e.ip));
  for (const tf of test?.flows ?? [])
    for (const p of [tf.request.src, tf.request.dst]) if (p.kind === 'ip') used.add(p.ip);
  const entities = new Map<string, string>();
  return (req: FlowRequest, side: 'src' | 'dst', fallback?: string): string => {
    const p = req[side];
    if (p.kind === 'ip') return p.ip;
    if (p.kind === 'endpoint') {
      const e = endpoints.find((x) => x.namespace === p.namespace && x.name === p.name);
      if (e) return e.ip;
    }
    if (p.kind === 'entity') {
      let ip = entities.get(p.entity);
      if (ip === undefined) {
        ip = entityAddress(p.entity, used);
        used.add(ip);
        entities.set(p.entity, ip);
      }
      return ip;
    }
    return fallback ?? '0.0.0.0';
  };
}

/**
 * The engine's verdicts as flows: a PolicyTest's flows in order (learning DNS answers as the
 * runner does), or, for manifests, every pod → pod pair on each declared container port and,
 * per rule entry naming a peer outside the pods (an entity, a CIDR), flows with that peer.
 */
export function policySource(
  ctx: PolicyContext,
  endpoints: readonly TestEndpoint[],
  test?: PolicyTest,
): FlowSource {
  return {
    describe: 'policies (engine verdicts, no traffic)',
    start(onFlow) {
      const base = Date.parse('2025-01-01T00:00:00Z');
      let n = 0;
      const ipOf = addressBook(endpoints, test);
      const emit = (req: FlowRequest, dstIP?: string, fqdn?: string) => {
        n++;
        const now = base + n * 100;
        const v = ctx.engine.decide(req, now);
        const flow = flowFromVerdict(ctx.engine, req, v, {
          time: new Date(now),
          nodeName: 'node-1',
          srcIP: ipOf(req, 'src'),
          dstIP: ipOf(req, 'dst', dstIP),
          ...(req.dport !== undefined ? { sport: 40000 + (n % 20000), dport: req.dport } : {}),
          tcpFlags: req.protocol === 'TCP' ? { SYN: true } : {},
        });
        withL7(flow, req, fqdn, v.allowed);
        onFlow({ flow, node_name: 'node-1', time: flow.time });
        return { v, now };
      };
      if (test !== undefined) {
        for (const tf of test.flows) {
          const { v, now } = emit(tf.request, tf.toFQDN?.ip, tf.toFQDN?.name);
          const learnt = answerLearnt(test, tf, v);
          if (learnt) ctx.engine.learnDNS(learnt.name, learnt.ips, learnt.ttl, now);
        }
        return;
      }
      const pods = endpoints.filter((e) => !e.external && e.namespace !== undefined);
      for (const dst of pods)
        for (const port of dst.ports ?? [])
          for (const src of pods) {
            if (src === dst) continue;
            emit({
              src: { kind: 'endpoint', namespace: src.namespace!, name: src.name },
              dst: { kind: 'endpoint', namespace: dst.namespace!, name: dst.name },
              protocol: port.protocol ?? 'TCP',
              dport: port.port,
            });
          }
      for (const pod of pods)
        for (const req of outsideRequests(
          { namespace: pod.namespace!, name: pod.name, ...(pod.ports ? { ports: pod.ports } : {}) },
          ctx.outsideEntries(pod.namespace!, pod.name),
        ))
          emit(req);
    },
    stop() {},
  };
}
