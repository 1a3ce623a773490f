// `seawall observe`: flow records from a running node's Hubble API (gRPC, hubble.sock) or its HTTP
// flow API (flows.sock), with a subset of `hubble observe`'s flags. `-o json` prints the API's lines unchanged: `hubble observe -o json`'s
// shape ({"flow": {...}, "node_name": ..., "time": ...}). Filters are applied here (src/observe).

import { request } from 'node:http';
import type { Command } from 'commander';
import type { Flow, FlowEvent } from '../flow/types.ts';
import {
  FilterError,
  type FilterFlags,
  type FlowFilter,
  filterFromFlags,
  matchFlow,
} from '../observe/filter.ts';
import { FlagError, type ObserveArgs, parseObserveArgs } from '../observe/flags.ts';
import {
  DICT_SEPARATOR,
  flowEventProblem,
  formatCompact,
  formatDict,
  formatTable,
  type PrintOptions,
} from '../observe/format.ts';
import { compileFlowFilters } from '../observe/hubble/filter.ts';

export interface ObserveOptions extends FilterFlags {
  follow?: boolean;
  last?: number;
  output?: 'json' | 'compact';
  /** The HTTP flow API's unix socket (NDJSON), when no server is given. */
  socket?: string;
  /** Overrides the flag filters (the CLI passes hubble's compiled FlowFilters). */
  match?: (f: Flow) => boolean;
  /** Overrides the output: the text of one record, or undefined to print nothing now. */
  print?: (e: FlowEvent, raw: string) => string | undefined;
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
  if (o.socket === undefined) throw new TypeError('runObserve: give the socket of an HTTP flow API');
  return runObserveSocket({ ...o, socket: o.socket }, io);
}

/** Prints responses as the chosen output; `end` flushes what waits for the end (a table). */
export interface FlowPrinter {
  flow(e: FlowEvent, response: Record<string, unknown>): void;
  end(): void;
}

export function makePrinter(a: ObserveArgs, io: ObserveIO & { isTTY?: boolean }): FlowPrinter {
  const opts: PrintOptions = {
    timeFormat: a.timeFormat,
    nodeName: a.printNodeName,
    policyNames: a.printPolicyNames,
    numeric: a.numeric,
    color: a.color === 'always' || (a.color === 'auto' && io.isTTY === true),
  };
  let n = 0;
  const table: FlowEvent[] = [];
  return {
    flow(e, response) {
      switch (a.output) {
        case 'compact':
          io.write(formatCompact(e, opts));
          break;
        case 'dict':
          if (n > 0) io.write(DICT_SEPARATOR);
          io.write(formatDict(e, opts));
          break;
        case 'table':
          table.push(e);
          break;
        case 'json':
        case 'jsonpb':
          io.write(JSON.stringify(response));
          break;
      }
      n++;
    },
    end() {
      if (a.output === 'table' && table.length > 0) for (const l of formatTable(table, opts)) io.write(l);
    },
  };
}

/** `--print-raw-filters`: the request's filters as hubble prints them (YAML lists of JSON). */
export function rawFiltersYAML(req: ObserveArgs['request']): string {
  const list = (name: string, fs: readonly object[]): string[] =>
    fs.length === 0 ? [] : [`${name}:`, ...fs.map((f) => `- '${JSON.stringify(f).replaceAll("'", "''")}'`)];
  const lines = [...list('allowlist', req.whitelist), ...list('denylist', req.blacklist)];
  return lines.length === 0 ? '{}' : lines.join('\n');
}

/** The GetFlowsRequest as the gRPC client takes it (uint64 as a decimal string). */
function grpcRequest(req: ObserveArgs['request']): Record<string, unknown> {
  const out: Record<string, unknown> = { whitelist: req.whitelist, blacklist: req.blacklist };
  if (req.number !== undefined) out.number = String(req.number);
  if (req.first) out.first = true;
  if (req.follow) out.follow = true;
  if (req.since) out.since = req.since;
  if (req.until) out.until = req.until;
  return out;
}

/**
 * Reads Hubble's Observer API (GetFlows) with a gRPC client: the server filters and counts, as
 * for `hubble observe --server`. Resolves with the exit code as runObserve's.
 */
