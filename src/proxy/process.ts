// What every node proxy process does around its listener (http/, dns/ and kafka/ main.ts): drop
// from root to the proxy uid once bound, take the agent's messages on stdin (a snapshot is loaded
// and acknowledged, and so is an FQDN delta; `stop` ends the process), stop when the agent goes
// away (no more policy updates: a mirror that ages must not keep judging) or on SIGTERM, and say
// `ready`. Flow records go to the agent batched, one write per event-loop turn (`sendFlow`).

import type { Flow } from '../flow/types.ts';
import { type AgentMessage, encode, lineDecoder, type ProxyMessage, type ProxyParser } from './ipc.ts';
import type { SnapshotMirror } from './mirror.ts';
import { keepTransparentCapability } from './upstream-socket.ts';

export const send = (m: ProxyMessage): void => {
  process.stdout.write(encode(m));
};

/**
 * Flow messages written in batches, one write per turn of the event loop (or per `max` records):
 * the agent's pipe is written synchronously, and a record per request (two per DNS query) was a
 * write each.
 * The text is the same lines `send` writes; the agent reads them the same way.
 */
export class FlowBatcher {
  private lines: string[] = [];
  private scheduled = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly max = 256,
  ) {}

  push(flow: Flow): void {
    this.lines.push(encode({ type: 'flow', flow }));
    if (this.lines.length >= this.max) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    if (this.lines.length === 0) return;
    const text = this.lines.join('');
    this.lines = [];
    this.write(text);
  }
}

/** The process's flow records to the agent, batched; `serveAgent`'s stop writes what is pending. */
const flows = new FlowBatcher((text) => process.stdout.write(text));
export const sendFlow = (f: Flow): void => flows.push(f);

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
}

export function serveAgent(o: ServeAgentOptions): void {
  dropPrivileges(o.uid);
  const stop = (): void =>
    void o.close().then(() => {
      flows.flush();
      process.exit(0);
    });
  process.stdin.on(
    'data',
    lineDecoder<AgentMessage>(
      (m) => {
        if (m.type === 'snapshot') {
          o.mirror.load(m.snapshot);
          send({ type: 'ack', version: m.snapshot.version });
        } else if (m.type === 'fqdn-delta') {
          if (o.mirror.applyDelta(m.delta)) send({ type: 'ack', version: m.delta.version });
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
