// `seawall observe`: flow records from a running node's Hubble API (gRPC, hubble.sock) or its HTTP
// flow API (flows.sock), with a subset of `hubble observe`'s flags. `-o json` prints the API's lines unchanged: `hubble observe -o json`'s
// shape ({"flow": {...}, "node_name": ..., "time": ...}). Filters are applied here (src/observe).

import { request } from 'node:http';
import type { Command } from 'commander';
import type { FlowEvent } from '../flow/types.ts';
import {
  FilterError,
  type FilterFlags,
  type FlowFilter,
  filterFromFlags,
  matchFlow,
} from '../observe/filter.ts';
import { flowEventProblem, formatCompact } from '../observe/format.ts';

export interface ObserveOptions extends FilterFlags {
  follow?: boolean;
  last?: number;
  output?: 'json' | 'compact';
  /** Hubble's gRPC API: `unix:///run/seawall/<node>/hubble.sock` or `host:port`. */
  server?: string;
  /** The HTTP flow API's unix socket (NDJSON), when no server is given. */
  socket?: string;
}

export interface ObserveIO {
  write: (line: string) => void;
  error: (line: string) => void;
  /** Aborts a --follow stream (SIGINT in the CLI). */
  signal?: AbortSignal;
}

/** Hubble prints the last 20 flows when neither --last nor --follow is given. */
const DEFAULT_LAST = 20;

/** A record line longer than this is skipped (and counted): a flow record is a few KiB. */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * Reads the API and prints; resolves with the exit code: 0 ok, 1 the connection broke mid-stream
 * (or, with --follow, the stream ended: the agent went away), 2 bad flags or no API.
 */
export async function runObserve(o: ObserveOptions, io: ObserveIO): Promise<number> {
  if (o.server !== undefined) return runObserveServer({ ...o, server: o.server }, io);
  if (o.socket === undefined) throw new TypeError('runObserve: give a server or a socket');
  return runObserveSocket({ ...o, socket: o.socket }, io);
}

/**
 * Reads Hubble's Observer API (GetFlows) with a gRPC client; resolves with the exit code as
 * runObserve's. The filters are applied here over the ring's whole past, then cut to --last.
 */
async function runObserveServer(o: ObserveOptions & { server: string }, io: ObserveIO): Promise<number> {
  let filter: FlowFilter;
  try {
    filter = filterFromFlags(o);
  } catch (e) {
    if (e instanceof FilterError) {
      io.error(`seawall observe: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const last = o.last ?? (o.follow ? undefined : DEFAULT_LAST);
  const { connectHubble } = await import('../observe/hubble/client.ts');
  const grpc = await import('@grpc/grpc-js');
  const client = connectHubble(o.server);
  // With follow and --last the past comes first (since 0), then what arrives
  const req: Record<string, unknown> = o.follow
    ? { follow: true, ...(last !== undefined ? { since: { seconds: 0, nanos: 0 } } : {}) }
    : {};
  const startedAt = Date.now();
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      client.close();
      resolve(code);
    };
    let backlog: string[] | undefined = last !== undefined ? [] : undefined;
    const flushBacklog = (): void => {
      if (backlog === undefined) return;
      const keep = last === undefined ? backlog : last === 0 ? [] : backlog.slice(-last);
      for (const text of keep) io.write(text);
      backlog = undefined;
    };
    let timer: NodeJS.Timeout | undefined;
    const s = client.streamFlows(req);
    s.on('data', (r: Record<string, unknown>) => {
      if (r.lost_events !== undefined) {
        const l = r.lost_events as { source?: string; num_events_lost?: string };
        io.error(`seawall observe: EVENTS LOST: ${l.source ?? '?'} ${l.num_events_lost ?? '?'}`);
        return;
      }
      const flow = r.flow as FlowEvent['flow'] | undefined;
      if (flow === undefined) return;
      const e: FlowEvent = { flow, node_name: (r.node_name as string) ?? '', time: r.time as string };
      if (!matchFlow(filter, flow)) return;
      const text = o.output === 'json' ? JSON.stringify(r) : formatCompact(e);
      if (backlog !== undefined) {
        if (!o.follow || Date.parse(e.time) <= startedAt) {
          backlog.push(text);
          // the past arrives at once: print it when the stream goes quiet
          if (o.follow) {
            clearTimeout(timer);
            timer = setTimeout(flushBacklog, 50);
          }
          return;
        }
        flushBacklog();
      }
      io.write(text);
    });
    s.on('error', (e: Error & { code?: number }) => {
      clearTimeout(timer);
      if (settled) return;
      flushBacklog();
      if (e.code === grpc.status.UNAVAILABLE) {
        io.error(
          `seawall observe: no Hubble API at ${o.server} (${e.message}); is \`seawall agent\` running with flow records?`,
        );
        finish(2);
        return;
      }
      if (e.code === grpc.status.INVALID_ARGUMENT) {
        io.error(`seawall observe: ${o.server}: ${e.message}`);
        finish(2);
        return;
      }
      io.error(`seawall observe: connection to ${o.server} lost: ${e.message}`);
      finish(1);
    });
    s.on('end', () => {
      clearTimeout(timer);
      flushBacklog();
      if (o.follow && !settled) {
        io.error(
          `seawall observe: connection to ${o.server} lost: the server ended the stream (agent stopped?)`,
        );
        finish(1);
      } else finish(0);
    });
    io.signal?.addEventListener('abort', () => {
      if (settled) return;
      clearTimeout(timer);
      flushBacklog();
      settled = true; // ours: the CANCELLED that follows is not an error
      s.cancel();
      client.close();
      resolve(0);
    });
  });
}