async function observeServer(
  server: string,
  req: ObserveArgs['request'],
  printer: FlowPrinter,
  io: ObserveIO,
): Promise<number> {
  const { connectHubble } = await import('../observe/hubble/client.ts');
  const grpc = await import('@grpc/grpc-js');
  const client = connectHubble(server);
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      printer.end();
      client.close();
      resolve(code);
    };
    const s = client.streamFlows(grpcRequest(req));
    s.on('data', (r: Record<string, unknown>) => {
      if (r.lost_events !== undefined) {
        const l = r.lost_events as { source?: string; num_events_lost?: string };
        io.error(`seawall observe: EVENTS LOST: ${l.source ?? '?'} ${l.num_events_lost ?? '?'}`);
        return;
      }
      const flow = r.flow as Flow | undefined;
      if (flow === undefined || typeof r.time !== 'string') return;
      const e: FlowEvent = { flow, time: r.time };
      if (typeof r.node_name === 'string') e.node_name = r.node_name;
      printer.flow(e, r);
    });
    s.on('error', (e: Error & { code?: number; details?: string }) => {
      if (settled) return;
      if (e.code === grpc.status.UNAVAILABLE) {
        io.error(
          `seawall observe: no Hubble API at ${server} (${e.details ?? e.message}); is \`seawall agent\` running with flow records?`,
        );
        finish(2);
        return;
      }
      if (e.code === grpc.status.INVALID_ARGUMENT) {
        io.error(`seawall observe: ${e.details ?? e.message}`);
        finish(2);
        return;
      }
      io.error(`seawall observe: connection to ${server} lost: ${e.details ?? e.message}`);
      finish(1);
    });
    s.on('end', () => {
      if (req.follow && !settled) {
        io.error(
          `seawall observe: connection to ${server} lost: the server ended the stream (agent stopped?)`,
        );
        finish(1);
      } else finish(0);
    });
    io.signal?.addEventListener('abort', () => {
      if (settled) return;
      settled = true; // ours: the CANCELLED that follows is not an error
      s.cancel();
      printer.end();
      client.close();
      resolve(0);
    });
  });
}

/**
 * `--input-file FILE|-`: saved `-o jsonpb` lines replayed through the same filters, time window
 * and count as the server applies (follow does not apply).
 */
async function observeFile(
  path: string,
  req: ObserveArgs['request'],
  printer: FlowPrinter,
  io: ObserveIO & { stdin?: NodeJS.ReadableStream },
): Promise<number> {
  const { createReadStream } = await import('node:fs');
  const { createInterface } = await import('node:readline');
  const match = compileFlowFilters(req.whitelist, req.blacklist);
  const t = (x: { seconds: number; nanos: number } | undefined): number | undefined =>
    x === undefined ? undefined : x.seconds * 1e3 + x.nanos / 1e6;
  const since = t(req.since);
  const until = t(req.until);
  let input: NodeJS.ReadableStream;
  if (path === '-') input = io.stdin ?? process.stdin;
  else {
    const f = createReadStream(path);
    const opened = await new Promise<Error | undefined>((r) => {
      f.once('open', () => r(undefined));
      f.once('error', (e) => r(e));
    });
    if (opened !== undefined) {
      io.error(`seawall observe: --input-file: ${opened.message}`);
      return 2;
    }
    input = f;
  }
  const keep = req.first ? undefined : req.number;
  const tail: [FlowEvent, Record<string, unknown>][] = [];
  let printed = 0;
  let malformed = 0;
  let lineNo = 0;
  for await (const line of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    lineNo++;
    if (line.trim() === '') continue;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line) as Record<string, unknown>;
    } catch {
      malformed++;
      continue;
    }
    if (flowEventProblem(r) !== undefined) {
      malformed++;
      continue;
    }
    const e = r as unknown as FlowEvent;
    const ms = Date.parse(e.time);
    if ((since !== undefined && ms < since) || (until !== undefined && ms > until)) continue;
    if (!match(e.flow)) continue;
    if (keep !== undefined) {
      tail.push([e, r]);
      if (tail.length > keep) tail.shift();
      continue;
    }
    printer.flow(e, r);
    if (req.first && req.number !== undefined && ++printed >= req.number) break;
  }
  for (const [e, r] of tail) printer.flow(e, r);
  printer.end();
  if (malformed > 0)
    io.error(
      `seawall observe: skipped ${malformed} malformed record${malformed === 1 ? '' : 's'} of ${lineNo} lines`,
    );
  return 0;
}

