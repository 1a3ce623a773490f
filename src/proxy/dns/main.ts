// The node's DNS proxy process (issue 10): started by the agent inside the node network namespace
// (`ip netns exec <node> node --import tsx src/proxy/dns/main.ts`, supervised by agent/proxy.ts),
// listening on UDP and TCP on the port nat_pre DNATs redirected DNS queries to, judging each query
// name from the policy mirror the agent pushes over stdin (../ipc.ts), forwarding allowed queries
// to the server the pod asked (the conntrack entry of the DNAT says which, ./conntrack.ts), and
// holding each A/AAAA answer until the agent acknowledges that the kernel allows its addresses
// (`dns-answer` → `dns-ack`, capped by --tofqdns-proxy-response-max-delay as proxy.ts does).
//
// Fail closed: no snapshot yet, no conntrack entry, a query from an address that is no local
// endpoint with a DNS redirect, or a side that now denies: SERVFAIL, nothing forwarded. Nothing
// listening (this process down): nat_pre still DNATs here and the query meets a closed port.
//
// Privileges: starts as root (to enter the namespace and open /proc/net/nf_conntrack), binds,
// then drops to the proxy uid, whose upstream packets pass the node's output chain.
//
// Arguments: --address A --port P --uid U --node NAME [--response-max-delay MS]
//            [--reject refused|nameError] [--concurrency-limit N]

import { parseArgs } from 'node:util';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import type { PortRuleDNS } from '../../policy-api/types.ts';
import { epochMs, type PolicyDelta, type PolicySnapshot, type ProxyMessage, sideVerdict } from '../ipc.ts';
import { SnapshotMirror } from '../mirror.ts';
import {
  DNS_FLOW_WINDOW_MS,
  onFlowsLost,
  runMain,
  send,
  sendFlowLine,
  serveAgent,
  setFlowWindow,
  useOwnRecordChannel,
} from '../process.ts';
import { useTransparentUpstream } from '../upstream-socket.ts';
import { ConntrackFile, OriginalDstCache } from './conntrack.ts';
import { DNSProxy, type LearnedAnswer, type QuerySource, type RedirectContext } from './proxy.ts';

const PROTO = { tcp: 6, udp: 17 } as const;

/** What the mirror says of an address outside the ipcache (mirror.ts's peer). */
const worldEndpoint = (): FlowEndpoint => ({ identity: 2, labels: ['reserved:world'] });

/** The mirror the DNS proxy judges from: replaced whole on each snapshot. */
export class DNSPolicyMirror extends SnapshotMirror<readonly PortRuleDNS[] | null> {
  /** The agent's DNS cache revocation count at the last snapshot (AnswerAcks' skip cache). */
  fqdnRevision: number | undefined;
  /**
   * Every address outside the ipcache (a server outside the cluster): one world endpoint object
   * until the next snapshot or delta, so that its records share a shape (records.ts caches shapes
   * per endpoint object; a fresh object per query made a new shape, and a new id at the agent,
   * per record).
   */
  private world: FlowEndpoint = worldEndpoint();

  override load(s: PolicySnapshot): void {
    super.load(s);
    this.fqdnRevision = s.fqdnRevision;
    this.world = worldEndpoint();
  }

  override applyDelta(d: PolicyDelta): boolean {
    if (!super.applyDelta(d)) return false;
    if (d.fqdnRevision !== undefined) this.fqdnRevision = d.fqdnRevision;
    this.world = worldEndpoint();
    return true;
  }

  override peer(ip: string): FlowEndpoint {
    return this.peers.get(ip) ?? this.world;
  }

  /**
   * The DNS rules a query from `client` to `server` must pass, or null (refused: not a DNS
   * redirect of that pod's egress, or a side denies). The pod's egress judges, as Cilium's DNS
   * proxy does; a local server's ingress may still deny at L3/L4. An allow beside the redirect
   * (the L7 wildcard) or a DNS rule list that is empty admits every name: [].
   */
  rules(
    client: string,
    server: string,
    transport: 'udp' | 'tcp',
    port: number,
  ): readonly PortRuleDNS[] | null {
    if (!this.loaded) return null;
    return this.cached(`${client}|${server}|${transport}|${port}`, () =>
      this.computeRules(client, server, transport, port),
    );
  }