/** The HTTP flow API (NDJSON lines) on a unix socket. */
async function runObserveSocket(o: ObserveOptions & { socket: string }, io: ObserveIO): Promise<number> {
  let filter: FlowFilter;
  try {
    filter = filterFromFlags(o);
  } catch (e) {
    if (e instanceof FilterError) {
      io.error(`seawall observe: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const last = o.last ?? (o.follow ? undefined : DEFAULT_LAST);
  // Filters run here, so the past is read whole (the ring is small) and cut after filtering.
  const path = o.follow ? (last !== undefined ? '/flows?since=0&follow=1' : '/flows?follow=1') : '/flows';
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      resolve(code);
    };
    /** The stream broke: what was printed is all there is; say so instead of exiting 0. */
    const broken = (why: string): void => {
      if (settled) return;
      flushLine();
      flushBacklog();
      reportSkipped();
      io.error(`seawall observe: connection to ${o.socket} lost: ${why}`);
      finish(1);
    };
    let backlog: string[] | undefined = last !== undefined ? [] : undefined;
    const flushBacklog = (): void => {
      if (backlog === undefined) return;
      const keep = last === undefined ? backlog : last === 0 ? [] : backlog.slice(-last);
      for (const text of keep) io.write(text);
      backlog = undefined;
    };
    /** Lines skipped, said once on stderr when the command ends. */
    let malformed = 0;
    let oversized = 0;
    const reportSkipped = (): void => {
      if (malformed > 0) {
        io.error(`seawall observe: skipped ${malformed} malformed record${malformed === 1 ? '' : 's'}`);
      }
      if (oversized > 0) {
        io.error(
          `seawall observe: skipped ${oversized} line${oversized === 1 ? '' : 's'} longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`,
        );
      }
      malformed = 0;
      oversized = 0;
    };
    const onLine = (raw: string): void => {
      let e: FlowEvent;
      let text: string;
      try {
        const v: unknown = JSON.parse(raw);
        // a line not of the API's shape is skipped and counted, never a crash or an `undefined`
        if (flowEventProblem(v) !== undefined) {
          malformed++;
          return;
        }
        e = v as FlowEvent;
        if (!matchFlow(filter, e.flow)) return;
        text = o.output === 'json' ? raw : formatCompact(e);
      } catch {
        malformed++;
        return;
      }
      if (backlog !== undefined) {
        // Until the ring's past is out, keep it; with --follow, past = times before we connected.
        if (!o.follow || Date.parse(e.time) <= startedAt) {
          backlog.push(text);
          return;
        }
        flushBacklog();
      }
      io.write(text);
    };
    // Lines are cut from bytes, so a record split across chunks decodes whole; a line is held
    // up to MAX_LINE_BYTES, past that it is dropped up to its newline (memory stays bounded).
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let skipping = false;
    const takeLine = (): void => {
      const line = Buffer.concat(pending, pendingBytes).toString('utf8');
      pending = [];
      pendingBytes = 0;
      if (line !== '') onLine(line);
    };
    const onBytes = (chunk: Buffer): void => {
      let from = 0;
      while (from < chunk.length) {
        const nl = chunk.indexOf(0x0a, from);
        const end = nl < 0 ? chunk.length : nl;
        if (!skipping) {
          if (pendingBytes + (end - from) > MAX_LINE_BYTES) {
            skipping = true;
            pending = [];
            pendingBytes = 0;
          } else if (end > from) {
            pending.push(chunk.subarray(from, end));
            pendingBytes += end - from;
          }
        }
        if (nl < 0) break;
        if (skipping) {
          oversized++;
          skipping = false;
        } else takeLine();
        from = nl + 1;
      }
    };
    /** End of stream: a last line without a newline is a line too. */
    const flushLine = (): void => {
      if (skipping) {
        oversized++;
        skipping = false;
      } else if (pendingBytes > 0) takeLine();
    };
    const startedAt = Date.now();
    let responded = false;
    const req = request({ socketPath: o.socket, path, method: 'GET' }, (res) => {
      responded = true;
      if (res.statusCode !== 200) {
        io.error(`seawall observe: ${o.socket}: HTTP ${res.statusCode}`);
        res.resume();
        finish(2);
        return;
      }
      res.on('data', (chunk: Buffer) => {
        onBytes(chunk);
        // With --follow, the past arrives in the first chunk(s): print it as soon as it is in.
        if (o.follow && backlog !== undefined) setImmediate(flushBacklog);
      });
      res.on('end', () => {
        if (settled) return;
        flushLine();
        flushBacklog();
        reportSkipped();
        // a followed stream has no end of its own: the agent stopped or dropped us
        if (o.follow) broken('the flow API closed the stream (agent stopped?)');
        else finish(0);
      });
      res.on('error', (e) => broken(e.message));
      // a reset socket may end the response without 'error' (and never 'end')
      res.on('close', () => {
        if (!res.complete) broken('the connection closed mid-stream');
      });
    });
    req.on('error', (e) => {
      if (responded) {
        broken(e.message);
        return;
      }
      io.error(
        `seawall observe: no flow API at ${o.socket} (${e.message}); is \`seawall agent\` running with flow records?`,
      );
      finish(2);
    });
    io.signal?.addEventListener('abort', () => {
      if (settled) return;
      settled = true; // ours: the breaking of the stream that follows is not an error
      req.destroy();
      flushLine();
      flushBacklog();
      reportSkipped();
      resolve(0);
    });
    req.end();
  });
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