/** `seawall observe ARGS...`: hubble's flags, in order. Resolves with the exit code. */
export async function runObserveArgs(
  argv: readonly string[],
  io: ObserveIO & { isTTY?: boolean; stdin?: NodeJS.ReadableStream },
): Promise<number> {
  let a: ObserveArgs;
  try {
    a = parseObserveArgs(argv);
  } catch (e) {
    if (e instanceof FlagError) {
      io.error(`seawall observe: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (a.printRawFilters) {
    io.write(rawFiltersYAML(a.request));
    return 0;
  }
  const printer = makePrinter(a, io);
  const req = a.request;
  if (a.inputFile !== undefined) return observeFile(a.inputFile, req, printer, io);
  if (a.socket !== undefined) {
    if (req.first || req.since !== undefined || req.until !== undefined) {
      io.error(
        'seawall observe: --socket (the HTTP flow API) takes no --first, --since or --until; use --server',
      );
      return 2;
    }
    const match = compileFlowFilters(req.whitelist, req.blacklist);
    const table: FlowEvent[] = [];
    const code = await runObserve(
      {
        socket: a.socket,
        ...(req.follow ? { follow: true } : {}),
        ...(req.number !== undefined ? { last: req.number } : {}),
        match,
        print: (e, raw) => {
          if (a.output === 'json' || a.output === 'jsonpb') return raw;
          if (a.output === 'table') {
            table.push(e);
            return undefined;
          }
          const lines: string[] = [];
          makePrinter(a, { ...io, write: (l) => lines.push(l) }).flow(e, {});
          return lines.join('\n');
        },
      },
      io,
    );
    if (table.length > 0)
      for (const l of formatTable(table, { timeFormat: a.timeFormat, nodeName: a.printNodeName }))
        io.write(l);
    return code;
  }
  const { defaultHubbleSocket } = await import('../agent/hubble.ts');
  const server = a.server ?? `unix://${defaultHubbleSocket(a.node ?? 'seawall-node1')}`;
  return observeServer(server, req, printer, io);
}

/** The HTTP flow API (NDJSON lines) on a unix socket. */
async function runObserveSocket(o: ObserveOptions & { socket: string }, io: ObserveIO): Promise<number> {
  let filter: FlowFilter = {};
  try {
    if (o.match === undefined) filter = filterFromFlags(o);
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
        if (!(o.match !== undefined ? o.match(e.flow) : matchFlow(filter, e.flow))) return;
        const printed =
          o.print !== undefined ? o.print(e, raw) : o.output === 'json' ? raw : formatCompact(e);
        if (printed === undefined) return;
        text = printed;
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

const HELP = `
Reads flows from a running agent's Hubble API (gRPC; default unix:///run/seawall/<node>/hubble.sock)
with hubble observe's flags and meanings; the last 20 flows when no count, time or --follow is given.

Selectors:
  --all                     all flows the ring holds
  --first N | --last N      the oldest / newest N matching flows
  --since T, --until T      RFC 3339 time or a duration ago (5m, 1h30m)
  -f, --follow              keep printing new flows
Filters (repeatable; values of one flag are alternatives, different flags must all hold;
either-side flags pair up: --pod A --port 80 is source A with source port 80, or destination A
with destination port 80; --not turns the next filter into the denylist):
  --pod, --from-pod, --to-pod [ns/]pod-prefix     -n, --namespace, --from-namespace, --to-namespace NS
  -A, --all-namespaces      --ip, --from-ip, --to-ip ADDR|CIDR      --port, --from-port, --to-port N
  -l, --label, --from-label, --to-label SELECTOR (k8s:app=x, reserved:world, key in (a,b))
  --identity, --from-identity, --to-identity N|world|host|...    --fqdn, --from-fqdn, --to-fqdn NAME|*.x
  --service, --from-service, --to-service [ns/]svc  --workload, --from-workload, --to-workload [kind/]name
  --verdict FORWARDED|DROPPED|AUDIT|REDIRECTED|ERROR|TRACED|TRANSLATED   --drop-reason-desc NAME
  -t, --type TYPE[:SUBTYPE] (drop, trace[:to-endpoint...], policy-verdict, l7, capture, trace-sock, N[:N])
  --protocol tcp|udp|sctp|icmp|icmpv4|icmpv6|http|dns|kafka     --tcp-flags syn,ack,...
  --traffic-direction ingress|egress   --node-name GLOB   --uuid ID   -4/--ipv4, -6/--ipv6, --ip-version
  --http-status 404|5+   --http-method GET   --http-path RE2   --http-url RE2   --http-header key:value
  --allowlist JSON, --denylist JSON   raw FlowFilters     --print-raw-filters   print them and exit
Output:
  -o, --output compact|dict|table|json|jsonpb   --time-format StampMilli|RFC3339|RFC3339Milli|
  RFC3339Micro|RFC3339Nano|RFC1123Z   --color auto|always|never   --numeric   --print-node-name
  --print-policy-names
Source:
  --server unix:///path|host:port   --node NAME (its hubble.sock)   --input-file FILE|- (saved
  -o jsonpb lines, replayed through the same filters)   --socket PATH (the HTTP flow API, flows.sock)

Examples:
  # The last 20 flows, one line each
  $ sudo seawall observe

  # Follow drops in namespace shop
  $ sudo seawall observe -f --verdict DROPPED -n shop

  # Traffic of shop/client on port 8080 (either side), without the DNS noise
  $ sudo seawall observe --pod client -n shop --port 8080 --not --protocol dns

  # Hubble's JSON, for jq and Hubble tooling; replay it later through filters
  $ sudo seawall observe --last 100 -o jsonpb > flows.json
  $ seawall observe --input-file flows.json -t drop
`;

export function registerObserve(program: Command): void {
  program
    .command('observe')
    .description("flow records of a running agent, like `hubble observe` (reads the node's Hubble API)")
    .usage('[flags]')
    .argument('[flags...]')
    .allowUnknownOption()
    .helpOption('-h, --help')
    .addHelpText('after', HELP)
    .action(async (_flags: string[], _o: unknown, cmd: Command) => {
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.exitCode = await runObserveArgs(cmd.args, {
        write: (l) => process.stdout.write(`${l}\n`),
        error: (l) => process.stderr.write(`${l}\n`),
        signal: ac.signal,
        isTTY: process.stdout.isTTY === true,
      });
    });
}
