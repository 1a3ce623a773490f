// `seawall fqdn cache list` (like `cilium fqdn cache list`): the node's DNS cache, one row per name
// and address: TTL left, expiry, source (lookup: from a DNS answer; connection: a zombie kept for a
// live connection) and the endpoints that looked the name up. Reads the agent's persisted cache
// file (default /run/seawall/<node>/fqdn-cache.json), or, with --test, replays a PolicyTest's flows
// offline and shows what its DNS proxy would have learnt from the `dns:` table (as `seawall test`
// does: only queries a DNS rule allowed teach anything). Exit: 0 ok, 2 bad input.

import { join } from 'node:path';
import type { Command } from 'commander';
import { runDirFor } from '../datapath/topology.ts';
import { type CacheRow, DNSCache } from '../fqdn/cache.ts';
import { bareName } from '../fqdn/name.ts';
import { CACHE_FILE_NAME, CacheFileError, readCacheFile } from '../fqdn/persist.ts';
import { defaultEngineFactory } from '../policy/default-engine.ts';
import { loadPolicyTestFile } from '../policytest/parse.ts';
import { formatIssue } from '../policytest/report.ts';
import { answerLearnt, prepareEngine } from '../policytest/runner.ts';
import type { PolicyTest } from '../policytest/types.ts';

export interface FqdnCacheListOptions {
  cache?: string;
  node: string;
  test?: string;
  output: 'table' | 'json';
  /** Only names matching this (case-insensitive, trailing dot optional). */
  name?: string;
}

export interface FqdnIO {
  write: (s: string) => void;
  error: (s: string) => void;
  /** Wall clock (ms); injectable for golden outputs. */
  now: () => number;
}

/** The agent's cache file for a node. */
export function defaultCacheFile(node: string): string {
  return join(runDirFor(node), CACHE_FILE_NAME);
}

interface Section {
  /** The PolicyTest's name, for --test. */
  test?: string;
  rows: CacheRow[];
  /** The time the rows are seen at (the replay's end for --test). */
  at: number;
}