  private computeRules(
    client: string,
    server: string,
    transport: 'udp' | 'tcp',
    port: number,
  ): readonly PortRuleDNS[] | null {
    const proto = PROTO[transport];
    const ep = this.endpoints.get(client);
    const v = sideVerdict(ep, 'EGRESS', this.identityOf(server), proto, port, 'dns');
    let out: readonly PortRuleDNS[] | null = null;
    if (v.kind === 'l7') {
      const ingress = sideVerdict(
        this.endpoints.get(server),
        'INGRESS',
        this.identityOf(client),
        proto,
        port,
        'dns',
      );
      if (ingress.kind !== 'deny') {
        const lists = v.rules.map((e) => (e.l7?.parser === 'dns' ? e.l7.rules : []));
        out = v.wildcard || lists.some((l) => l.length === 0) ? [] : lists.flat();
      }
    }
    return out;
  }
}

export interface DNSProxyMainOptions {
  address: string;
  port: number;
  node: string;
  mirror: DNSPolicyMirror;
  /** The original destination of a redirected query (the conntrack entry of its DNAT). */
  originalDst: (src: QuerySource) => { ip: string; port: number } | undefined;
  /**
   * Sends an answer to the agent and resolves when it acknowledged (rejects when it failed);
   * undefined when there is nothing to wait for (a repeat the kernel already allows).
   */
  learn: (a: LearnedAnswer) => Promise<void> | undefined;
  send: (m: ProxyMessage) => void;
  /** Flow records (default: each one sent as a flow message). */
  sendFlow?: (f: Flow) => void;
  /** Flow records as message lines (the node's: records.ts, compact shapes and records). */
  sendFlowLine?: (line: string) => void;
  responseMaxDelayMs?: number;
  rejectResponseCode?: 'refused' | 'nameError';
  concurrencyLimit?: number;
}

/** The proxy wired to a mirror and a conntrack lookup (main() and the tests build it so). */
export function makeNodeDNSProxy(o: DNSProxyMainOptions): DNSProxy {
  const resolveRedirect = (src: QuerySource): RedirectContext | undefined => {
    const orig = o.originalDst(src);
    if (orig === undefined) return undefined;
    const rules = o.mirror.rules(src.clientIP, orig.ip, src.transport, orig.port);
    const ep = o.mirror.endpointOf(src.clientIP);
    if (rules === null || ep === undefined) return undefined;
    const identity = o.mirror.identityOf(src.clientIP);
    return {
      endpoint: { key: ep.endpoint, identity, flow: o.mirror.peer(src.clientIP) },
      server: {
        ip: orig.ip,
        port: orig.port,
        identity: o.mirror.identityOf(orig.ip),
        flow: o.mirror.peer(orig.ip),
      },
      rules,
    };
  };
  return new DNSProxy({
    host: o.address,
    port: o.port,
    nodeName: o.node,
    resolveRedirect,
    onAnswer: (a) => o.learn(a),
    onResponseDelayExceeded: (a) => o.send({ type: 'dns-timeout', endpoint: a.endpoint, name: a.name }),
    ...(o.sendFlowLine !== undefined
      ? { onFlowLine: o.sendFlowLine }
      : { onFlow: o.sendFlow ?? ((flow: Flow) => o.send({ type: 'flow', flow })) }),
    ...(o.responseMaxDelayMs !== undefined ? { responseMaxDelayMs: o.responseMaxDelayMs } : {}),
    ...(o.rejectResponseCode !== undefined ? { rejectResponseCode: o.rejectResponseCode } : {}),
    ...(o.concurrencyLimit !== undefined ? { concurrencyLimit: o.concurrencyLimit } : {}),
  });
}

/** What the agent said an acknowledged answer's addresses stay allowed until. */
interface Known {
  ips: Set<string>;
  until: number;
  minTtl: number;
  revision: number | undefined;
}

/** Most (endpoint, name) pairs AnswerAcks remembers (the oldest go first). */
const MAX_KNOWN = 10_000;

/**
 * Answers waiting for the agent's ack, by id. A repeat answer (same endpoint and name, addresses
 * all among those the agent last acknowledged for them, an expiry that does not reach past the
 * one the agent said) is not sent at all: the agent would learn nothing, the kernel already
 * allows them. What is remembered is dropped when the agent's cache revoked addresses early
 * (fqdnRevision in its snapshot) and when its time is up; a wrong skip could only leave an
 * address denied, never allow one.
 */
export class AnswerAcks {
  private next = 1;
  private readonly pending = new Map<
    number,
    { a: LearnedAnswer; resolve: () => void; reject: (e: Error) => void }
  >();
  private readonly known = new Map<string, Known>();
  /** Repeats answered without asking the agent. */
  skipped = 0;

