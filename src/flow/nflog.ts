// Kernel → agent events: the datapath's nftables rules log to NFLOG group 1 with the prefix
// `sw/<verdict>/<dir>/<endpointId>/`; Debian's ulogd2 reads the group and writes one JSON object
// per packet. This module is the pure part: the ulogd.conf, parsing a JSON line into a
// KernelEvent, and de-duplicating floods of identical drops. The process and file tailing live
// in ulogd.ts.
//
// Why ulogd2 rather than reading NFLOG ourselves: Node has no netlink sockets without a native
// addon (which would need a compiler at install time), while ulogd2 is the packaged NFLOG consumer
// with a JSON output plugin (Debian's ulogd2-json). NFLOG groups are per network namespace, so one
// ulogd runs per node namespace, started with `ip netns exec`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * fwd (allowed), deny (explicit deny rule), denied (default deny), redir (to an L7 proxy), spoof
 * (anti-spoofing: the endpoint sent from an address not its own; always `eg`, its own id), audit
 * (passed, but an audited policy or an endpoint in PolicyAuditMode would have dropped it).
 */
export type KernelVerdict = 'fwd' | 'deny' | 'denied' | 'redir' | 'spoof' | 'audit';
export type KernelDir = 'in' | 'eg';

export interface KernelEvent {
  /** Packet time from the kernel (oob.time.sec/usec). */
  time: { seconds: number; nanos: number };
  verdict: KernelVerdict;
  dir: KernelDir;
  /** Numeric endpoint id whose policy matched (ingress: destination, egress: source). */
  endpointId: number;
  srcIP: string;
  dstIP: string;
  /** IANA protocol number; -1 when `bare`. */
  proto: number;
  /**
   * The packet had no byte past its IP header: ulogd2 decodes none of it, so srcIP and dstIP are
   * '' and proto is -1. The prefix (who dropped it) and `mark` (the peer's identity in an
   * endpoint chain) still say whose it was.
   */
  bare?: true;
  /** Absent for TCP/UDP/SCTP too when the header was cut short (ulogd2 decodes no ports). */
  sport?: number;
  dport?: number;
  /** Absent for ICMP too when the header was cut short. */
  icmp?: { type: number; code: number };
  /** The packet mark when logged (nonzero only): endpoint chains hold the peer's identity in it. */
  mark?: number;
  tcpFlags?: { SYN?: true; ACK?: true; FIN?: true; RST?: true; PSH?: true; URG?: true };
  /** Netfilter hook (0 prerouting, 1 input, 2 forward, 3 output, 4 postrouting). */
  hook?: number;
  inDev?: string;
  outDev?: string;
}

export type ParseErrorCode =
  | 'malformed-json'
  | 'not-an-object'
  | 'foreign-prefix'
  | 'bad-prefix'
  | 'missing-field'
  | 'bad-field';

export type ParseResult =
  | { ok: true; event: KernelEvent }
  | { ok: false; code: ParseErrorCode; detail: string };

export const NFLOG_GROUP = 1;
const PREFIX_RE = /^sw\/(fwd|deny|denied|redir|spoof|audit)\/(in|eg)\/(\d{1,10})\/$/;

/** Parses `sw/<verdict>/<dir>/<endpointId>/`; undefined when it is not ours or malformed. */
export function parsePrefix(
  prefix: string,
): { verdict: KernelVerdict; dir: KernelDir; endpointId: number } | undefined {
  const m = PREFIX_RE.exec(prefix);
  if (m === null) return undefined;
  const endpointId = Number(m[3]);
  if (!Number.isSafeInteger(endpointId) || endpointId > 0xffffffff) return undefined;
  return { verdict: m[1] as KernelVerdict, dir: m[2] as KernelDir, endpointId };
}

/** Builds the prefix the datapath writes (kept here so both sides share one definition). */
export function formatPrefix(verdict: KernelVerdict, dir: KernelDir, endpointId: number): string {
  return `sw/${verdict}/${dir}/${endpointId}/`;
}

function num(o: Record<string, unknown>, k: string): number | undefined {
  const v = o[k];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}

const TCP_FLAG_KEYS = [
  ['tcp.syn', 'SYN'],
  ['tcp.ack', 'ACK'],
  ['tcp.fin', 'FIN'],
  ['tcp.rst', 'RST'],
  ['tcp.psh', 'PSH'],
  ['tcp.urg', 'URG'],
] as const;

