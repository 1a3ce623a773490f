// The DNS proxy (cilium-semantics.md §12, §16): pods' DNS queries, redirected to it by the datapath,
// are judged per question name by the same matcher the engine uses offline (l7/dns.ts, through
// compileDNSRules/matchDNS as policy/l7match.ts does), against the DNS rules of the MapState entry
// the redirect matched. Denied: answered REFUSED (--tofqdns-dns-reject-response-code=refused; the
// nameError option answers NXDOMAIN). Allowed: forwarded to the server the pod asked, over the same
// transport, and the answer relayed with the pod's id. A and AAAA records of a successful answer
// (CNAME chain collapsed onto the queried name, lowest TTL) go to onAnswer BEFORE the answer is
// released, so the pod's first connection to the address is already allowed; the wait is capped
// (--tofqdns-proxy-response-max-delay, 100 ms), past it the answer goes anyway and this is counted.
//
// Fail closed: nothing reaches a server unjudged. A malformed query is dropped; a query the agent
// has no redirect context for, or whose context lookup fails, is answered SERVFAIL (as Cilium does
// when it cannot find the endpoint); a malformed or mismatched answer is never relayed (SERVFAIL).
//
// Bounds: --dnsproxy-concurrency-limit (Cilium's default 0 = no limit; when set and reached, with
// --dnsproxy-concurrency-processing-grace-period 0, the query is answered SERVFAIL at once and
// counted, as Cilium's enforceConcurrencyLimit/TryAcquire does); a hard cap on queries in flight
// whatever that limit (memory: past it queries are dropped); the upstream timeout (Cilium's
// ProxyForwardTimeout, 10 s: on expiry the pod gets nothing and retries); TCP: idle timeout (8 s,
// miekg/dns's default IdleTimeout), at most maxTCPConnections connections and maxPerConnection
// queries in flight on one (reading pauses past it), messages up to maxMessageBytes. Upstream UDP
// goes over a small pool of sockets per server (upstream.ts: random ids, the pod's id put back);
// upstream TCP opens one connection per query.

import dgram from 'node:dgram';
import dns from 'node:dns';
import net, { isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SeawallError } from '../../core/errors.ts';
import type { Flow, FlowEndpoint } from '../../flow/types.ts';
import { canonicalIP } from '../../fqdn/ip.ts';
import { compileDNSRules, type DNSPolicy, matchDNS } from '../../l7/dns.ts';
import type { L7RuleSet } from '../../policy/types.ts';
import type { PortRuleDNS } from '../../policy-api/types.ts';
import { connectUpstream } from '../upstream-socket.ts';
import { DNSRecordMessages, type DNSRecordParts, dnsRecord } from './records.ts';
import { type Exchange, UDPUpstreams } from './upstream.ts';
import {
  type DropReason,
  errorReply,
  frame,
  type ParsedAnswer,
  type ParsedQuery,
  parseAnswer,
  parseQuery,
  RCODE,
  TCPFramer,
  WireError,
} from './wire.ts';

export type Transport = 'udp' | 'tcp';

/** Where a query came from, as the proxy's socket saw it. */
export interface QuerySource {
  transport: Transport;
  clientIP: string;
  clientPort: number;
  /** The proxy address the query arrived on. */
  localIP: string;
  localPort: number;
}

/** What the agent knows about a redirected query (from the ipcache and the redirect's MapState entry). */
export interface RedirectContext {
  /** The pod: a stable key for the DNS cache ("namespace/name"), and its flow record fields. */
  endpoint: { key: string; identity: number; flow?: FlowEndpoint };
  /** The server the pod asked (the original destination). */
  server: { ip: string; port: number; identity?: number; flow?: FlowEndpoint };
  /** The DNS rules of the matched entry (an empty list forwards every query, as in Cilium). */
  rules: Extract<L7RuleSet, { parser: 'dns' }> | readonly PortRuleDNS[];
}

export type ResolveRedirect = (
  src: QuerySource,
) => RedirectContext | undefined | Promise<RedirectContext | undefined>;

/** A successful answer to an allowed query: what toFQDNs learns. */
export interface LearnedAnswer {
  endpoint: string;
  identity: number;
  /** The queried name (lower-case, fully qualified): the CNAME chain collapses onto it. */
  name: string;
  ips: string[];
  /** Lowest TTL of the chain, seconds (the cache applies --tofqdns-min-ttl). */
  ttl: number;
  cnames: string[];
  server: { ip: string; port: number };
  transport: Transport;
}

