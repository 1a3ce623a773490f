// IPv4 prefixes for CIDR identities and CIDR selectors. Addresses are unsigned 32-bit numbers.

export interface Prefix {
  addr: number;
  len: number;
}

export function parseIPv4(s: string): number | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function maskOf(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** `a.b.c.d/len` or a bare address (/32). Host bits are cleared. */
export function parsePrefix(s: string): Prefix | undefined {
  const slash = s.indexOf('/');
  const addr = parseIPv4(slash < 0 ? s : s.slice(0, slash));
  if (addr === undefined) return undefined;
  let len = 32;
  if (slash >= 0) {
    const l = s.slice(slash + 1);
    if (!/^\d{1,2}$/.test(l)) return undefined;
    len = Number(l);
    if (len > 32) return undefined;
  }
  return { addr: (addr & maskOf(len)) >>> 0, len };
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatIPv4(p.addr)}/${p.len}`;
}

/** `inner` lies within `outer` (equal counts). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (inner.len < outer.len) return false;
  return (inner.addr & maskOf(outer.len)) >>> 0 === outer.addr;
}

/** Every prefix covering p, from /0 to p itself (Cilium gives a CIDR identity all of them as labels). */
export function coveringPrefixes(p: Prefix): Prefix[] {
  const out: Prefix[] = [];
  for (let len = 0; len <= p.len; len++) out.push({ addr: (p.addr & maskOf(len)) >>> 0, len });
  return out;
}