/** One line of ulogd's JSON output → KernelEvent, or a typed reason to skip it. */
export function parseUlogdLine(line: string): ParseResult {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch (e) {
    return { ok: false, code: 'malformed-json', detail: (e as Error).message };
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    return { ok: false, code: 'not-an-object', detail: typeof o };
  }
  const r = o as Record<string, unknown>;
  const prefix = str(r, 'oob.prefix');
  if (prefix === undefined || !prefix.startsWith('sw/')) {
    return { ok: false, code: 'foreign-prefix', detail: String(prefix) };
  }
  const p = parsePrefix(prefix);
  if (p === undefined) return { ok: false, code: 'bad-prefix', detail: prefix };
  const srcIP = str(r, 'src_ip');
  const dstIP = str(r, 'dest_ip');
  const proto = num(r, 'ip.protocol') ?? num(r, 'ip6.nexthdr');
  const sec = num(r, 'oob.time.sec');
  const usec = num(r, 'oob.time.usec') ?? 0;
  const time =
    sec !== undefined ? { seconds: sec, nanos: usec * 1000 } : timeFromLocal(str(r, 'timestamp') ?? '');
  // ulogd2's BASE decodes an IPv4 packet only when something follows its header: a bare header
  // (20 to 60 bytes with options) comes without addresses and protocol, yet it is a packet of
  // ours and must be recorded
  const bare =
    srcIP === undefined &&
    dstIP === undefined &&
    proto === undefined &&
    num(r, 'oob.family') === 2 &&
    (num(r, 'raw.pktlen') ?? 0) >= 20 &&
    (num(r, 'raw.pktlen') ?? 0) <= 60; // a header with options is as bare
  if (!bare && (srcIP === undefined || dstIP === undefined || proto === undefined)) {
    return { ok: false, code: 'missing-field', detail: 'src_ip, dest_ip and ip.protocol are required' };
  }
  if (time === undefined) return { ok: false, code: 'missing-field', detail: 'no packet time' };

  const ev: KernelEvent = bare
    ? { time, ...p, srcIP: '', dstIP: '', proto: -1, bare: true }
    : { time, ...p, srcIP: srcIP!, dstIP: dstIP!, proto: proto! };
  const sport = num(r, 'src_port');
  const dport = num(r, 'dest_port');
  if (sport !== undefined) ev.sport = sport;
  if (dport !== undefined) ev.dport = dport;
  if (ev.proto === 6 && dport !== undefined) {
    const flags: NonNullable<KernelEvent['tcpFlags']> = {};
    for (const [k, name] of TCP_FLAG_KEYS) if (num(r, k) === 1) flags[name] = true;
    ev.tcpFlags = flags;
  }
  if (ev.proto === 1 || ev.proto === 58) {
    // a cut-short ICMP header has no type: still an event (the record has no l4)
    const type = num(r, ev.proto === 1 ? 'icmp.type' : 'icmpv6.type');
    const code = num(r, ev.proto === 1 ? 'icmp.code' : 'icmpv6.code');
    if (type !== undefined) ev.icmp = { type, code: code ?? 0 };
  }
  const mark = num(r, 'oob.mark');
  if (mark !== undefined && mark !== 0) ev.mark = mark;
  const hook = num(r, 'oob.hook');
  if (hook !== undefined) ev.hook = hook;
  const inDev = str(r, 'oob.in');
  const outDev = str(r, 'oob.out');
  if (inDev) ev.inDev = inDev;
  if (outDev) ev.outDev = outDev;
  return { ok: true, event: ev };
}