export interface DNSProxyOptions {
  /** Listen address (default 127.0.0.1) and port (default 0: one free port for UDP and TCP). */
  host?: string;
  port?: number;
  resolveRedirect: ResolveRedirect;
  /** Called before an answer is released; the answer waits for it up to responseMaxDelayMs. */
  onAnswer?: (a: LearnedAnswer) => void | Promise<void>;
  /** An answer was released before onAnswer finished (counted in responseDelayExceeded too). */
  onResponseDelayExceeded?: (a: LearnedAnswer) => void;
  /** L7 DNS flow records (Hubble's shape), one per query and per relayed answer. */
  onFlow?: (f: Flow) => void;
  /**
   * The same records as the agent's compact message lines (records.ts, compact.ts: a shape once,
   * then what varies; newlines included), used instead of onFlow. Call recordsLost() when some of
   * them were lost on the way.
   */
  onFlowLine?: (line: string) => void;
  nodeName?: string;
  /** --tofqdns-dns-reject-response-code: refused (default) or nameError (NXDOMAIN). */
  rejectResponseCode?: 'refused' | 'nameError';
  /** --dnsproxy-concurrency-limit (0: none, Cilium's default). */
  concurrencyLimit?: number;
  /** --tofqdns-proxy-response-max-delay (ms, default 100). */
  responseMaxDelayMs?: number;
  /** Upstream answer timeout (ms, default 10000: Cilium's ProxyForwardTimeout). */
  upstreamTimeoutMs?: number;
  /** Queries in flight at most, whatever concurrencyLimit says (default 4096): memory bound. */
  maxInFlight?: number;
  /** Largest query or answer accepted (default 65535; UDP queries: maxUDPQueryBytes). */
  maxMessageBytes?: number;
  /** Largest UDP query (default 4096: EDNS0's common buffer; a real query is far smaller). */
  maxUDPQueryBytes?: number;
  /** TCP connections at most (default 256), queries in flight on one (default 16), idle ms (8000). */
  maxTCPConnections?: number;
  maxPerConnection?: number;
  tcpIdleTimeoutMs?: number;
}

export interface DNSProxyStats {
  queries: number;
  allowed: number;
  refused: number;
  answered: number;
  servfail: number;
  learned: number;
  noContext: number;
  concurrencyRejected: number;
  overloaded: number;
  upstreamTimeouts: number;
  upstreamErrors: number;
  /** Answers released before onAnswer finished (--tofqdns-proxy-response-max-delay passed). */
  responseDelayExceeded: number;
  onAnswerErrors: number;
  tcpConnections: number;
  tcpRejected: number;
  /** Malformed queries and answers, by reason. */
  dropped: Partial<Record<DropReason, number>>;
  inFlight: number;
}

export class DNSProxyError extends SeawallError<'dns-proxy'> {
  override name = 'DNSProxyError';
}

const compiledRules = new WeakMap<object, DNSPolicy>();

function policyOf(rules: RedirectContext['rules']): DNSPolicy {
  const list: readonly PortRuleDNS[] = Array.isArray(rules)
    ? (rules as readonly PortRuleDNS[])
    : (rules as Extract<L7RuleSet, { parser: 'dns' }>).rules;
  let p = compiledRules.get(list);
  if (p === undefined) {
    p = compileDNSRules(list);
    compiledRules.set(list, p);
  }
  return p;
}

type Outcome = Exchange;

/**
 * The listening socket's lookup for its replies: the address is always the literal the query came
 * from, answered at once (dgram's default, dns.lookup, answers a literal on the next tick, a turn
 * per reply); anything else goes to dns.lookup as before.
 */
const literalLookup = ((
  address: string,
  family: number,
  cb: (e: Error | null, a: string, f: number) => void,
) => {
  if (net.isIP(address) === family) cb(null, address, family);
  else dns.lookup(address, family, cb);
}) as unknown as dgram.SocketOptions['lookup'];

/** One query between its judgement and its end (the callbacks' shared state). */
interface InFlightQuery {
  raw: Buffer;
  q: ParsedQuery;
  src: QuerySource;
  reply: (b: Buffer) => void;
  done: (() => void) | undefined;
  /** Set once judged; t0: when (the latency's start). */
  ctx: RedirectContext | undefined;
  t0: number;
}

