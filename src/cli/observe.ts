// `seawall observe`: flow records from a running node's local API (hubble.sock), with a subset of
// `hubble observe`'s flags. `-o json` prints the API's lines unchanged: `hubble observe -o json`'s
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
  socket: string;
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
    .option('--node <name>', 'node whose socket to read', 'seawall-node1')
    .option('--socket <path>', 'flow API socket (default /run/seawall/<node>/hubble.sock)')
    .action(
      async (
        o: Omit<ObserveOptions, 'socket' | 'output'> & { output: string; node: string; socket?: string },
      ) => {
        if (o.output !== 'json' && o.output !== 'compact') {
          process.stderr.write(`seawall observe: -o must be json or compact, not ${o.output}\n`);
          process.exitCode = 2;
          return;
        }
        const { defaultFlowSocket } = await import('../agent/flows.ts');
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        process.exitCode = await runObserve(
          { ...o, output: o.output, socket: o.socket ?? defaultFlowSocket(o.node) },
          {
            write: (l) => process.stdout.write(`${l}\n`),
            error: (l) => process.stderr.write(`${l}\n`),
            signal: ac.signal,
          },
        );
      },
    );
}
