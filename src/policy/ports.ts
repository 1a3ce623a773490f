// Port and ICMP parsing for rules (§8): Go base-0 port numbers, IANA names, endPort rules,
// protocol names to IANA numbers (0 = TCP+UDP+SCTP).

import type { ICMPField, PortProtocol } from '../policy-api/types.ts';
import { PROTO } from './types.ts';

export interface PortSpec {
  /** 0 = TCP, UDP and SCTP. */
  proto: number;
  lo: number;
  hi: number;
  /** A named port, resolved per destination pod. lo/hi are meaningless until resolved. */
  named?: string;
}

/** L3-only: every port of every protocol, ICMP included. */
export const ALL_PORTS: readonly PortSpec[] = [
  { proto: PROTO.ANY, lo: 0, hi: 65535 },
  { proto: PROTO.ICMP, lo: 0, hi: 255 },
  { proto: PROTO.ICMPV6, lo: 0, hi: 255 },
];

export function protoNumber(p: string | undefined): number | undefined {
  switch (p ?? 'ANY') {
    case 'ANY':
      return PROTO.ANY;
    case 'TCP':
      return PROTO.TCP;
    case 'UDP':
      return PROTO.UDP;
    case 'SCTP':
      return PROTO.SCTP;
    default:
      return undefined; // extended IP protocols: not modelled
  }
}

export function protoName(n: number): string {
  switch (n) {
    case PROTO.ANY:
      return 'ANY';
    case PROTO.TCP:
      return 'TCP';
    case PROTO.UDP:
      return 'UDP';
    case PROTO.SCTP:
      return 'SCTP';
    case PROTO.ICMP:
      return 'ICMP';
    case PROTO.ICMPV6:
      return 'ICMPv6';
    default:
      return String(n);
  }
}

/** Go strconv.ParseUint(s, 0, 16): 0x hex, 0o/leading-0 octal, 0b binary, else decimal. */
export function parsePortNumber(s: string): number | undefined {
  let n: number;
  const hex = /^0[xX]([0-9a-fA-F]+)$/.exec(s);
  const bin = /^0[bB]([01]+)$/.exec(s);
  const oct = /^0[oO]?([0-7]+)$/.exec(s);
  if (hex) n = Number.parseInt(hex[1]!, 16);
  else if (bin) n = Number.parseInt(bin[1]!, 2);
  else if (oct) n = Number.parseInt(oct[1]!, 8);
  else if (/^[0-9]+$/.test(s)) n = Number.parseInt(s, 10);
  else return undefined;
  return n <= 65535 ? n : undefined;
}

/** One CNP PortProtocol → port spec (undefined: unusable, e.g. extended protocol). */
export function portSpecOf(pp: Pick<PortProtocol, 'port' | 'endPort' | 'protocol'>): PortSpec | undefined {
  const proto = protoNumber(pp.protocol);
  if (proto === undefined) return undefined;
  return rangeOf(proto, pp.port, pp.endPort);
}

export function rangeOf(
  proto: number,
  port: string | number | undefined,
  endPort: number | undefined,
): PortSpec | undefined {
  if (port === undefined || port === '') return { proto, lo: 0, hi: 65535 };
  const s = String(port);
  const n = typeof port === 'number' ? port : parsePortNumber(s);
  if (n === undefined) {
    if (!/^[a-zA-Z0-9-]+$/.test(s) || !/[a-zA-Z]/.test(s)) return undefined;
    return { proto, lo: 0, hi: 0, named: s.toLowerCase() };
  }
  if (n === 0) return { proto, lo: 0, hi: 65535 };
  const hi = endPort !== undefined && endPort > n && endPort <= 65535 ? endPort : n;
  return { proto, lo: n, hi };
}

const ICMP4: Record<string, number> = {
  EchoReply: 0,
  DestinationUnreachable: 3,
  Redirect: 5,
  Echo: 8,
  EchoRequest: 8,
  RouterAdvertisement: 9,
  RouterSelection: 10,
  RouterSolicitation: 10,
  TimeExceeded: 11,
  ParameterProblem: 12,
  Timestamp: 13,
  TimestampReply: 14,
  Photuris: 40,
  ExtendedEchoRequest: 42,
  ExtendedEchoReply: 43,
};

const ICMP6: Record<string, number> = {
  DestinationUnreachable: 1,
  PacketTooBig: 2,
  TimeExceeded: 3,
  ParameterProblem: 4,
  EchoRequest: 128,
  EchoReply: 129,
  MulticastListenerQuery: 130,
  MulticastListenerReport: 131,
  MulticastListenerDone: 132,
  RouterSolicitation: 133,
  RouterAdvertisement: 134,
  NeighborSolicitation: 135,
  NeighborAdvertisement: 136,
  RedirectMessage: 137,
  RouterRenumbering: 138,
  ICMPNodeInformationQuery: 139,
  ICMPNodeInformationResponse: 140,
  InverseNeighborDiscoverySolicitation: 141,
  InverseNeighborDiscoveryAdvertisement: 142,
  HomeAgentAddressDiscoveryRequest: 144,
  HomeAgentAddressDiscoveryReply: 145,
  MobilePrefixSolicitation: 146,
  MobilePrefixAdvertisement: 147,
  DuplicateAddressRequestCodeSuffix: 157,
  DuplicateAddressConfirmationCodeSuffix: 158,
  ExtendedEchoRequest: 160,
  ExtendedEchoReply: 161,
};

/** An icmps field → (proto, type) spec; the ICMP type sits in the port slot, as in Cilium. */
export function icmpSpecOf(f: Pick<ICMPField, 'family' | 'type'>): PortSpec | undefined {
  const v6 = f.family === 'IPv6';
  const proto = v6 ? PROTO.ICMPV6 : PROTO.ICMP;
  let t: number | undefined;
  if (typeof f.type === 'number') t = f.type;
  else if (/^\d+$/.test(f.type)) t = Number(f.type);
  else t = (v6 ? ICMP6 : ICMP4)[f.type];
  if (t === undefined || t < 0 || t > 255) return undefined;
  return { proto, lo: t, hi: t };
}

export function formatPortSpec(p: PortSpec): string {
  if (p.proto === PROTO.ICMP || p.proto === PROTO.ICMPV6) {
    return p.lo === 0 && p.hi === 255 ? protoName(p.proto) : `${protoName(p.proto)} type ${p.lo}`;
  }
  const port =
    p.named ?? (p.lo === 0 && p.hi === 65535 ? '*' : p.lo === p.hi ? String(p.lo) : `${p.lo}-${p.hi}`);
  return `${port}/${protoName(p.proto)}`;
}
