// The UI's HTTP server: the SPA, a server-sent-events stream of flows (the window held so far as
// one `window` event, then per new flow a `flow` event, the JSON line the flow log writes, and a
// `rules` event with the rule entries that decided it),
// /api/info, /api/policy?endpoint=NS/NAME (the Network Policy Editor view with per-rule flows),
// /api/trace (seawall trace) and /api/export (the matching flows as JSON lines that
// `seawall observe --input-file` and `hubble observe --input-file` read).
// Read-only over the flows; loopback by default, and a Host check so that a web page elsewhere
// cannot read it through DNS rebinding.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TraceError, type TraceInput } from '../../policytest/trace.ts';
import type { Assets } from '../build.ts';
import { type FlowFilter, flowMatches, parseFilter, type VerdictFilter } from '../domain/filter.ts';
import type { UIFlow } from '../domain/types.ts';
import type { PolicyContext } from './policies.ts';
import type { FlowSource } from './sources.ts';
import { FlowStore, flowLogLine } from './store.ts';

export interface UIServerOptions {
  source: FlowSource;
  policies?: PolicyContext;
  assets: Assets;
  /** `host:port`; default 127.0.0.1:12000. */
  listen?: string;
  windowSize?: number;
}

export interface UIServerHandle {
  readonly url: string;
  readonly store: FlowStore;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

// No favicon to fetch (the browser would ask for /favicon.ico and log the 404).
const INDEX = (title: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/app.css"></head>
<body><div id="root"></div><script type="module" src="/app.js"></script></body></html>
`;

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m || Number(m[3]) > 65535)
    throw new Error(`--listen ${listen}: write HOST:PORT (e.g. 127.0.0.1:12000)`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

function send(
  res: ServerResponse,
  code: number,
  type: string,
  body: string,
  extra: Record<string, string> = {},
) {
  res.writeHead(code, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

const json = (res: ServerResponse, code: number, v: unknown) =>
  send(res, code, 'application/json; charset=utf-8', JSON.stringify(v));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error(`request body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The export's filter from the query string; an error message when the filter does not parse. */
export function exportFilter(q: URLSearchParams): FlowFilter | string {
  const p = parseFilter(q.get('filter') ?? '');
  if (p.errors.length > 0) return p.errors.map((e) => `${e.entry}: ${e.message}`).join('; ');
  const v = (q.get('verdict') ?? 'all') as VerdictFilter;
  if (!['all', 'forwarded', 'dropped', 'audit'].includes(v))
    return `verdict=${v}: one of all, forwarded, dropped, audit`;
  return { entries: p.entries, verdict: v };
}

function traceInput(body: unknown): TraceInput | string {
  if (body === null || typeof body !== 'object') return 'the body is a JSON object';
  const b = body as Record<string, unknown>;
  const peer = (v: unknown, side: string) => {
    if (v === null || typeof v !== 'object') return `${side}: an object with pod, ip or entity`;
    const o = v as Record<string, unknown>;
    const out: Record<string, string> = {};
    for (const k of ['pod', 'ip', 'entity', 'fqdn'])
      if (typeof o[k] === 'string' && o[k] !== '') out[k] = o[k] as string;
    return out;
  };
  const from = peer(b.from, 'from');
  const to = peer(b.to, 'to');
  if (typeof from === 'string') return from;
  if (typeof to === 'string') return to;
  const protocol = typeof b.protocol === 'string' ? b.protocol : 'TCP';
  if (!['TCP', 'UDP', 'SCTP', 'ICMP', 'ICMPv6'].includes(protocol))
    return `protocol ${protocol}: TCP, UDP, SCTP, ICMP or ICMPv6`;
  const input: TraceInput = { from, to, protocol: protocol as TraceInput['protocol'] };
  if (b.port !== undefined && b.port !== '' && b.port !== null) {
    const port = Number(b.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return `port ${String(b.port)}: 1-65535`;
    input.port = port;
  }
  const http = b.http as { method?: unknown; path?: unknown } | undefined;
  if (http && (typeof http.method === 'string' || typeof http.path === 'string')) {
    input.l7 = {
      kind: 'http',
      method: typeof http.method === 'string' && http.method !== '' ? http.method : 'GET',
      path: typeof http.path === 'string' && http.path !== '' ? http.path : '/',
    };
  } else if (typeof b.dns === 'string' && b.dns !== '') input.l7 = { kind: 'dns', query: b.dns, qtype: 'A' };
  return input;
}

export async function startUIServer(o: UIServerOptions): Promise<UIServerHandle> {
  const { host, port } = parseListen(o.listen ?? '127.0.0.1:12000');
  const store = new FlowStore(o.windowSize);
  let status = 'starting';
  const statusSubs = new Set<(s: string) => void>();
  const clients = new Set<ServerResponse>();
  const sseEvent = (u: UIFlow): string =>
    `id: ${u.seq}\nevent: flow\ndata: ${flowLogLine(u)}\n\n` +
    (u.rules.length > 0 ? `event: rules\ndata: ${JSON.stringify({ seq: u.seq, rules: u.rules })}\n\n` : '');

  let allowedHosts: Set<string> | undefined;
  const hostOK = (req: IncomingMessage): boolean => {
    if (allowedHosts === undefined) return true;
    return allowedHosts.has((req.headers.host ?? '').toLowerCase());
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostOK(req))
      return send(res, 403, 'text/plain', `Host ${req.headers.host ?? ''} is not this server\n`);
    const url = new URL(req.url ?? '/', 'http://ui');
    const path = url.pathname;
    if (req.method === 'GET' && (path === '/' || path === '/index.html'))
      return send(res, 200, 'text/html; charset=utf-8', INDEX('Seawall'));
    if (req.method === 'GET' && path === '/app.js')
      return send(res, 200, 'text/javascript; charset=utf-8', o.assets.js);
    if (req.method === 'GET' && path === '/app.css')
      return send(res, 200, 'text/css; charset=utf-8', o.assets.css);
    if (req.method === 'GET' && path === '/api/info')
      return json(res, 200, {
        source: o.source.describe,
        status,
        policies: o.policies !== undefined,
        endpoints: o.policies?.endpoints ?? [],
        flows: store.size,
      });
    if (req.method === 'GET' && path === '/api/flows') {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      res.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`);
      // The window first, as one `window` event (a JSON array of {seq, line, rules}: one parse
      // in the browser instead of one per flow), then each new flow as it comes.
      const win = store
        .all()
        .map((u) => `{"seq":${u.seq},"line":${flowLogLine(u)},"rules":${JSON.stringify(u.rules)}}`);
      res.write(`event: window\ndata: [${win.join(',')}]\n\n`);
      res.write('event: synced\ndata: {}\n\n');
      const off = store.subscribe((u) => res.write(sseEvent(u)));
      const onStatus = (s: string) => res.write(`event: status\ndata: ${JSON.stringify(s)}\n\n`);
      statusSubs.add(onStatus);
      clients.add(res);
      req.on('close', () => {
        off();
        statusSubs.delete(onStatus);
        clients.delete(res);
      });
      return;
    }
    if (req.method === 'GET' && path === '/api/export') {
      const f = exportFilter(url.searchParams);
      if (typeof f === 'string') return send(res, 400, 'text/plain; charset=utf-8', `${f}\n`);
      // `until`: the newest flow the page shows (a paused page has not shown what came after).
      const until = Number(url.searchParams.get('until') ?? Number.POSITIVE_INFINITY);
      if (Number.isNaN(until))
        return send(res, 400, 'text/plain; charset=utf-8', 'until: a flow sequence number\n');
      const body = store
        .all()
        .filter((u) => u.seq <= until && flowMatches(u.flow, f))
        .map((u) => `${flowLogLine(u)}\n`)
        .join('');
      return send(res, 200, 'application/x-ndjson; charset=utf-8', body, {
        'content-disposition': 'attachment; filename="seawall-flows.jsonl"',
      });
    }
    if (req.method === 'GET' && path === '/api/policy') {
      if (o.policies === undefined)
        return json(res, 404, {
          error: 'no policies loaded: start seawall ui with --policies DIR (and -f manifests)',
        });
      const v = o.policies.policyView(url.searchParams.get('endpoint') ?? '', store.all());
      return typeof v === 'string' ? json(res, 400, { error: v }) : json(res, 200, v);
    }
    if (req.method === 'POST' && path === '/api/trace') {
      if (o.policies === undefined)
        return json(res, 404, {
          error: 'no policies loaded: start seawall ui with --policies DIR (and -f manifests)',
        });
      let body: unknown;
      try {
        body = JSON.parse(await readBody(req));
      } catch (e) {
        return json(res, 400, { error: `body: ${(e as Error).message}` });
      }
      const input = traceInput(body);
      if (typeof input === 'string') return json(res, 400, { error: input });
      try {
        return json(res, 200, o.policies.trace(input));
      } catch (e) {
        if (e instanceof TraceError) return json(res, 400, { error: e.message });
        throw e;
      }
    }
    send(res, 404, 'text/plain', 'not found\n');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) send(res, 500, 'text/plain', `${e.message}\n`);
      else res.end();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // the SSE stream stays open
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  if (!['0.0.0.0', '::'].includes(addr.address)) {
    allowedHosts = new Set([`${shown}:${addr.port}`, `localhost:${addr.port}`].map((h) => h.toLowerCase()));
  }
  o.source.start(
    (line) => {
      store.add(line, o.policies?.explain(line.flow) ?? []);
    },
    (s) => {
      status = s;
      for (const fn of statusSubs) fn(s);
    },
  );
  if (status === 'starting') status = 'ready';
  return {
    url: `http://${shown}:${addr.port}`,
    store,
    async close() {
      o.source.stop();
      for (const c of clients) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