export class DNSProxy {
  private udp?: dgram.Socket;
  private tcp?: net.Server;
  private readonly tcpConns = new Set<net.Socket>();
  private readonly upstreams = new Set<{ close(): void }>();
  private readonly nameLocks = new Map<string, Promise<void>>();
  private readonly udpUpstreams = new UDPUpstreams(() => this.drop('answer-mismatch'));
  private readonly o: Required<
    Omit<DNSProxyOptions, 'onAnswer' | 'onFlow' | 'onFlowLine' | 'onResponseDelayExceeded' | 'host' | 'port'>
  > & {
    onAnswer: DNSProxyOptions['onAnswer'] | undefined;
    onFlow: DNSProxyOptions['onFlow'] | undefined;
    onFlowLine: DNSProxyOptions['onFlowLine'] | undefined;
    onResponseDelayExceeded: DNSProxyOptions['onResponseDelayExceeded'] | undefined;
  };
  private readonly host: string;
  private closed = false;
  private active = 0;
  /** The line builder and its shape cache, when records go out as lines. */
  private readonly lines: DNSRecordMessages | undefined;
  readonly stats: DNSProxyStats = {
    queries: 0,
    allowed: 0,
    refused: 0,
    answered: 0,
    servfail: 0,
    learned: 0,
    noContext: 0,
    concurrencyRejected: 0,
    overloaded: 0,
    upstreamTimeouts: 0,
    upstreamErrors: 0,
    responseDelayExceeded: 0,
    onAnswerErrors: 0,
    tcpConnections: 0,
    tcpRejected: 0,
    dropped: {},
    inFlight: 0,
  };
  port = 0;

  constructor(private readonly opts: DNSProxyOptions) {
    this.host = opts.host ?? '127.0.0.1';
    this.o = {
      resolveRedirect: opts.resolveRedirect,
      onAnswer: opts.onAnswer,
      onFlow: opts.onFlow,
      onFlowLine: opts.onFlowLine,
      onResponseDelayExceeded: opts.onResponseDelayExceeded,
      nodeName: opts.nodeName ?? 'node-1',
      rejectResponseCode: opts.rejectResponseCode ?? 'refused',
      concurrencyLimit: Math.max(0, opts.concurrencyLimit ?? 0),
      responseMaxDelayMs: Math.max(0, opts.responseMaxDelayMs ?? 100),
      upstreamTimeoutMs: Math.max(1, opts.upstreamTimeoutMs ?? 10_000),
      maxInFlight: Math.max(1, opts.maxInFlight ?? 4096),
      maxMessageBytes: Math.min(65535, Math.max(512, opts.maxMessageBytes ?? 65535)),
      maxUDPQueryBytes: Math.min(65535, Math.max(512, opts.maxUDPQueryBytes ?? 4096)),
      maxTCPConnections: Math.max(1, opts.maxTCPConnections ?? 256),
      maxPerConnection: Math.max(1, opts.maxPerConnection ?? 16),
      tcpIdleTimeoutMs: Math.max(1, opts.tcpIdleTimeoutMs ?? 8000),
    };
    this.lines = opts.onFlowLine !== undefined ? new DNSRecordMessages(this.o.nodeName) : undefined;
    if (
      opts.rejectResponseCode !== undefined &&
      !['refused', 'nameError'].includes(opts.rejectResponseCode)
    ) {
      throw new DNSProxyError(
        'dns-proxy',
        `rejectResponseCode must be refused or nameError, not ${opts.rejectResponseCode}`,
      );
    }
  }

