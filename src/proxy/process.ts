// What every node proxy process does around its listener (http/, dns/ and kafka/ main.ts): drop
// from root to the proxy uid once bound, take the agent's messages on stdin (a snapshot is loaded
// and acknowledged, and so is an FQDN delta; `stop` ends the process), stop when the agent goes
// away (no more policy updates: a mirror that ages must not keep judging) or on SIGTERM, and say
// `ready`. Flow records go to the agent batched, one write per turn or window (`sendFlow`; the DNS
// proxy's on a descriptor of their own), bounded: a full channel loses records, counted.

import net from 'node:net';
import type { Flow } from '../flow/types.ts';
import {
  type AgentMessage,
  encode,
  FLOW_FD_ENV,
  lineDecoder,
  type ProxyMessage,
  type ProxyParser,
} from './ipc.ts';
import type { SnapshotMirror } from './mirror.ts';
import { keepTransparentCapability } from './upstream-socket.ts';

export const send = (m: ProxyMessage): void => {
  process.stdout.write(encode(m));
};

/**
 * Most bytes of records handed to the channel and not yet taken by the agent. Past it records are
 * lost, counted, and the count told to the agent (`flows-lost`), as Hubble counts lost events: a
 * slow agent must neither grow the proxy without bound nor stall it. 1 MiB is about a thousand DNS
 * records, a fraction of a second of the agent's reading.
 */
export const MAX_PENDING_FLOW_BYTES = 1 << 20;

/**
 * The DNS proxy's window (dns/main.ts): its records wait at most this long (ms) for others to be
 * written with, which is what the agent's view of them lags. The HTTP and Kafka proxies, a record
 * per request, keep writing at the end of each turn.
 */
export const DNS_FLOW_WINDOW_MS = 5;

/** Where batches go: a write that never blocks (a stream queues it) and what the stream still holds. */
export interface FlowSink {
  write(text: string): void;
  /** Bytes written and not yet taken by the reader (a stream's writableLength). */
  pending(): number;
}

/**
 * Flow messages written in batches, one write per turn of the event loop or per window (the DNS
 * proxy's, DNS_FLOW_WINDOW_MS), or per `max` records: a record per request (two per DNS query)
 * was a write each. The text is the same lines `send` writes; the agent reads them the same way.
 * Records never decide traffic: a full channel loses records (counted in `lost`, reported to the
 * agent in a `flows-lost` message ahead of the next batch that fits), never waits.
 */
export class FlowBatcher {
  private lines: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly sink: FlowSink;
  /** Records lost to a full channel, in all. */
  lost = 0;
  /** Writes made, and the records in them (the bench's records per write). */
  writes = 0;
  written = 0;
  /** Of those, not yet reported to the agent. */
  private unreported = 0;
  /** Told of each loss (the DNS proxy announces its record shapes again). */
  private readonly lostListeners: Array<() => void> = [];

  constructor(
    sink: FlowSink | ((text: string) => void),
    private readonly max = 256,
    private readonly maxPendingBytes = MAX_PENDING_FLOW_BYTES,
    /**
     * How long records may wait to be written together (ms; 0: the end of the turn). A write is a
     * syscall that wakes the agent: once per turn was still about one per DNS query under load.
     */
    public windowMs = 0,
  ) {
    this.sink = typeof sink === 'function' ? { write: sink, pending: () => 0 } : sink;
  }

  push(flow: Flow): void {
    this.pushLine(encode({ type: 'flow', flow }));
  }

  onLost(listener: () => void): void {
    this.lostListeners.push(listener);
  }

  /** Message lines already encoded (`encode({ type: 'flow', flow })`, or the DNS proxy's compact ones). */
  pushLine(line: string): void {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.lines.length >= this.max) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      if (this.windowMs > 0) setTimeout(() => this.flush(), this.windowMs).unref();
      else setImmediate(() => this.flush());
    }
  }

  /** Writes what is pending, or counts it lost when the channel holds too much already. */
  flush(): void {
    this.scheduled = false;
    const n = this.lines.length;
    if (n === 0 && this.unreported === 0) return;
    const room = this.maxPendingBytes - this.sink.pending();
    const report = this.unreported > 0 ? encode({ type: 'flows-lost', count: this.unreported }) : '';
    if (this.bytes + report.length > room) {
      this.lost += n;
      this.unreported += n;
      this.lines = [];
      this.bytes = 0;
      for (const l of this.lostListeners) l();
      // tell the agent once there is room, even if no record comes meanwhile
      if (this.retry === undefined) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.flush();
        }, 50);
        this.retry.unref();
      }
      return;
    }
    const text = report + this.lines.join('');
    this.writes++;
    this.written += n;
    this.unreported = 0;
    this.lines = [];
    this.bytes = 0;
    this.sink.write(text);
  }
}

