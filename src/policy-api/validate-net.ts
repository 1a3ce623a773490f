// Parsers with the exact acceptance rules Cilium and Kubernetes apply: CIDR prefixes (Go's
// netip.ParsePrefix), ports (Go's strconv.ParseUint with base 0, IANA service names) and label
// values. Each returns a value or a reason; none throws.

export interface Prefix {
  family: 4 | 6;
  /** 4 or 16 bytes. */
  addr: Uint8Array;
  bits: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function fail<T>(reason: string): Parsed<T> {
  return { ok: false, reason };
}

/** Strict dotted-quad IPv4 (no leading zeros, as Go's netip). */
export function parseIPv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p[0] === '0')) return undefined;
    let n = 0;
    for (const ch of p) {
      const d = ch.charCodeAt(0) - 48;
      if (d < 0 || d > 9) return undefined;
      n = n * 10 + d;
    }
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** IPv6 text form (with `::` and an optional trailing dotted IPv4); zones are refused. */
export function parseIPv6(s: string): Uint8Array | undefined {
  if (s.includes('%') || s.length > 45) return undefined;
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  let words: number[];
  if (dbl >= 0) {
    const head = parseGroups(s.slice(0, dbl));
    const tail = parseGroups(s.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(s);
    if (all?.length !== 8) return undefined;
    words = all;
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

export function parseIP(s: string): { family: 4 | 6; addr: Uint8Array } | undefined {
  if (s.includes(':')) {
    const a = parseIPv6(s);
    return a ? { family: 6, addr: a } : undefined;
  }
  const a = parseIPv4(s);
  return a ? { family: 4, addr: a } : undefined;
}

/** A prefix in `addr/bits` notation. `bareIP` tells whether a plain address was given instead. */
export function parsePrefix(s: string): Parsed<Prefix> & { bareIP?: boolean } {
  if (s === '') return fail('empty CIDR');
  const slash = s.indexOf('/');
  if (slash < 0) {
    const ip = parseIP(s);
    if (ip) return { ok: false, reason: `${s} is an address, not a prefix`, bareIP: true };
    return fail(`cannot parse ${JSON.stringify(s)} as a CIDR prefix`);
  }
  const ip = parseIP(s.slice(0, slash));
  if (!ip) return fail(`cannot parse the address of ${JSON.stringify(s)}`);
  const bitsStr = s.slice(slash + 1);
  if (bitsStr.includes('.')) {
    const mask = parseIPv4(bitsStr);
    if (mask && !isContiguous(mask)) {
      return fail(`${bitsStr} is a non-contiguous netmask; CIDR rules need a prefix length such as /24`);
    }
    return fail(`netmask notation is not accepted; write a prefix length (e.g. /24) instead of /${bitsStr}`);
  }
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsStr)) return fail(`bad prefix length ${JSON.stringify(bitsStr)}`);
  const bits = Number(bitsStr);
  const max = ip.family === 4 ? 32 : 128;
  if (bits > max) return fail(`prefix length /${bits} is longer than ${max} bits`);
  return { ok: true, value: { family: ip.family, addr: ip.addr, bits } };
}

function isContiguous(mask: Uint8Array): boolean {
  let seenZero = false;
  for (const b of mask) {
    for (let i = 7; i >= 0; i--) {
      const one = ((b >> i) & 1) === 1;
      if (one && seenZero) return false;
      if (!one) seenZero = true;
    }
  }
  return true;
}

/** True when `inner` lies within `outer` (same family, at least as long, same leading bits). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || inner.bits < outer.bits) return false;
  const full = outer.bits >> 3;
  for (let i = 0; i < full; i++) if (outer.addr[i] !== inner.addr[i]) return false;
  const rest = outer.bits & 7;
  if (rest === 0) return true;
  const m = (0xff << (8 - rest)) & 0xff;
  return (outer.addr[full]! & m) === (inner.addr[full]! & m);
}

export function formatPrefix(p: Prefix): string {
  if (p.family === 4) return `${Array.from(p.addr).join('.')}/${p.bits}`;
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((p.addr[i]! << 8) | p.addr[i + 1]!).toString(16));
  return `${words.join(':')}/${p.bits}`;
}

// ---------------------------------------------------------------- ports

/** IANA service name: 1-15 of letters/digits/hyphens, ≥1 letter, no leading/trailing/double hyphen. */
export function isSvcName(s: string): boolean {
  return s.length >= 1 && s.length <= 15 && /^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$/.test(s) && /[a-zA-Z]/.test(s);
}

/** Go's strconv.ParseUint(s, 0, bits): base prefixes, leading 0 = octal, `_` separators. */
export function goParseUint0(s: string, bits: number): Parsed<number> {
  if (s === '') return fail('empty');
  let base = 10;
  let digits = s;
  if (s[0] === '0') {
    const p = s[1]?.toLowerCase();
    if (s.length >= 3 && p === 'b') [base, digits] = [2, s.slice(2)];
    else if (s.length >= 3 && p === 'o') [base, digits] = [8, s.slice(2)];
    else if (s.length >= 3 && p === 'x') [base, digits] = [16, s.slice(2)];
    else [base, digits] = [8, s.slice(1)];
  }
  const max = 2 ** bits - 1;
  let n = 0;
  let underscores = false;
  for (const ch of digits) {
    if (ch === '_') {
      underscores = true;
      continue;
    }
    const c = ch.toLowerCase().charCodeAt(0);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : 99;
    if (d >= base)
      return fail(`invalid syntax${base === 8 && s[0] === '0' ? ' (a leading 0 means octal)' : ''}`);
    n = n * base + d;
    if (n > max) return fail('value out of range');
  }
  if (underscores && !underscoreOK(s)) return fail('invalid syntax');
  return { ok: true, value: n };
}

function underscoreOK(s: string): boolean {
  let saw = '^';
  let i = 0;
  let hex = false;
  if (s.length >= 2 && s[0] === '0' && 'boxBOX'.includes(s[1]!)) {
    i = 2;
    saw = '0';
    hex = s[1] === 'x' || s[1] === 'X';
  }
  for (; i < s.length; i++) {
    const ch = s[i]!;
    if ((ch >= '0' && ch <= '9') || (hex && /[a-fA-F]/.test(ch))) {
      saw = '0';
      continue;
    }
    if (ch === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}