  constructor(
    private readonly send: (m: ProxyMessage) => void,
    /** The agent's current revocation count (its snapshot's fqdnRevision). */
    private readonly revision: () => number | undefined = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves once the agent acknowledged; undefined: a repeat, nothing to wait for. */
  learn(a: LearnedAnswer): Promise<void> | undefined {
    if (this.alreadyAllowed(a)) {
      this.skipped++;
      return undefined;
    }
    const id = this.next++;
    const p = new Promise<void>((resolve, reject) => this.pending.set(id, { a, resolve, reject }));
    this.send({
      type: 'dns-answer',
      id,
      endpoint: a.endpoint,
      name: a.name,
      ips: a.ips,
      ttl: a.ttl,
      at: epochMs(),
    });
    // the proxy stops waiting at its max delay; the agent's ack may still come (and is dropped)
    setTimeout(() => this.settle(id, true), 30_000).unref();
    return p;
  }

  private alreadyAllowed(a: LearnedAnswer): boolean {
    const key = `${a.endpoint}|${a.name}`;
    const k = this.known.get(key);
    if (k === undefined) return false;
    const now = this.now();
    if (k.revision !== this.revision() || k.until <= now) {
      this.known.delete(key);
      return false;
    }
    const expires = now + Math.max(a.ttl, k.minTtl) * 1000;
    return expires <= k.until && a.ips.every((ip) => k.ips.has(ip));
  }

  settle(id: number, ok: boolean, error?: string, allowed?: { until?: number; minTtl?: number }): void {
    const w = this.pending.get(id);
    if (w === undefined) return;
    this.pending.delete(id);
    if (ok && allowed?.until !== undefined && Number.isFinite(allowed.until)) {
      const key = `${w.a.endpoint}|${w.a.name}`;
      this.known.delete(key); // re-inserted last: the map's order is the eviction order
      if (this.known.size >= MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
      this.known.set(key, {
        ips: new Set(w.a.ips),
        until: allowed.until,
        minTtl: allowed.minTtl ?? 0,
        revision: this.revision(),
      });
    }
    if (ok) w.resolve();
    else w.reject(new Error(error ?? 'the agent could not learn the answer'));
  }

  get size(): number {
    return this.pending.size;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      address: { type: 'string', default: '0.0.0.0' },
      port: { type: 'string', default: '15053' },
      uid: { type: 'string', default: '1337' },
      node: { type: 'string', default: '' },
      'response-max-delay': { type: 'string' },
      reject: { type: 'string' },
      'concurrency-limit': { type: 'string' },
    },
  });
  const address = values.address ?? '0.0.0.0';
  const port = Number(values.port);
  // opened as root, re-read after the privileges are gone
  let ct: ConntrackFile | undefined;
  try {
    ct = new ConntrackFile().open();
  } catch (e) {
    // without it no query's server is known: every query is answered SERVFAIL (fail closed)
    send({ type: 'error', message: `cannot read conntrack: ${(e as Error).message}; answering SERVFAIL` });
  }
  const cache = ct === undefined ? undefined : new OriginalDstCache(() => ct.read(), { ip: address, port });
  const originalDst = (src: QuerySource) =>
    cache?.lookup(src.transport, { ip: src.clientIP, port: src.clientPort });
  // queries leave from the pod's address (Cilium's transparent mode); without the addon every
  // allowed query is answered SERVFAIL, never sent from the node's address
  const noTransparent = useTransparentUpstream();
  if (noTransparent !== undefined) send({ type: 'error', message: noTransparent });
  const mirror = new DNSPolicyMirror();
  const acks = new AnswerAcks(send, () => mirror.fqdnRevision);
  const reject = values.reject;
  if (reject !== undefined && reject !== 'refused' && reject !== 'nameError')
    throw new Error(`--reject must be refused or nameError, not ${reject}`);
  const proxy = makeNodeDNSProxy({
    address,
    port,
    node: values.node ?? '',
    mirror,
    originalDst,
    learn: (a) => acks.learn(a),
    send,
    sendFlowLine,
    ...(values['response-max-delay'] !== undefined
      ? { responseMaxDelayMs: Number(values['response-max-delay']) }
      : {}),
    ...(reject !== undefined ? { rejectResponseCode: reject } : {}),
    ...(values['concurrency-limit'] !== undefined
      ? { concurrencyLimit: Number(values['concurrency-limit']) }
      : {}),
  });
  // records apart from acks and answers (which must not wait behind them), several per write
  useOwnRecordChannel();
  onFlowsLost(() => proxy.recordsLost());
  setFlowWindow(DNS_FLOW_WINDOW_MS);
  const addr = await proxy.start();
  serveAgent({
    parser: 'dns',
    mirror,
    address: addr.host,
    port: addr.port,
    uid: Number(values.uid),
    close: () => proxy.close(),
    onMessage: (m) => {
      if (m.type === 'dns-ack') acks.settle(m.id, m.ok, m.error, m);
    },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) runMain('dns', main);