export function registerObserve(program: Command): void {
  program
    .command('observe')
    .description("flow records of a running agent, like `hubble observe` (reads the node's hubble.sock)")
    .addHelpText(
      'after',
      `
Examples:
  # The last 20 flows, one line each
  $ sudo seawall observe

  # Follow drops in namespace shop
  $ sudo seawall observe -f --verdict DROPPED -n shop

  # Hubble's JSON (one {"flow": ...} per line), for jq and Hubble tooling
  $ sudo seawall observe --last 100 -o json | jq -r '.flow.drop_reason_desc'

  # Traffic from one pod to another, egress side only
  $ sudo seawall observe --from-pod shop/frontend --to-pod shop/backend --traffic-direction egress
`,
    )
    .option('-f, --follow', 'keep printing new flows')
    .option('--last <n>', 'the last N matching flows (default 20 without --follow)', (v) => {
      if (!/^\d+$/.test(v)) throw new Error(`--last: not a number: ${v}`);
      return Number(v);
    })
    .option('-o, --output <format>', 'json | compact', 'compact')
    .option('--verdict <verdict>', 'FORWARDED, DROPPED, ... (repeatable)', collect)
    .option('--from-pod <[ns/]name>', 'source pod name prefix (repeatable)', collect)
    .option('--to-pod <[ns/]name>', 'destination pod name prefix (repeatable)', collect)
    .option('--pod <[ns/]name>', 'either side (repeatable)', collect)
    .option('-n, --namespace <ns>', 'either side in this namespace (repeatable)', collect)
    .option('--from-namespace <ns>', 'source namespace (repeatable)', collect)
    .option('--to-namespace <ns>', 'destination namespace (repeatable)', collect)
    .option('--ip <ip>', 'either address (repeatable)', collect)
    .option('--from-ip <ip>', 'source address (repeatable)', collect)
    .option('--to-ip <ip>', 'destination address (repeatable)', collect)
    .option('--protocol <proto>', 'tcp, udp, icmp, ... (repeatable)', collect)
    .option('--port <port>', 'either port (repeatable)', collect)
    .option('--to-port <port>', 'destination port (repeatable)', collect)
    .option('--from-port <port>', 'source port (repeatable)', collect)
    .option('--traffic-direction <dir>', 'ingress | egress', collect)
    .option('-t, --type <type>', 'policy-verdict | drop | trace | l7 (repeatable)', collect)
    .option(
      '--node <name>',
      'node whose Hubble API to read (unix:///run/seawall/<node>/hubble.sock)',
      'seawall-node1',
    )
    .option('--server <address>', "Hubble API: unix:///path/hubble.sock or host:port (default: the node's)")
    .option(
      '--socket <path>',
      'the HTTP flow API instead (NDJSON; the agent serves /run/seawall/<node>/flows.sock)',
    )
    .action(
      async (
        o: Omit<ObserveOptions, 'socket' | 'output' | 'server'> & {
          output: string;
          node: string;
          socket?: string;
          server?: string;
        },
      ) => {
        if (o.output !== 'json' && o.output !== 'compact') {
          process.stderr.write(`seawall observe: -o must be json or compact, not ${o.output}\n`);
          process.exitCode = 2;
          return;
        }
        const { defaultHubbleSocket } = await import('../agent/hubble.ts');
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        const source =
          o.socket !== undefined && o.server === undefined
            ? { socket: o.socket }
            : { server: o.server ?? `unix://${defaultHubbleSocket(o.node)}` };
        process.exitCode = await runObserve(
          { ...o, output: o.output, ...source },
          {
            write: (l) => process.stdout.write(`${l}\n`),
            error: (l) => process.stderr.write(`${l}\n`),
            signal: ac.signal,
          },
        );
      },
    );
}
