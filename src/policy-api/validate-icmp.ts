// ICMP types of `icmps` fields: numbers 0-255 or the CamelCase names Cilium knows per family.

import { closest } from './cursor.ts';
import type { ICMPRule } from './types.ts';
import type { Reporter } from './validate-report.ts';

export const ICMPV4_TYPES: ReadonlyMap<string, number> = new Map([
  ['EchoReply', 0],
  ['DestinationUnreachable', 3],
  ['Redirect', 5],
  ['Echo', 8],
  ['EchoRequest', 8],
  ['RouterAdvertisement', 9],
  ['RouterSelection', 10],
  ['TimeExceeded', 11],
  ['ParameterProblem', 12],
  ['Timestamp', 13],
  ['TimestampReply', 14],
  ['Photuris', 40],
  ['ExtendedEchoRequest', 42],
  ['ExtendedEchoReply', 43],
]);

export const ICMPV6_TYPES: ReadonlyMap<string, number> = new Map([
  ['DestinationUnreachable', 1],
  ['PacketTooBig', 2],
  ['TimeExceeded', 3],
  ['ParameterProblem', 4],
  ['EchoRequest', 128],
  ['EchoReply', 129],
  ['MulticastListenerQuery', 130],
  ['MulticastListenerReport', 131],
  ['MulticastListenerDone', 132],
  ['RouterSolicitation', 133],
  ['RouterAdvertisement', 134],
  ['NeighborSolicitation', 135],
  ['NeighborAdvertisement', 136],
  ['RedirectMessage', 137],
  ['RouterRenumbering', 138],
  ['ICMPNodeInformationQuery', 139],
  ['ICMPNodeInformationResponse', 140],
  ['InverseNeighborDiscoverySolicitation', 141],
  ['InverseNeighborDiscoveryAdvertisement', 142],
  ['HomeAgentAddressDiscoveryRequest', 144],
  ['HomeAgentAddressDiscoveryReply', 145],
  ['MobilePrefixSolicitation', 146],
  ['MobilePrefixAdvertisement', 147],
  ['DuplicateAddressRequestCodeSuffix', 157],
  ['DuplicateAddressConfirmationCodeSuffix', 158],
  ['ExtendedEchoRequest', 160],
  ['ExtendedEchoReply', 161],
]);

const MAX_FIELDS = 40;

/** The numeric type of an ICMP field, or undefined when the name is unknown for its family. */
export function icmpTypeNumber(type: number | string, family: 'IPv4' | 'IPv6' = 'IPv4'): number | undefined {
  if (typeof type === 'number') return Number.isInteger(type) && type >= 0 && type <= 255 ? type : undefined;
  if (/^[0-9]{1,3}$/.test(type)) {
    const n = Number(type);
    return n <= 255 ? n : undefined;
  }
  return (family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES).get(type);
}

export function validateICMP(rule: ICMPRule, r: Reporter): void {
  if (rule.fields.length > MAX_FIELDS) {
    r.error(
      'too-many-icmp-fields',
      `too many ICMP fields (${rule.fields.length}), the max is ${MAX_FIELDS}`,
      rule,
      'fields',
    );
  }
  for (const f of rule.fields) {
    const family = f.family ?? 'IPv4';
    if (icmpTypeNumber(f.type, family) !== undefined) continue;
    let msg: string;
    if (typeof f.type === 'number' || /^[0-9]+$/.test(f.type)) {
      msg = `ICMP type ${f.type} is out of range; use 0-255`;
    } else {
      const other = family === 'IPv6' ? ICMPV4_TYPES : ICMPV6_TYPES;
      const names = [...(family === 'IPv6' ? ICMPV6_TYPES : ICMPV4_TYPES).keys()];
      if (other.has(f.type)) {
        msg = `ICMP type ${f.type} is an ${family === 'IPv6' ? 'IPv4' : 'IPv6'} type name; set \`family: ${family === 'IPv6' ? 'IPv4' : 'IPv6'}\` or use an ${family} name (${names.join(', ')})`;
      } else {
        const guess = closest(f.type, names);
        msg = `unknown ${family} ICMP type ${JSON.stringify(f.type)}${guess ? `; did you mean ${guess}?` : ''} (use a number 0-255 or one of ${names.join(', ')})`;
      }
    }
    r.error('invalid-icmp-type', msg, f, 'type');
  }
}