export async function runFqdnCacheList(o: FqdnCacheListOptions, io: FqdnIO): Promise<number> {
  const now = io.now();
  let sections: Section[];
  if (o.test !== undefined) {
    const parsed = await loadPolicyTestFile(o.test);
    for (const i of parsed.issues) io.error(formatIssue(i));
    if (parsed.issues.some((i) => i.severity === 'error')) return 2;
    if (parsed.tests.length === 0) {
      io.error(`seawall fqdn: ${o.test}: no PolicyTest document`);
      return 2;
    }
    sections = parsed.tests.map((t) => ({
      test: t.name,
      rows: offlineCache(t, now).rows(endOf(t, now)),
      at: endOf(t, now),
    }));
  } else {
    const file = o.cache ?? defaultCacheFile(o.node);
    const cache = new DNSCache();
    try {
      cache.restore(readCacheFile(file), now);
    } catch (e) {
      if (!(e instanceof CacheFileError)) throw e;
      io.error(`seawall fqdn: ${e.message}`);
      return 2;
    }
    sections = [{ rows: cache.rows(now), at: now }];
  }
  if (o.name !== undefined) {
    const want = `${bareName(o.name)}.`;
    for (const s of sections) s.rows = s.rows.filter((r) => r.name === want);
  }
  if (o.output === 'json') {
    const asJSON = (rows: CacheRow[], at: number) =>
      rows.map((r) => ({
        name: r.name,
        ip: r.ip,
        ttl: ttlLeft(r, at),
        expiresAt: new Date(r.expiresAt).toISOString(),
        source: r.source,
        endpoints: r.endpoints,
      }));
    const out =
      o.test !== undefined
        ? sections.map((s) => ({ test: s.test, entries: asJSON(s.rows, s.at) }))
        : asJSON(sections[0]!.rows, now);
    io.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  const parts: string[] = [];
  for (const s of sections) {
    const head = s.test !== undefined ? `# PolicyTest ${s.test}\n` : '';
    parts.push(head + table(s.rows, s.at));
  }
  io.write(parts.join('\n'));
  return 0;
}

/** Virtual clock of an offline replay: one step per flow, as the offline runner steps. */
const STEP_MS = 100;

function endOf(t: PolicyTest, start: number): number {
  return start + t.flows.length * STEP_MS;
}

/**
 * Replays the flows in order on a virtual clock starting at `start` and learns each DNS answer
 * the way `seawall test` does (policytest/runner.ts answerLearnt), recording the asking endpoint.
 */
function offlineCache(t: PolicyTest, start: number): DNSCache {
  const { engine } = prepareEngine(t, defaultEngineFactory);
  const cache = new DNSCache();
  let now = start;
  for (const flow of t.flows) {
    now += STEP_MS;
    const rec = answerLearnt(t, flow, engine.decide(flow.request, now));
    if (rec === undefined) continue;
    engine.learnDNS(rec.name, rec.ips, rec.ttl, now);
    const src = flow.request.src;
    const who =
      src.kind === 'endpoint' ? `${src.namespace}/${src.name}` : src.kind === 'ip' ? src.ip : src.entity;
    cache.learn(rec.name, rec.ips, rec.ttl, now, who);
  }
  return cache;
}

function ttlLeft(r: CacheRow, now: number): number {
  return r.source === 'connection' ? 0 : Math.max(0, Math.ceil((r.expiresAt - now) / 1000));
}

function table(rows: CacheRow[], now: number): string {
  const head = ['FQDN', 'IP', 'TTL', 'ExpirationTime', 'Source', 'Endpoints'];
  const body = rows.map((r) => [
    r.name,
    r.ip,
    String(ttlLeft(r, now)),
    new Date(r.expiresAt).toISOString(),
    r.source,
    r.endpoints.length > 0 ? r.endpoints.join(',') : '-',
  ]);
  if (body.length === 0) return '(no entries)\n';
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return `${[line(head), ...body.map(line)].join('\n')}\n`;
}

export function registerFqdn(program: Command): void {
  const fqdn = program.command('fqdn').description('the node DNS cache that toFQDNs selects from');
  const cache = fqdn.command('cache').description('the FQDN cache');
  cache
    .command('list')
    .description(
      'names, addresses, TTLs, expiry and the endpoints that looked them up (like `cilium fqdn cache list`)',
    )
    .addHelpText(
      'after',
      `
Examples:
  # The agent's cache on node seawall-node1
  $ sudo seawall fqdn cache list

  # One name, as JSON
  $ seawall fqdn cache list --cache /run/seawall/seawall-node1/fqdn-cache.json --name api.github.com -o json

  # What a PolicyTest's DNS lookups teach, offline
  $ seawall fqdn cache list --test examples/guide/tests/06-allow-external-apis.test.yaml

Exit status: 0 listed, 2 unreadable or invalid input.
`,
    )
    .option('--cache <file>', 'persisted cache file (default /run/seawall/<node>/fqdn-cache.json)')
    .option('--node <name>', 'node whose cache file to read', 'seawall-node1')
    .option('--test <file>', 'replay a PolicyTest offline and list what its `dns:` answers teach')
    .option('--name <fqdn>', 'only this name')
    .option('-o, --output <format>', 'table | json', 'table')
    .action(async (o: Omit<FqdnCacheListOptions, 'output'> & { output: string }) => {
      if (o.output !== 'table' && o.output !== 'json') {
        process.stderr.write(`seawall fqdn: -o must be table or json, not ${o.output}\n`);
        process.exitCode = 2;
        return;
      }
      process.exitCode = await runFqdnCacheList(
        { ...o, output: o.output },
        {
          write: (s) => process.stdout.write(s),
          error: (s) => process.stderr.write(`${s}\n`),
          now: Date.now,
        },
      );
    });
}
