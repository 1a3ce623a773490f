// Connectivity matrix (`seawall matrix`): every endpoint to every endpoint on one port/protocol
// (optionally one HTTP request), as a text grid, CSV, Markdown or Graphviz dot.

import type { FlowProtocol, FlowRequest, L7Request, PolicyEngineAPI } from '../policy/types.ts';
import { peerForEndpoint } from './parse.ts';
import type { TestEndpoint } from './types.ts';

export type Cell = 'allowed' | 'denied' | 'self';

export interface Matrix {
  names: string[];
  /** cells[from][to] */
  cells: Cell[][];
  title: string;
}

export interface MatrixInput {
  protocol: FlowProtocol;
  port?: number;
  l7?: L7Request;
}

function epName(e: TestEndpoint): string {
  return e.namespace !== undefined && !e.external ? `${e.namespace}/${e.name}` : e.name;
}

export function buildMatrix(
  engine: PolicyEngineAPI,
  endpoints: readonly TestEndpoint[],
  input: MatrixInput,
): Matrix {
  const eps = [...endpoints].sort((a, b) => epName(a).localeCompare(epName(b)));
  const cells = eps.map((src) =>
    eps.map((dst): Cell => {
      if (src === dst) return 'self';
      const req: FlowRequest = {
        src: peerForEndpoint(src),
        dst: peerForEndpoint(dst),
        protocol: input.protocol,
      };
      if (input.protocol === 'ICMP' || input.protocol === 'ICMPv6') {
        req.icmp = input.protocol === 'ICMP' ? { type: 8, family: 'IPv4' } : { type: 128, family: 'IPv6' };
      } else if (input.port !== undefined) req.dport = input.port;
      if (input.l7) req.l7 = input.l7;
      return engine.decide(req, 0).allowed ? 'allowed' : 'denied';
    }),
  );
  const port = input.port !== undefined ? `${input.port}/${input.protocol}` : input.protocol;
  const l7 = input.l7?.kind === 'http' ? ` HTTP ${input.l7.method} ${input.l7.path}` : '';
  return { names: eps.map(epName), cells, title: `${port}${l7}` };
}

const MARK: Record<Cell, string> = { allowed: '✓', denied: '✗', self: '-' };

export type MatrixFormat = 'text' | 'csv' | 'markdown' | 'dot';

export function formatMatrix(m: Matrix, format: MatrixFormat): string {
  const out: string[] = [];
  switch (format) {
    case 'csv':
      out.push(['from\\to', ...m.names].map(csv).join(','));
      for (const [i, row] of m.cells.entries()) {
        out.push([m.names[i]!, ...row.map((c) => (c === 'self' ? '-' : c))].map(csv).join(','));
      }
      break;
    case 'markdown':
      out.push(`**${m.title}** (rows: source, columns: destination)`, '');
      out.push(`| from \\ to | ${m.names.join(' | ')} |`, `|---|${m.names.map(() => ':-:').join('|')}|`);
      for (const [i, row] of m.cells.entries()) {
        out.push(`| ${m.names[i]} | ${row.map((c) => MARK[c]).join(' | ')} |`);
      }
      break;
    case 'dot':
      out.push('digraph connectivity {', `  label=${JSON.stringify(m.title)};`);
      for (const n of m.names) out.push(`  ${JSON.stringify(n)};`);
      for (const [i, row] of m.cells.entries()) {
        for (const [j, c] of row.entries()) {
          if (c === 'allowed') out.push(`  ${JSON.stringify(m.names[i])} -> ${JSON.stringify(m.names[j])};`);
        }
      }
      out.push('}');
      break;
    default: {
      const corner = 'from \\ to';
      const w0 = Math.max(corner.length, ...m.names.map((n) => n.length));
      const widths = m.names.map((n) => Math.max(n.length, 1));
      const line = (first: string, cols: string[]) =>
        [first.padEnd(w0), ...cols.map((c, j) => c.padEnd(widths[j]!))].join('  ').trimEnd();
      out.push(`${m.title} (✓ allowed, ✗ denied; rows: source, columns: destination)`, line(corner, m.names));
      for (const [i, row] of m.cells.entries()) {
        out.push(
          line(
            m.names[i]!,
            row.map((c) => MARK[c]),
          ),
        );
      }
    }
  }
  return `${out.join('\n')}\n`;
}

function csv(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