/**
 * The process's record channel: stdout, or (`own`: the DNS proxy) the descriptor the agent opened
 * for records (FLOW_FD_ENV), so that acks and DNS answers on stdout never queue behind records;
 * stdout without it (a proxy run by hand or by a bench). Either is a non-blocking stream: a write
 * queues, never waits. On stdout, records written before an ack reach the agent before it (the
 * HTTP and Kafka proxies keep that order); on their own descriptor they need not.
 */
function flowChannel(own: boolean): FlowSink {
  const fd = Number(process.env[FLOW_FD_ENV]);
  let out: NodeJS.WritableStream & { writableLength: number } = process.stdout;
  if (own && Number.isInteger(fd) && fd > 2) {
    try {
      const sock = new net.Socket({ fd, readable: false, writable: true });
      sock.on('error', () => {}); // the agent gone: records have nowhere to go (stdin's end stops us)
      out = sock;
    } catch (e) {
      send({ type: 'error', message: `record channel fd ${fd}: ${(e as Error).message}; records on stdout` });
    }
  }
  return { write: (text) => void out.write(text), pending: () => out.writableLength };
}

/** The process's flow records to the agent, batched; `serveAgent`'s stop writes what is pending. */
let flows: FlowBatcher | undefined;
const batcher = (): FlowBatcher => (flows ??= new FlowBatcher(flowChannel(false)));
/** Records on the agent's record descriptor (the DNS proxy); before the first record. */
export const useOwnRecordChannel = (): void => {
  flows ??= new FlowBatcher(flowChannel(true));
};
export const sendFlow = (f: Flow): void => batcher().push(f);
/** Records already encoded as message lines (the DNS proxy's, records.ts). */
export const sendFlowLine = (line: string): void => batcher().pushLine(line);
/** Records wait up to `ms` to be written together (0: the end of the turn, the default). */
export const setFlowWindow = (ms: number): void => {
  batcher().windowMs = Math.max(0, ms);
};
/** Called when records were lost to a full channel. */
export const onFlowsLost = (listener: () => void): void => batcher().onLost(listener);

/**
 * Root binds (only root enters the namespace), then runs as the proxy uid/gid, keeping only
 * CAP_NET_RAW on the JS thread when upstreams are transparent (upstream-socket.ts).
 */
export function dropPrivileges(uid: number): void {
  if (process.getuid?.() === 0 && uid !== 0) {
    const limit = keepTransparentCapability();
    process.setgroups?.([]);
    process.setgid?.(uid);
    process.setuid?.(uid);
    limit();
  }
}

export interface ServeAgentOptions {
  parser: ProxyParser;
  mirror: SnapshotMirror<unknown>;
  /** Where the proxy listens now. */
  address: string;
  port: number;
  uid: number;
  close(): Promise<void>;
  /** A message other than snapshot and stop (the DNS proxy's acks). */
  onMessage?(m: AgentMessage): void;
  /**
   * Before each ack: the proxy hands over the records it still holds (the HTTP proxy's, built at
   * the end of a turn); they and every record already queued are written ahead of the ack.
   */
  beforeAck?(): void;
}

export function serveAgent(o: ServeAgentOptions): void {
  dropPrivileges(o.uid);
  // records pushed before an ack are written ahead of it (every proxy: an ack means "judging by
  // this version from now on", and a record of the old version after it would read as judged by it)
  const ack = (version: number): void => {
    o.beforeAck?.();
    flows?.flush();
    send({ type: 'ack', version });
  };
  const stop = (): void =>
    void o.close().then(() => {
      flows?.flush();
      process.exit(0);
    });
  process.stdin.on(
    'data',
    lineDecoder<AgentMessage>(
      (m) => {
        if (m.type === 'snapshot') {
          o.mirror.load(m.snapshot);
          ack(m.snapshot.version);
        } else if (m.type === 'fqdn-delta') {
          if (o.mirror.applyDelta(m.delta)) ack(m.delta.version);
          else send({ type: 'need-snapshot', version: m.delta.version });
        } else if (m.type === 'stop') stop();
        else o.onMessage?.(m);
      },
      (line, e) => send({ type: 'error', message: `bad message (${e.message}): ${line.slice(0, 80)}` }),
    ),
  );
  process.stdin.on('end', stop);
  process.on('SIGTERM', stop);
  send({ type: 'ready', parser: o.parser, address: o.address, port: o.port, uid: process.getuid?.() ?? -1 });
}

/** A proxy process's entry: its error on stderr (the agent logs it) and exit 1. */
export function runMain(name: string, main: () => Promise<void>): void {
  main().catch((e: Error) => {
    process.stderr.write(`${name} proxy: ${e.message}\n`);
    process.exit(1);
  });
}
