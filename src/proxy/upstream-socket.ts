// The proxies' upstream sockets: opened from the client's own address (the pod's), as Cilium's
// proxies do (Envoy's original source; the DNS proxy's transparent mode), so that the server's
// node judges the connection by the pod's identity, not by the node's (`remote-node`, `host`).
//
// How: the addon (native/transparent.c) makes a TCP or UDP socket with IP_TRANSPARENT bound to
// (client address, 0); Node wraps the fd (`new net.Socket({ fd })` then connect(), `dgram`
// bind({ fd }) then connect()). IP_TRANSPARENT needs CAP_NET_RAW: the proxy process keeps that one
// capability on its JS thread when it drops to PROXY_UID (keepTransparentCapability). The replies
// come back to the socket through the node namespace's proxy return path (datapath/topology.ts:
// ct mark from `meta skuid`, fwmark rule, `local` route).
//
// Mode 'node' (the default, for proxies run outside a node namespace: unit tests) connects from
// the process's own address. A proxy process of the datapath switches to 'transparent' at start
// (useTransparentUpstream); from then on a socket that cannot be made transparent is an error for
// that request (the HTTP proxy answers 503, Kafka and DNS drop the connection or query), never a
// connection from the node's address: the destination's ingress policy could allow `host` or
// `remote-node` where it denies the pod, so falling back would open what policy denies.

import dgram from 'node:dgram';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import type { HostPort } from './http/context.ts';
import { ADDON_PATH } from './origdst.ts';

interface TransparentAddon {
  transparentSocket(address: string, family: number, udp?: boolean): number;
  keepTransparentCapability(): void;
  limitToTransparentCapability(): void;
}

export type UpstreamSourceMode = 'node' | 'transparent';

let mode: UpstreamSourceMode = 'node';
let addon: TransparentAddon | undefined;
/** Why the addon cannot make transparent sockets (then every transparent upstream fails). */
let unavailable: string | undefined;

function loadAddon(path: string): TransparentAddon | string {
  if (process.platform !== 'linux') return 'IP_TRANSPARENT is Linux only';
  if (!existsSync(path)) return `the proxy addon is not built (${path}); run scripts/build-addon.sh`;
  try {
    const a = createRequire(import.meta.url)(path) as Partial<TransparentAddon>;
    if (typeof a.transparentSocket !== 'function') return `${path} has no transparentSocket (rebuild it)`;
    return a as TransparentAddon;
  } catch (e) {
    return `the proxy addon does not load: ${(e as Error).message}`;
  }
}

/**
 * From now on every upstream socket leaves from its client's address. Returns why that cannot
 * work (addon missing), or undefined; either way the mode is set: no silent fallback.
 */
export function useTransparentUpstream(path = ADDON_PATH): string | undefined {
  mode = 'transparent';
  const a = loadAddon(path);
  if (typeof a === 'string') {
    addon = undefined;
    unavailable = a;
  } else {
    addon = a;
    unavailable = undefined;
  }
  return unavailable;
}

/** Back to plain sockets (tests only). */
export function useNodeUpstream(): void {
  mode = 'node';
}

export function upstreamMode(): UpstreamSourceMode {
  return mode;
}

/**
 * Before dropping root: the JS thread keeps CAP_NET_RAW across setuid (transparent mode only).
 * Returns the function to call after setuid, which leaves CAP_NET_RAW alone in the thread's
 * permitted and effective sets (every other thread has none).
 */
export function keepTransparentCapability(): () => void {
  if (mode !== 'transparent' || addon === undefined || process.getuid?.() !== 0) return () => {};
  const a = addon;
  a.keepTransparentCapability();
  return () => a.limitToTransparentCapability();
}

export class UpstreamSourceError extends Error {
  readonly code = 'EUPSTREAM_SOURCE';
}

function transparentFd(source: string, udp: boolean): number {
  if (addon === undefined) throw new UpstreamSourceError(`no transparent upstream: ${unavailable}`);
  const family = net.isIPv6(source) ? 6 : 4;
  try {
    return addon.transparentSocket(source, family, udp);
  } catch (e) {
    throw new UpstreamSourceError(`no transparent upstream from ${source}: ${(e as Error).message}`);
  }
}

/** The client address as the kernel wants it (IPv4-mapped IPv6 as plain IPv4). */
function plain(source: string): string {
  return source.startsWith('::ffff:') ? source.slice(7) : source;
}

/**
 * A TCP connection to `dst` from `source` (the client's address) in transparent mode, from the
 * node otherwise. Errors (the transparent socket too) come as the socket's 'error' event, after
 * the caller attached its handlers. `onread`: as net.connect's (bytes into the caller's buffer, no
 * 'data' events).
 */
export function connectUpstream(dst: HostPort, source: string, onread?: net.OnReadOpts): net.Socket {
  if (mode === 'node')
    return net.connect({ host: dst.address, port: dst.port, noDelay: true, ...(onread ? { onread } : {}) });
  let fd: number;
  try {
    fd = transparentFd(plain(source), false);
  } catch (e) {
    const s = new net.Socket();
    process.nextTick(() => s.destroy(e as Error));
    return s;
  }
  // `onread` is a constructor option too (Node's Socket reads it there; @types lists it on connect)
  const opts = { fd, readable: true, writable: true, ...(onread ? { onread } : {}) };
  const s = new net.Socket(opts as net.SocketConstructorOpts);
  s.setNoDelay(true);
  s.connect({ host: dst.address, port: dst.port });
  return s;
}

/**
 * A UDP socket connected to `server` from `source` in transparent mode (from the node otherwise).
 * `onConnected` runs once it is connected; errors come as the socket's 'error' event.
 */
export function udpUpstream(
  server: { ip: string; port: number },
  source: string,
  onConnected: () => void,
): dgram.Socket {
  const sock = dgram.createSocket(net.isIPv6(server.ip) ? 'udp6' : 'udp4');
  if (mode === 'node') {
    sock.connect(server.port, server.ip, onConnected);
    return sock;
  }
  let fd: number;
  try {
    fd = transparentFd(plain(source), true);
  } catch (e) {
    process.nextTick(() => sock.emit('error', e));
    return sock;
  }
  sock.bind({ fd }, () => sock.connect(server.port, server.ip, onConnected));
  return sock;
}
