// Test support for the HTTP proxy: an upstream that counts and echoes what reached it, a proxy on
// loopback with a fixed redirect context pointing at that upstream, and a raw-socket client.

import http from 'node:http';
import net from 'node:net';
import type { Flow } from '../../flow/types.ts';
import type { RuleRef } from '../../policy/types.ts';
import type { HeaderMatch, PortRuleHTTP } from '../../policy-api/types.ts';
import { fixedOriginalDst } from '../origdst.ts';
import type { HostPort, HTTPRuleSet, RedirectContext } from './context.ts';
import { HTTPProxy, type HTTPProxyOptions } from './proxy.ts';

export const pos = { file: 'test', line: 1, column: 1 };

export type RuleInput = Omit<PortRuleHTTP, 'pos' | 'headerMatches'> & {
  headerMatches?: Array<Omit<HeaderMatch, 'pos'>>;
};

/** Rules without source positions (tests write them inline). */
export function rules(...rs: RuleInput[]): PortRuleHTTP[] {
  return rs.map(({ headerMatches, ...r }) => {
    const out: PortRuleHTTP = { pos, ...r };
    if (headerMatches !== undefined) out.headerMatches = headerMatches.map((h) => ({ pos, ...h }));
    return out;
  });
}

export function ref(name: string): RuleRef {
  return {
    kind: 'CiliumNetworkPolicy',
    name,
    namespace: 'default',
    ruleIndex: 0,
    section: 'ingress',
    entryIndex: 0,
    pos,
  };
}

export function ingress(rs: PortRuleHTTP[], policy = 'backend-http'): HTTPRuleSet {
  return { direction: 'INGRESS', rules: rs, policies: [ref(policy)], namespace: 'default' };
}

export interface Seen {
  method: string;
  url: string;
  httpVersion: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
}

export interface Upstream {
  address: HostPort;
  seen: Seen[];
  server: http.Server;
  close(): Promise<void>;
}

/** Echoes what it got as JSON (`x-upstream: yes`), and records it. */
export async function startUpstream(
  handler?: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void,
): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        httpVersion: req.httpVersion,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body,
      };
      seen.push(s);
      if (handler !== undefined) return handler(req, res, body);
      const out = JSON.stringify(s);
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-upstream': 'yes',
        'content-length': Buffer.byteLength(out),
      });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const a = server.address() as net.AddressInfo;
  return {
    address: { address: '127.0.0.1', port: a.port },
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TestProxy {
  proxy: HTTPProxy;
  address: HostPort;
  flows: Flow[];
  refused: string[];
  /** Swap the rule sets (the context's getter reads this on every request). */
  sets: { current: readonly HTTPRuleSet[] };
  close(): Promise<void>;
}

export function contextFor(upstream: HostPort, sets: { current: readonly HTTPRuleSet[] }): RedirectContext {
  return {
    sourceIdentity: 1001,
    source: { identity: 1001, namespace: 'default', pod_name: 'client', labels: ['k8s:app=client'] },
    destination: { identity: 1002, namespace: 'default', pod_name: 'server', labels: ['k8s:app=server'] },
    originalDst: upstream,
    direction: 'INGRESS',
    ruleSets: () => sets.current,
  };
}

export async function startProxy(
  upstream: HostPort,
  initial: readonly HTTPRuleSet[],
  opts: Partial<HTTPProxyOptions> = {},
): Promise<TestProxy> {
  const flows: Flow[] = [];
  const refused: string[] = [];
  const sets = { current: initial };
  const proxy = new HTTPProxy({
    lookup: () => contextFor(upstream, sets),
    originalDst: fixedOriginalDst(upstream),
    onFlow: (f) => flows.push(f),
    onRefused: (r) => refused.push(r),
    nodeName: 'node-1',
    ...opts,
  });
  const address = await proxy.listen(0, '127.0.0.1');
  return { proxy, address, flows, refused, sets, close: () => proxy.close() };
}

export interface RawResult {
  /** Everything the proxy sent back. */
  data: string;
  /** The proxy closed the connection (before the client's deadline). */
  closed: boolean;
}

/**
 * Sends `chunks` on one connection (a pause between chunks when asked) and collects the answer
 * until the proxy closes it, `expectResponses` status lines arrived, or `timeoutMs` passed.
 */
export function rawExchange(
  addr: HostPort,
  chunks: Array<string | Buffer>,
  opts: { timeoutMs?: number; expectResponses?: number; gapMs?: number; endAfter?: boolean } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = net.connect(addr.port, addr.address);
    let data = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data, closed });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 2000);
    sock.on('data', (d) => {
      data += d.toString('latin1');
      if (opts.expectResponses !== undefined && parseResponses(data).length >= opts.expectResponses) {
        finish(false);
      }
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => finish(true));
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (opts.gapMs !== undefined) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.endAfter === true) sock.end();
    });
  });
}

export interface ParsedResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Splits a raw HTTP/1.x answer into its responses (content-length, chunked or to-close bodies). */
export function parseResponses(data: string): ParsedResponse[] {
  const out: ParsedResponse[] = [];
  let at = 0;
  while (at < data.length) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(lines[0] ?? '');
    if (m === null) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    at = end + 4;
    let body = '';
    if (status >= 100 && status < 200) continue;
    if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (data.length - at < n) break;
      body = data.slice(at, at + n);
      at += n;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      for (;;) {
        const le = data.indexOf('\r\n', at);
        if (le < 0) return out;
        const size = Number.parseInt(data.slice(at, le), 16);
        at = le + 2;
        if (size === 0) {
          const te = data.indexOf('\r\n', at);
          at = te < 0 ? data.length : te + 2;
          break;
        }
        body += data.slice(at, at + size);
        at += size + 2;
      }
    } else if (status !== 204 && status !== 304) {
      body = data.slice(at);
      at = data.length;
    }
    out.push({ status, headers, body });
  }
  return out;
}

/** Status codes of the responses in a raw answer, 1xx excluded. */
export function statuses(data: string): number[] {
  return parseResponses(data).map((r) => r.status);
}

export interface RecordHTTP {
  code?: number;
  method: string;
  url: string;
  protocol: string;
  headers?: Array<{ key: string; value: string }>;
}

/** The `l7.http` part of a record (empty fields when the record has none). */
export function httpOf(f: Flow): RecordHTTP {
  return (f.l7?.http ?? { method: '', url: '', protocol: '' }) as unknown as RecordHTTP;
}
