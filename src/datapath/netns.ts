// Network-namespace primitives. Every command names the namespace it acts in (`ip -n NS`,
// `ip netns exec NS`), so nothing here can change the machine's own addresses, routes or rules.

import { existsSync } from 'node:fs';
import { must, run } from './exec.ts';

/** Prefixes of every namespace Seawall creates; `--cleanup` only ever removes these. */
export const NS_PREFIXES = ['sw-', 'seawall-'] as const;

/** A name with our prefix and nothing that could act as a path (run dirs are named after nodes). */
export function ownedName(name: string): boolean {
  return (
    NS_PREFIXES.some((p) => name.startsWith(p)) && /^[A-Za-z0-9_.-]+$/.test(name) && !name.includes('..')
  );
}

export async function listNetns(): Promise<string[]> {
  const out = await must('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export async function addNetns(name: string): Promise<void> {
  if (!ownedName(name)) throw new Error(`refusing to create namespace ${name}: not a Seawall name`);
  if (netnsExists(name)) await delNetns(name);
  await must('ip', ['netns', 'add', name], undefined, 'netns-add-failed');
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
}

export async function delNetns(name: string): Promise<void> {
  if (!ownedName(name)) throw new Error(`refusing to delete namespace ${name}: not a Seawall name`);
  await run('ip', ['netns', 'del', name]);
}

/** Processes running inside a namespace (`ip netns pids`); none when it is gone. */
export async function netnsPids(name: string): Promise<number[]> {
  const r = await run('ip', ['netns', 'pids', name]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isSafeInteger(n) && n > 1);
}

export async function sysctl(ns: string, key: string, value: string): Promise<void> {
  await must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

/** `ip -n NS -batch -`: many commands in one process (hundreds of endpoints). */
export async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await must('ip', ['-n', ns, '-batch', '-'], lines.join('\n') + '\n', 'ip-batch-failed');
}
