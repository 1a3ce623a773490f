// `seawall node list`, `seawall identity list`, `seawall ipcache list`: the kvstore read once, as
// `cilium node list`, `cilium identity list` and `cilium-dbg map get cilium_ipcache` show it.
// Exit 2 when the store cannot be read (with the reason), 0 otherwise.

import type { Command } from 'commander';
import type { StoreView } from '../kvstore/read.ts';

export type StoreListKind = 'node' | 'identity' | 'ipcache';

export interface StoreListOptions {
  kvstore?: string;
  output: string;
  cluster?: string;
}

export interface StoreListIO {
  write(s: string): void;
  error(s: string): void;
}

const KVSTORE_ENV = 'SEAWALL_KVSTORE';

function pad(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]! + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** The table (or JSON) of one kind; pure, for golden tests. */
export function formatStore(kind: StoreListKind, v: StoreView, output: string): string {
  if (output === 'json') {
    const body = kind === 'node' ? v.nodes : kind === 'identity' ? v.identities : v.ipcache;
    return `${JSON.stringify(body, null, 2)}\n`;
  }
  if (kind === 'node') {
    const rows = [['Name', 'IPv4 Address', 'Endpoint CIDR', 'Labels']];
    for (const n of v.nodes)
      rows.push([
        n.name,
        n.ip,
        n.podCIDRs.join(',') || '-',
        Object.entries(n.labels)
          .map(([k, x]) => `${k}=${x}`)
          .join(',') || '-',
      ]);
    return pad(rows);
  }
  if (kind === 'identity') {
    const rows = [['ID', 'LABELS', 'REFERENCED BY']];
    for (const i of v.identities) {
      i.labels.forEach((l, j) => {
        rows.push([
          j === 0 ? String(i.id) : '',
          l,
          j === 0 ? i.referencedBy.join(',') || '(none: collected soon)' : '',
        ]);
      });
      if (i.labels.length === 0) rows.push([String(i.id), '(no labels)', i.referencedBy.join(',')]);
    }
    return pad(rows);
  }
  const rows = [['IP PREFIX/ADDRESS', 'IDENTITY', 'HOST']];
  for (const e of v.ipcache) rows.push([`${e.ip}/32`, String(e.id), e.hostIP]);
  return pad(rows);
}

export async function runStoreList(
  kind: StoreListKind,
  o: StoreListOptions,
  io: StoreListIO,
): Promise<number> {
  const url = o.kvstore ?? process.env[KVSTORE_ENV];
  if (url === undefined) {
    io.error(`seawall ${kind} list: --kvstore etcd://HOST:PORT (or ${KVSTORE_ENV}) is required`);
    return 2;
  }
  if (o.output !== 'human' && o.output !== 'json') {
    io.error(`seawall ${kind} list: -o ${o.output}: expected human or json`);
    return 2;
  }
  const { KvstoreClient } = await import('../kvstore/client.ts');
  const { readStore } = await import('../kvstore/read.ts');
  let c: InstanceType<typeof KvstoreClient>;
  try {
    c = new KvstoreClient(url, { callTimeoutMs: 3000 });
  } catch (e) {
    io.error(`seawall ${kind} list: ${(e as Error).message}`);
    return 2;
  }
  try {
    const v = await readStore(c, o.cluster ?? 'default');
    io.write(formatStore(kind, v, o.output));
    for (const p of v.problems) io.error(`warning: ${p}`);
    return 0;
  } catch (e) {
    io.error(`seawall ${kind} list: kvstore ${url} unreachable: ${(e as Error).message}`);
    return 2;
  } finally {
    await c.close();
  }
}

export function registerKvstoreLists(program: Command): void {
  const kinds: Array<[StoreListKind, string]> = [
    ['node', 'the nodes in the kvstore (like `cilium node list`)'],
    [
      'identity',
      'cluster identities with their labels and the nodes referencing them (`cilium identity list`)',
    ],
    ['ipcache', 'IP → identity entries the nodes published (`cilium-dbg map get cilium_ipcache`)'],
  ];
  for (const [kind, what] of kinds) {
    program
      .command(kind)
      .description(`${kind} commands (kvstore mode)`)
      .command('list')
      .description(what)
      .option('--kvstore <url>', `etcd://HOST:PORT (default $${KVSTORE_ENV})`)
      .option('--cluster <name>', 'cluster name of the keys', 'default')
      .option('-o, --output <format>', 'human | json', 'human')
      .action(async (o: StoreListOptions) => {
        const code = await runStoreList(kind, o, {
          write: (s) => process.stdout.write(s),
          error: (s) => process.stderr.write(`${s}\n`),
        });
        if (code !== 0) process.exitCode = code;
      });
  }
}
