// Canonical text of an IP address, so one address is one cache key however a resolver wrote it.
// IPv4 dotted quad; IPv6 in RFC 5952 form (lower-case, longest zero run compressed, mapped IPv4
// kept as ::ffff:a.b.c.d). Anything else is not an address (undefined).

import { isIPv4, isIPv6 } from 'node:net';

export function canonicalIP(ip: string): string | undefined {
  if (typeof ip !== 'string' || ip.length > 64) return undefined;
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip) || ip.includes('%')) return undefined; // zones are not DNS answers
  const groups = expandIPv6(ip.toLowerCase());
  if (groups === undefined) return undefined;
  if (
    groups[0] === 0 &&
    groups[1] === 0 &&
    groups[2] === 0 &&
    groups[3] === 0 &&
    groups[4] === 0 &&
    groups[5] === 0xffff
  ) {
    const a = groups[6]!;
    const b = groups[7]!;
    return `::ffff:${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
  }
  // Longest run of ≥2 zero groups (first one on ties) becomes "::".
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

function expandIPv6(s: string): number[] | undefined {
  let tail4: number[] = [];
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!isIPv4(last)) return undefined;
    const o = last.split('.').map(Number);
    tail4 = [(o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!];
    text = `${text.slice(0, lastColon + 1)}0`; // placeholder group, dropped below
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (h: string) => (h === '' ? [] : h.split(':').map((g) => Number.parseInt(g, 16)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (tail4.length > 0) (halves.length === 2 ? rest : head).pop();
  const fill = 8 - tail4.length - head.length - rest.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined;
  const out = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...rest, ...tail4];
  return out.length === 8 && out.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? out : undefined;
}
