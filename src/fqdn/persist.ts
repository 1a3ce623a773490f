// The DNS cache on disk, so an agent restart does not cut FQDN egress (Cilium persists each
// endpoint's DNS history in its header file and restores it at start). One JSON file per node,
// written atomically (temporary file, fsync, rename): a crash leaves the old file or the new one.
// Reading validates every field and says where the file is wrong.

import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { SeawallError } from '../core/errors.ts';
import type { CacheSnapshot, DNSCache, Zombie } from './cache.ts';
import { canonicalIP } from './ip.ts';
import { checkMatchName } from './name.ts';

/** The file name inside a node's run directory (`/run/seawall/<node>/` for the agent). */
export const CACHE_FILE_NAME = 'fqdn-cache.json';

/** Largest cache file read (a full cache of 10k names × 50 IPs is well below). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export class CacheFileError extends SeawallError<'fqdn-cache-file'> {
  override name = 'CacheFileError';
  constructor(
    readonly file: string,
    message: string,
    opts: { cause?: unknown } = {},
  ) {
    super('fqdn-cache-file', `${file}: ${message}`, opts);
  }
}

/** Writes the cache's snapshot to `file` atomically. */
export function saveCacheFile(file: string, cache: DNSCache, nowMs: number): CacheSnapshot {
  const snap = cache.snapshot(nowMs);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(snap)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return snap;
}

/** Reads and validates a cache file (throws CacheFileError saying where it is wrong). */
export function readCacheFile(file: string): CacheSnapshot {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_FILE_BYTES) throw new CacheFileError(file, `larger than ${MAX_FILE_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof CacheFileError) throw e;
    throw new CacheFileError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new CacheFileError(file, `not JSON: ${(e as Error).message}`, { cause: e });
  }
  return parseSnapshot(data, file);
}

/** Restores a cache file into `cache`; a missing file is an empty cache (first start). */
export function loadCacheFile(
  file: string,
  cache: DNSCache,
  nowMs: number,
): { restored: number; expired: number; missing: boolean } {
  let snap: CacheSnapshot;
  try {
    snap = readCacheFile(file);
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    if (cause?.code === 'ENOENT') return { restored: 0, expired: 0, missing: true };
    throw e;
  }
  return { ...cache.restore(snap, nowMs), missing: false };
}

/** Validates decoded JSON as a CacheSnapshot; `where` names the file in errors. */
export function parseSnapshot(data: unknown, where: string): CacheSnapshot {
  const fail = (path: string, why: string): never => {
    throw new CacheFileError(where, `${path}: ${why}`);
  };
  if (!isObject(data)) return fail('$', 'not an object');
  if (data.version !== 1)
    return fail('$.version', `unsupported version ${JSON.stringify(data.version)} (want 1)`);
  const savedAt = time(data.savedAt, '$.savedAt', fail);
  if (!Array.isArray(data.entries)) return fail('$.entries', 'not a list');
  if (!Array.isArray(data.zombies)) return fail('$.zombies', 'not a list');
  const entries: CacheSnapshot['entries'] = data.entries.map((e: unknown, i: number) => {
    const at = `$.entries[${i}]`;
    if (!isObject(e)) return fail(at, 'not an object');
    return {
      name: dnsName(e.name, `${at}.name`, fail),
      ip: ipOf(e.ip, `${at}.ip`, fail),
      expiresAt: time(e.expiresAt, `${at}.expiresAt`, fail),
      endpoints: strings(e.endpoints, `${at}.endpoints`, fail),
    };
  });
  const zombies: Zombie[] = data.zombies.map((z: unknown, i: number) => {
    const at = `$.zombies[${i}]`;
    if (!isObject(z)) return fail(at, 'not an object');
    if (!Array.isArray(z.names)) return fail(`${at}.names`, 'not a list');
    return {
      ip: ipOf(z.ip, `${at}.ip`, fail),
      names: z.names.map((n: unknown, j: number) => dnsName(n, `${at}.names[${j}]`, fail)),
      endpoints: strings(z.endpoints, `${at}.endpoints`, fail),
      expiredAt: time(z.expiredAt, `${at}.expiredAt`, fail),
    };
  });
  return { version: 1, savedAt, entries, zombies };
}

type Fail = (path: string, why: string) => never;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function time(x: unknown, path: string, fail: Fail): number {
  if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
    return fail(path, 'not a time (ms since the epoch)');
  return x;
}

function ipOf(x: unknown, path: string, fail: Fail): string {
  const ip = typeof x === 'string' ? canonicalIP(x) : undefined;
  return ip ?? fail(path, `${JSON.stringify(x)} is not an IP address`);
}

function dnsName(x: unknown, path: string, fail: Fail): string {
  if (typeof x !== 'string') return fail(path, 'not a string');
  // A cached name is a name a DNS rule admitted; the matchName rule is the one name-validity rule.
  if (checkMatchName(x) !== undefined) return fail(path, `${JSON.stringify(x)} is not a DNS name`);
  return x;
}

function strings(x: unknown, path: string, fail: Fail): string[] {
  if (!Array.isArray(x)) return fail(path, 'not a list');
  return x.map((s, i) =>
    typeof s === 'string' && s.length > 0 ? s : fail(`${path}[${i}]`, 'not a non-empty string'),
  );
}