/** ulogd's own `timestamp` (no zone; ulogd writes the host's local time, UTC on our nodes). */
function timeFromLocal(s: string): { seconds: number; nanos: number } | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?$/.exec(s);
  if (m === null) return undefined;
  const ms = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(ms)) return undefined;
  return { seconds: ms / 1000, nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

export function isDrop(v: KernelVerdict): boolean {
  return v === 'deny' || v === 'denied' || v === 'spoof';
}

/** The identity of a drop for de-duplication: verdict, direction, endpoint and 5-tuple. */
export function dropKey(e: KernelEvent): string {
  const l4 = e.icmp !== undefined ? `icmp${e.icmp.type}/${e.icmp.code}` : `${e.sport ?? 0}>${e.dport ?? 0}`;
  // bare headers carry no addresses: the peer's identity (mark) keeps different peers apart
  const peer = e.bare ? `mark${e.mark ?? 0}` : `${e.srcIP}|${e.dstIP}`;
  return `${e.verdict}|${e.dir}|${e.endpointId}|${e.proto}|${peer}|${l4}`;
}

/**
 * Rate-limits identical drops: the datapath logs every dropped packet (retransmitted SYNs, floods),
 * but one record per 5-tuple per window is enough. Allows (`ct state new` only) always pass.
 * A window of 0 turns it off.
 */
export class DropDeduper {
  private readonly last = new Map<string, number>();
  suppressed = 0;
  constructor(
    private readonly windowMs = 1000,
    private readonly maxKeys = 65536,
  ) {}

  /** True when the event should become a record. `nowMs` is the packet time in ms. */
  admit(e: KernelEvent, nowMs = e.time.seconds * 1000 + e.time.nanos / 1e6): boolean {
    if (this.windowMs <= 0 || !isDrop(e.verdict)) return true;
    const k = dropKey(e);
    const prev = this.last.get(k);
    if (prev !== undefined && nowMs - prev >= 0 && nowMs - prev < this.windowMs) {
      this.suppressed++;
      return false;
    }
    if (this.last.size >= this.maxKeys) this.prune(nowMs);
    this.last.delete(k); // re-insert so Map order stays oldest-first
    this.last.set(k, nowMs);
    return true;
  }

  private prune(nowMs: number): void {
    for (const [k, t] of this.last) {
      if (nowMs - t < this.windowMs && this.last.size < this.maxKeys) break;
      this.last.delete(k);
    }
  }
}

/** Splits a byte stream into lines; partial tails wait for more, over-long lines are skipped. */
export class LineSplitter {
  private buf = '';
  private skipping = false;
  oversized = 0;
  constructor(private readonly maxLine = 64 * 1024) {}

  push(chunk: string): string[] {
    this.buf += chunk;
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = this.buf.indexOf('\n', start);
      if (nl < 0) break;
      const line = this.buf.slice(start, nl);
      start = nl + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (line.length > 0) out.push(line);
    }
    this.buf = this.buf.slice(start);
    if (this.buf.length > this.maxLine) {
      this.buf = '';
      if (!this.skipping) this.oversized++;
      this.skipping = true;
    }
    return out;
  }

  /** Drops a partial line (the file was truncated or replaced). */
  reset(): void {
    this.buf = '';
    this.skipping = false;
  }
}

const PLUGIN_DIRS = [
  '/usr/lib/x86_64-linux-gnu/ulogd',
  '/usr/lib/aarch64-linux-gnu/ulogd',
  '/usr/lib64/ulogd',
  '/usr/lib/ulogd',
];

/** Where ulogd's plugins are installed, if the JSON output plugin (ulogd2-json) is there. */
export function findUlogdPluginDir(dirs: readonly string[] = PLUGIN_DIRS): string | undefined {
  return dirs.find((d) => existsSync(join(d, 'ulogd_output_JSON.so')));
}

export interface UlogdConfigOptions {
  pluginDir: string;
  /** JSON lines go here (ulogd appends; SIGHUP makes it reopen after a rotation). */
  jsonFile: string;
  logFile: string;
  group?: number;
}

/**
 * ulogd.conf: NFLOG input on the group → BASE (packet header fields) → IP2STR (addresses as
 * text) → JSON output to a file. Large netlink buffers so a burst of drops is not lost to ENOBUFS.
 */
export function ulogdConfig(o: UlogdConfigOptions): string {
  const q = (s: string): string => {
    if (/["\n]/.test(s)) throw new Error(`ulogd config value must not contain quotes or newlines: ${s}`);
    return `"${s}"`;
  };
  const plugin = (name: string): string => `plugin=${q(join(o.pluginDir, name))}`;
  return [
    '# Generated by Seawall: NFLOG → JSON lines for the agent. Do not edit.',
    '[global]',
    `logfile=${q(o.logFile)}`,
    'loglevel=5',
    plugin('ulogd_inppkt_NFLOG.so'),
    plugin('ulogd_raw2packet_BASE.so'),
    plugin('ulogd_filter_IP2STR.so'),
    plugin('ulogd_output_JSON.so'),
    'stack=log1:NFLOG,base1:BASE,ip2str1:IP2STR,json1:JSON',
    '',
    '[log1]',
    `group=${o.group ?? NFLOG_GROUP}`,
    'netlink_socket_buffer_size=1048576',
    'netlink_socket_buffer_maxsize=8388608',
    // The kernel batches NFLOG messages (default: 100 packets or 1 s). Flush every 32 packets or
    // 20 ms, so a record follows its packet closely while a flood is still batched.
    'netlink_qthreshold=32',
    'netlink_qtimeout=2',
    '',
    '[json1]',
    'sync=1',
    `file=${q(o.jsonFile)}`,
    '',
  ].join('\n');
}