  /** Binds UDP and TCP on one port (the given one, or a free one). */
  async start(): Promise<{ host: string; port: number }> {
    const family = isIPv6(this.host) ? 'udp6' : 'udp4';
    const tcp = net.createServer({ pauseOnConnect: false }, (s) => this.onTCP(s));
    tcp.maxConnections = this.o.maxTCPConnections;
    tcp.on('drop', () => this.stats.tcpRejected++);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.opts.port ?? 0, this.host, () => resolve());
    });
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = dgram.createSocket({ type: family, lookup: literalLookup });
    udp.on('message', (msg, rinfo) => this.onUDP(udp, msg, rinfo));
    udp.on('error', () => {}); // per-send errors (a pod gone) must not take the proxy down
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, this.host, () => resolve());
      });
    } catch (e) {
      tcp.close();
      throw new DNSProxyError('dns-proxy', `cannot bind udp ${this.host}:${port}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    this.tcp = tcp;
    this.udp = udp;
    this.port = port;
    return { host: this.host, port };
  }

  /** Stops listening, closes TCP connections and upstream sockets; in-flight queries get nothing. */
  async close(): Promise<void> {
    this.closed = true;
    this.udpUpstreams.close();
    for (const u of this.upstreams) u.close();
    for (const s of this.tcpConns) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.tcp ? this.tcp.close(() => r()) : r())),
      new Promise<void>((r) => {
        if (!this.udp) return r();
        try {
          this.udp.close(() => r());
        } catch {
          r();
        }
      }),
    ]);
  }

  /** Lines given to onFlowLine were lost (a full channel): shapes are announced again. */
  recordsLost(): void {
    this.lines?.lost();
  }

  private drop(reason: DropReason): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }

  // ---------------------------------------------------------------- listeners

  private onUDP(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const src: QuerySource = {
      transport: 'udp',
      clientIP: rinfo.address,
      clientPort: rinfo.port,
      localIP: this.host,
      localPort: this.port,
    };
    this.handle(msg, src, (out) => {
      if (!this.closed) sock.send(out, rinfo.port, rinfo.address);
    });
  }

  private onTCP(s: net.Socket): void {
    this.stats.tcpConnections++;
    this.tcpConns.add(s);
    const framer = new TCPFramer(this.o.maxMessageBytes);
    let inFlight = 0;
    const src: QuerySource = {
      transport: 'tcp',
      clientIP: canonicalIP(s.remoteAddress ?? '') ?? s.remoteAddress ?? '',
      clientPort: s.remotePort ?? 0,
      localIP: this.host,
      localPort: this.port,
    };
    s.setTimeout(this.o.tcpIdleTimeoutMs, () => {
      if (inFlight > 0) return; // answers still coming: not idle
      if (framer.pending > 0) this.drop('truncated'); // a message the client never finished
      s.destroy();
    });
    s.on('error', () => {});
    s.on('end', () => {
      if (framer.pending > 0) this.drop('truncated'); // a length prefix promised more than came
      s.end();
    });
    s.on('close', () => this.tcpConns.delete(s));
    const reply = (out: Buffer) => {
      if (!s.destroyed) s.write(frame(out));
    };
    const ended = () => {
      inFlight--;
      if (inFlight < this.o.maxPerConnection && s.isPaused()) s.resume();
    };
    s.on('data', (chunk: Buffer) => {
      let msgs: Buffer[];
      try {
        msgs = framer.push(chunk);
      } catch (e) {
        // The stream cannot be resynchronised after a bad length: close it.
        this.drop(e instanceof WireError ? e.reason : 'malformed');
        s.destroy();
        return;
      }
      for (const m of msgs) {
        inFlight++;
        if (inFlight >= this.o.maxPerConnection) s.pause();
        this.handle(m, src, reply, ended);
      }
    });
  }

  // ---------------------------------------------------------------- one query
  //
  // A query goes through handle → judge → judged → (upstream) → relay → release as callbacks, not
  // as async functions: each await was a microtask turn and a promise per step, per query. Every
  // path ends in end(), once: the in-flight counts and the caller's `done`.

  private handle(raw: Buffer, src: QuerySource, reply: (b: Buffer) => void, done?: () => void): void {
    if (this.closed) {
      done?.();
      return;
    }
    this.stats.queries++;
    let q: ParsedQuery;
    try {
      q = parseQuery(raw, src.transport === 'udp' ? this.o.maxUDPQueryBytes : this.o.maxMessageBytes);
    } catch (e) {
      this.drop(e instanceof WireError ? e.reason : 'malformed');
      done?.();
      return;
    }
    if (this.stats.inFlight >= this.o.maxInFlight) {
      this.stats.overloaded++;
      done?.();
      return;
    }
    if (this.o.concurrencyLimit > 0 && this.active >= this.o.concurrencyLimit) {
      this.stats.concurrencyRejected++;
      this.servfail(raw, q, reply);
      done?.();
      return;
    }
    this.stats.inFlight++;
    this.active++;
    this.judge({ raw, q, src, reply, done, ctx: undefined, t0: 0 });
  }

  /** The query's end, on every path: once. */
  private end(x: InFlightQuery): void {
    this.active--;
    this.stats.inFlight--;
    x.done?.();
  }

  private servfail(raw: Buffer, q: ParsedQuery, reply: (b: Buffer) => void): void {
    this.stats.servfail++;
    reply(errorReply(raw, q, RCODE.SERVFAIL));
  }

  private judge(x: InFlightQuery): void {
    let r: ReturnType<ResolveRedirect>;
    try {
      r = this.o.resolveRedirect(x.src);
    } catch {
      r = undefined;
    }
    // the node's lookup is synchronous: no promise turn unless it returns a promise
    if (r !== undefined && typeof (r as Promise<unknown>).then === 'function') {
      (r as Promise<RedirectContext | undefined>).then(
        (ctx) => this.judged(x, ctx),
        () => this.judged(x, undefined),
      );
      return;
    }
    this.judged(x, r as RedirectContext | undefined);
  }

  private judged(x: InFlightQuery, ctx: RedirectContext | undefined): void {
    if (this.closed) {
      this.end(x);
      return;
    }
    const { raw, q, src, reply } = x;
    if (ctx === undefined) {
      this.stats.noContext++;
      this.servfail(raw, q, reply);
      this.end(x);
      return;
    }
    x.ctx = ctx;
    x.t0 = performance.now();
    const m = matchDNS(policyOf(ctx.rules), q.question.name);
    this.record(ctx, src, q, 'REQUEST', m.allowed ? 'FORWARDED' : 'DROPPED');
    if (!m.allowed) {
      this.stats.refused++;
      reply(errorReply(raw, q, this.o.rejectResponseCode === 'nameError' ? RCODE.NXDOMAIN : RCODE.REFUSED));
      this.end(x);
      return;
    }
    this.stats.allowed++;
    // Upstream queries leave from the pod's address (upstream-socket.ts; Cilium's DNS proxy in its
    // transparent mode, --dnsproxy-enable-transparent-mode, keeps the original source too).
    if (src.transport === 'udp') {
      this.udpUpstreams.send(ctx.server, raw, this.o.upstreamTimeoutMs, src.clientIP, (out) =>
        this.relay(x, out),
      );
    } else {
      void this.forwardTCP(ctx.server, raw, src.clientIP).then((out) => this.relay(x, out));
    }
  }

  /** The server's answer (or its absence): checked, learnt from, then released. */
  private relay(x: InFlightQuery, out: Outcome): void {
    if (this.closed) {
      this.end(x);
      return;
    }
    const { raw, q, reply } = x;
    const ctx = x.ctx!;
    if (out.kind === 'timeout') {
      this.stats.upstreamTimeouts++;
      this.end(x); // as Cilium: nothing sent, the pod's resolver retries
      return;
    }
    if (out.kind === 'error') {
      this.stats.upstreamErrors++;
      this.servfail(raw, q, reply);
      this.end(x);
      return;
    }
    let a: ParsedAnswer;
    try {
      a = parseAnswer(out.buf, q, this.o.maxMessageBytes, raw);
    } catch (e) {
      this.drop(e instanceof WireError ? e.reason : 'malformed');
      this.servfail(raw, q, reply);
      this.end(x);
      return;
    }
    if (a.rcode === RCODE.NOERROR && a.ips.length > 0 && this.o.onAnswer !== undefined) {
      const ok = this.learn({
        endpoint: ctx.endpoint.key,
        identity: ctx.endpoint.identity,
        name: q.question.name,
        // the answer's lists may be shared with equal answers (wire.ts's memo): the learner's own
        ips: [...a.ips],
        ttl: a.ttl,
        cnames: [...a.cnames],
        server: { ip: ctx.server.ip, port: ctx.server.port },
        transport: x.src.transport,
      });
      if (typeof ok === 'boolean') this.release(x, out.buf, a, ok);
      else void ok.then((learnt) => this.release(x, out.buf, a, learnt));
      return;
    }
    this.release(x, out.buf, a, true);
  }

  /** Sends the answer on (or SERVFAIL when onAnswer failed), and its record. */
  private release(x: InFlightQuery, answer: Buffer, a: ParsedAnswer, learnt: boolean): void {
    if (this.closed) {
      this.end(x);
      return;
    }
    if (!learnt) {
      this.servfail(x.raw, x.q, x.reply);
      this.end(x);
      return;
    }
    this.stats.answered++;
    x.reply(answer);
    this.record(x.ctx!, x.src, x.q, 'RESPONSE', 'FORWARDED', a, (performance.now() - x.t0) * 1e6);
    this.end(x);
  }

  /**
   * Hands an answer to onAnswer, one at a time per name (as Cilium's per-name lock: a second answer
   * for a name must not be released before the first one's datapath update), waiting at most
   * responseMaxDelayMs. False when onAnswer failed (the pod gets SERVFAIL, as in Cilium). At once
   * (no promise) when nothing is in flight for the name and onAnswer finishes at once.
   */
  private learn(a: LearnedAnswer): boolean | Promise<boolean> {
    const onAnswer = this.o.onAnswer!;
    const prev = this.nameLocks.get(a.name);
    if (prev === undefined) {
      // nothing in flight for the name: an onAnswer that finishes at once needs no lock nor timer
      let r: void | Promise<void>;
      try {
        r = onAnswer(a);
      } catch {
        this.stats.onAnswerErrors++;
        return false;
      }
      if (r === undefined || typeof (r as Promise<void>).then !== 'function') {
        this.stats.learned++;
        return true;
      }
      return this.awaitAnswer(a, r);
    }
    return this.awaitAnswer(
      a,
      prev.then(() => onAnswer(a)),
    );
  }

  /** Waits for onAnswer (holding the name's lock meanwhile), at most responseMaxDelayMs. */
  private async awaitAnswer(a: LearnedAnswer, run: Promise<void>): Promise<boolean> {
    const tail = run.then(
      () => {},
      () => {},
    );
    this.nameLocks.set(a.name, tail);
    void tail.then(() => {
      if (this.nameLocks.get(a.name) === tail) this.nameLocks.delete(a.name);
    });
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      run.then(
        () => 'ok' as const,
        () => 'error' as const,
      ),
      new Promise<'late'>((r) => {
        timer = setTimeout(() => r('late'), this.o.responseMaxDelayMs);
      }),
    ]);
    clearTimeout(timer);
    if (result === 'late') {
      this.stats.responseDelayExceeded++;
      try {
        this.o.onResponseDelayExceeded?.(a);
      } catch {
        // a failing counter must not change what the pod gets
      }
      return true;
    }
    if (result === 'error') {
      this.stats.onAnswerErrors++;
      return false;
    }
    this.stats.learned++;
    return true;
  }

  // ---------------------------------------------------------------- upstream

  private forwardTCP(server: { ip: string; port: number }, raw: Buffer, source: string): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      const framer = new TCPFramer(this.o.maxMessageBytes);
      const sock = connectUpstream({ address: server.ip, port: server.port }, source);
      let done = false;
      const finish = (o: Outcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.upstreams.delete(handle);
        sock.destroy();
        resolve(o);
      };
      const handle = { close: () => finish({ kind: 'timeout' }) };
      this.upstreams.add(handle);
      const timer = setTimeout(() => finish({ kind: 'timeout' }), this.o.upstreamTimeoutMs);
      sock.on('error', (err) => finish({ kind: 'error', err }));
      sock.on('close', () => finish({ kind: 'error', err: new Error('upstream closed the connection') }));
      sock.on('connect', () => sock.write(frame(raw)));
      sock.on('data', (chunk: Buffer) => {
        let msgs: Buffer[];
        try {
          msgs = framer.push(chunk);
        } catch (e) {
          this.drop(e instanceof WireError ? e.reason : 'malformed');
          finish({ kind: 'error', err: e as Error });
          return;
        }
        if (msgs.length > 0) finish({ kind: 'answer', buf: msgs[0]! });
      });
    });
  }

  // ---------------------------------------------------------------- flow records

  private record(
    ctx: RedirectContext,
    src: QuerySource,
    q: ParsedQuery,
    type: 'REQUEST' | 'RESPONSE',
    verdict: 'FORWARDED' | 'DROPPED',
    a?: ParsedAnswer,
    latencyNs?: number,
  ): void {
    const lines = this.lines;
    const onFlow = this.o.onFlow;
    if (lines === undefined && onFlow === undefined) return;
    const parts: DNSRecordParts = { ctx, src, q, type, verdict, time: new Date() };
    if (a !== undefined) parts.a = a;
    if (latencyNs !== undefined) parts.latencyNs = latencyNs;
    try {
      if (lines !== undefined) this.o.onFlowLine!(lines.line(parts));
      else onFlow!(dnsRecord(parts, this.o.nodeName));
    } catch {
      // a failing flow consumer must not change what the pod gets
    }
  }
}

/** Starts a proxy (convenience for the agent and tests). */
export async function startDNSProxy(opts: DNSProxyOptions): Promise<DNSProxy> {
  const p = new DNSProxy(opts);
  await p.start();
  return p;
}
