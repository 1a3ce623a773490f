// The original destination of a redirected connection.
//
// Choice: nftables REDIRECT/DNAT to one proxy port in the node namespace, and the destination read
// back with getsockopt(SO_ORIGINAL_DST) (conntrack's original tuple) through a small N-API addon
// (src/proxy/native/origdst.c, built by scripts/build-addon.sh with node-gyp against the installed
// Node headers). Why not the alternatives:
//  - a listener per redirect entry needs one port per (endpoint, port, direction) and re-binding
//    on every policy change, and still cannot tell two destinations behind one entry apart;
//  - TPROXY needs IP_TRANSPARENT on the listening socket, which Node cannot set either;
//  - guessing from the Host header trusts the client: never.
// Without the addon nothing is guessed: `loadOriginalDst` says why, and the proxy refuses every
// redirected connection (fail closed).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { SeawallError } from '../core/errors.ts';
import type { ConnectionInfo, HostPort } from './http/context.ts';

export type OriginalDstResolver = (socket: Socket) => HostPort;

export class OriginalDstError extends SeawallError<'original-dst'> {
  override name = 'OriginalDstError';
  constructor(message: string, cause?: unknown) {
    super('original-dst', message, cause === undefined ? {} : { cause });
  }
}

interface Addon {
  originalDst(fd: number, family: number): HostPort;
}

export const ADDON_PATH = new URL('./native/build/Release/seawall_origdst.node', import.meta.url).pathname;

export type AddonLoad = { ok: true; resolve: OriginalDstResolver } | { ok: false; reason: string };

let loaded: AddonLoad | undefined;

/** The addon's resolver, or why it is not available (not Linux, not built, does not load). */
export function loadOriginalDst(path = ADDON_PATH): AddonLoad {
  if (path === ADDON_PATH && loaded !== undefined) return loaded;
  const r = load(path);
  if (path === ADDON_PATH) loaded = r;
  return r;
}

function load(path: string): AddonLoad {
  if (process.platform !== 'linux') return { ok: false, reason: 'SO_ORIGINAL_DST is Linux only' };
  if (!existsSync(path)) {
    return {
      ok: false,
      reason: `the SO_ORIGINAL_DST addon is not built (${path}); run scripts/build-addon.sh`,
    };
  }
  let addon: Addon;
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    return { ok: false, reason: `the SO_ORIGINAL_DST addon does not load: ${(e as Error).message}` };
  }
  if (typeof addon.originalDst !== 'function') return { ok: false, reason: `${path} has no originalDst` };
  return { ok: true, resolve: (s) => fromAddon(addon, s) };
}

/** The accepted socket's file descriptor (libuv's TCP handle exposes it on Linux). */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new OriginalDstError('the socket has no file descriptor');
  return fd;
}

function fromAddon(addon: Addon, socket: Socket): HostPort {
  // An IPv4 client on a dual-stack listener is still IPv4 to conntrack.
  const v4mapped = socket.remoteAddress?.startsWith('::ffff:') === true;
  const family = socket.remoteFamily === 'IPv6' && !v4mapped ? 6 : 4;
  try {
    return addon.originalDst(fdOf(socket), family);
  } catch (e) {
    if (e instanceof OriginalDstError) throw e;
    // ENOENT: conntrack has no entry, so the connection was not redirected to us by NAT.
    throw new OriginalDstError(`no original destination: ${(e as Error).message}`, e);
  }
}

/** For tests and for listeners that are not behind a redirect: a fixed destination. */
export function fixedOriginalDst(dst: HostPort): OriginalDstResolver {
  return () => ({ ...dst });
}

/**
 * How a TCP proxy takes a connection nat_pre sent it: its original destination is recovered, or
 * the connection is refused with the reason (no resolver, the lookup failed, or the client dialled
 * the proxy itself, which forwarding would loop on). Shared by every TCP parser's proxy.
 */
export class RedirectedConnections {
  readonly resolve: OriginalDstResolver | undefined;
  /** Why there is no resolver (the addon is missing); every connection is then refused. */
  readonly unavailable: string | undefined;

  constructor(given?: OriginalDstResolver, addonPath?: string) {
    if (given !== undefined) {
      this.resolve = given;
      return;
    }
    const a = loadOriginalDst(addonPath);
    if (a.ok) this.resolve = a.resolve;
    else this.unavailable = a.reason;
  }

  accept(sock: Socket): { info: ConnectionInfo } | { refused: string; conn: Partial<ConnectionInfo> } {
    const remote = hostPortOf(sock.remoteAddress, sock.remotePort);
    const local = hostPortOf(sock.localAddress, sock.localPort);
    if (this.resolve === undefined) {
      return { refused: `no original destination: ${this.unavailable}`, conn: { remote, local } };
    }
    let originalDst: HostPort;
    try {
      originalDst = this.resolve(sock);
    } catch (e) {
      return { refused: (e as Error).message, conn: { remote, local } };
    }
    if (originalDst.port === local.port && originalDst.address === local.address) {
      // conntrack saw no NAT: the client dialled the proxy itself; forwarding would loop
      return {
        refused: 'the connection was not redirected (its original destination is the proxy)',
        conn: { remote, local, originalDst },
      };
    }
    return { info: { remote, local, originalDst } };
  }
}

/** A socket's address and port, IPv4-mapped addresses as plain IPv4 (what the ipcache holds). */
export function hostPortOf(addr: string | undefined, port: number | undefined): HostPort {
  return { address: (addr ?? '').replace(/^::ffff:/, ''), port: port ?? 0 };
}
