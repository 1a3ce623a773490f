// DNS messages as the proxy judges them. Every message is checked twice before anything is done with
// it: a strict walk of the header, question and answers here (names in presentation form with
// non-label bytes escaped, compression pointers only backwards, bounded hops and lengths), and a full
// decode by dns-packet (every section must parse, nothing may trail). Anything that fails either is
// malformed: dropped and counted by reason, never forwarded, never relayed.

import dnsPacket from 'dns-packet';
import { canonicalIP } from '../../fqdn/ip.ts';
import { normalizeName } from '../../fqdn/name.ts';

/** Why a message was dropped (the keys of the proxy's drop counters). */
export type DropReason =
  | 'truncated'
  | 'oversized'
  | 'trailing-bytes'
  | 'response-as-query'
  | 'query-as-answer'
  | 'bad-opcode'
  | 'qdcount'
  | 'bad-pointer'
  | 'bad-label'
  | 'name-too-long'
  | 'malformed'
  | 'answer-mismatch'
  | 'tcp-bad-length';

export class WireError extends Error {
  constructor(readonly reason: DropReason) {
    super(reason);
  }
}

export const HEADER_BYTES = 12;
/** RFC 1035: a name is at most 255 octets on the wire. */
const MAX_NAME_WIRE = 255;
/** More pointer hops than a 255-octet name can need: a loop (backward-only pointers cannot loop anyway). */
const MAX_HOPS = 128;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export const TYPE = { A: 1, CNAME: 5, AAAA: 28 } as const;

/** Shared by every query with the same bytes (wire.ts's memo): never changed once parsed. */
export interface Question {
  /** Presentation form, lower-case, fully qualified; non-label bytes escaped as \DDD. */
  readonly name: string;
  /** As written (case kept): what Hubble's cnames and the flow log show. */
  readonly rawName: string;
  readonly qtype: number;
  readonly qclass: number;
}

export interface ParsedQuery {
  id: number;
  /** Recursion desired (copied into replies the proxy makes itself). */
  rd: boolean;
  cd: boolean;
  question: Question;
  /** End of the question section: [12, questionEnd) is copied into replies the proxy makes. */
  questionEnd: number;
  /** The question object is the memo's, shared with equal queries (caches may key on it). */
  remembered?: boolean;
}

export interface ParsedAnswer {
  id: number;
  /**
   * Equal answers (the same bytes after the id, to the same question: the memo) share this frozen
   * object, which holds the fields below but the id; undefined when the answer was not kept.
   */
  body?: AnswerBody;
  rcode: number;
  truncated: boolean;
  question: Question;
  /** A and AAAA addresses of the queried name's CNAME chain, in answer order (canonical text). */
  ips: string[];
  /** Lowest TTL of the chain (A, AAAA and CNAME records); 2^32-1 when there are none, as Cilium. */
  ttl: number;
  /** CNAME targets, in chain order, as written. */
  cnames: string[];
  /** Type of every answer record, in order. */
  rrtypes: number[];
}

function u16(buf: Buffer, off: number): number {
  if (off + 2 > buf.length) throw new WireError('truncated');
  return (buf[off]! << 8) | buf[off + 1]!;
}

function isLabelByte(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95;
}

/**
 * Reads a (possibly compressed) name at `off`. Pointers must point strictly before the label that
 * holds them (no loops, no forward references); queries may not compress at all.
 */
export function readName(
  buf: Buffer,
  off: number,
  allowPointers: boolean,
): { name: string; rawName: string; end: number; hops: number } {
  let pos = off;
  let end = -1;
  let wire = 0;
  let hops = 0;
  let floor = off; // a pointer must land before the start of the labels read so far
  const labels: string[] = [];
  for (;;) {
    if (pos >= buf.length) throw new WireError('truncated');
    const len = buf[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (!allowPointers) throw new WireError('bad-pointer');
      if (pos + 2 > buf.length) throw new WireError('truncated');
      const target = ((len & 0x3f) << 8) | buf[pos + 1]!;
      if (target >= floor || target < HEADER_BYTES || ++hops > MAX_HOPS) throw new WireError('bad-pointer');
      if (end < 0) end = pos + 2;
      pos = target;
      floor = target;
      continue;
    }
    if (kind !== 0) throw new WireError('bad-label'); // 0x40/0x80: extended label types (obsolete)
    if (pos + 1 + len > buf.length) throw new WireError('truncated');
    wire += len + 1;
    if (wire + 1 > MAX_NAME_WIRE) throw new WireError('name-too-long');
    let label = '';
    for (let i = pos + 1; i <= pos + len; i++) {
      const c = buf[i]!;
      label += isLabelByte(c) ? String.fromCharCode(c) : `\\${String(c).padStart(3, '0')}`;
    }
    labels.push(label);
    pos += len + 1;
  }
  const rawName = labels.length === 0 ? '.' : `${labels.join('.')}.`;
  // the one DNS normalisation (ASCII folding, RFC 4343); rawName is already fully qualified
  return { name: normalizeName(rawName), rawName, end, hops };
}

function readQuestion(buf: Buffer, allowPointers: boolean): { q: Question; end: number; hops: number } {
  const n = readName(buf, HEADER_BYTES, allowPointers);
  const qtype = u16(buf, n.end);
  const qclass = u16(buf, n.end + 2);
  return { q: { name: n.name, rawName: n.rawName, qtype, qclass }, end: n.end + 4, hops: n.hops };
}

/**
 * Messages seen before, by their bytes after the id (the id is two bytes dns-packet reads and never
 * judges): a query or answer whose bytes were all checked once is the same message again, so it is
 * neither walked nor decoded again (pods ask the same names; a server's cached answer repeats until
 * its TTL ticks). Only messages that passed every check are kept, and only small ones; at most
 * MEMO_ENTRIES, all forgotten at once past it. A memo that is rarely hit (names that do not
 * repeat) keeps only one miss in MEMO_SAMPLE: every entry kept lives on in the old generation, and
 * keeping them all made such traffic slower than no memo at all.
 */
const MEMO_ENTRIES = 4096;
const MEMO_MAX_BYTES = 512;
/** Lookups per window, over which the hit rate is taken. */
const MEMO_WINDOW = 1024;
/** Below 1 hit in MEMO_SAMPLE lookups, 1 miss in MEMO_SAMPLE is kept. */
const MEMO_SAMPLE = 8;

class Memo<V> {
  private readonly map = new Map<string, V>();
  private lookups = 0;
  private hits = 0;
  private misses = 0;
  private sampling = false;

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) this.hits++;
    if (++this.lookups === MEMO_WINDOW) {
      this.sampling = this.hits * MEMO_SAMPLE < this.lookups;
      this.lookups = 0;
      this.hits = 0;
    }
    return v;
  }

  /** Whether a miss just looked up should be kept. */
  admits(): boolean {
    return !this.sampling || ++this.misses % MEMO_SAMPLE === 0;
  }

  set(key: string, v: V): void {
    if (this.map.size >= MEMO_ENTRIES) this.map.clear();
    this.map.set(key, v);
  }
}

/** Queries parsed: what a ParsedQuery holds besides the id. */
const parsedQueries = new Memo<Omit<ParsedQuery, 'id' | 'remembered'>>();

/** An answer as parsed, without its id: shared, frozen, its arrays too. */
export type AnswerBody = Readonly<Omit<ParsedAnswer, 'id' | 'body'>>;
/** Answers parsed and accepted. */
const parsedAnswers = new Memo<AnswerBody>();

/** Times a check was answered from the memo (tests). */
export const memoHits = { queries: 0, answers: 0 };

function memoKey(buf: Buffer): string | undefined {
  return buf.length <= MEMO_MAX_BYTES ? buf.toString('latin1', 2) : undefined;
}

/** dns-packet must decode the whole message, with nothing left over. */
function fullDecode(buf: Buffer): void {
  try {
    dnsPacket.decode(buf);
  } catch {
    throw new WireError('malformed');
  }
  const used = (dnsPacket.decode as unknown as { bytes: number }).bytes;
  if (used !== buf.length) throw new WireError('trailing-bytes');
}

/** Parses a query a pod sent; throws WireError. */
export function parseQuery(buf: Buffer, maxBytes: number): ParsedQuery {
  if (buf.length < HEADER_BYTES) throw new WireError('truncated');
  if (buf.length > maxBytes) throw new WireError('oversized');
  const key = memoKey(buf);
  const known = key !== undefined ? parsedQueries.get(key) : undefined;
  if (known !== undefined) {
    memoHits.queries++;
    return {
      id: u16(buf, 0),
      rd: known.rd,
      cd: known.cd,
      question: known.question,
      questionEnd: known.questionEnd,
      remembered: true,
    };
  }
  const flags = u16(buf, 2);
  if ((flags & 0x8000) !== 0) throw new WireError('response-as-query');
  if (((flags >> 11) & 0xf) !== 0) throw new WireError('bad-opcode');
  if (u16(buf, 4) !== 1) throw new WireError('qdcount');
  const { q, end } = readQuestion(buf, false);
  fullDecode(buf);
  const parsed = { rd: (flags & 0x0100) !== 0, cd: (flags & 0x0010) !== 0, question: q, questionEnd: end };
  const remembered = key !== undefined && parsedQueries.admits();
  if (remembered) parsedQueries.set(key, parsed);
  return { id: u16(buf, 0), ...parsed, remembered };
}

/**
 * Parses the server's answer to `query`: it must be a response with the query's id and question
 * (names compared case-insensitively). Follows the CNAME chain from the queried name as Cilium's
 * ExtractMsgDetails does: every answer record must belong to the chain, else the answer is refused
 * ('answer-mismatch'). `rawQuery`: the query's bytes; a question echoed byte for byte (the common
 * case) is not decoded again.
 */
export function parseAnswer(
  buf: Buffer,
  query: ParsedQuery,
  maxBytes: number,
  rawQuery?: Buffer,
): ParsedAnswer {
  if (buf.length < HEADER_BYTES) throw new WireError('truncated');
  if (buf.length > maxBytes) throw new WireError('oversized');
  const flags = u16(buf, 2);
  if ((flags & 0x8000) === 0) throw new WireError('query-as-answer');
  if (u16(buf, 0) !== query.id) throw new WireError('answer-mismatch');
  // only the answer to a query the memo keeps is looked up (and kept): a query that is not a repeat
  // seldom gets an answer that is
  const key = query.remembered === true ? memoKey(buf) : undefined;
  const known = key !== undefined ? parsedAnswers.get(key) : undefined;
  if (
    known !== undefined &&
    known.question.name === query.question.name &&
    known.question.qtype === query.question.qtype &&
    known.question.qclass === query.question.qclass
  ) {
    memoHits.answers++;
    return { id: query.id, ...known, body: known };
  }
  if (u16(buf, 4) !== 1) throw new WireError('qdcount');
  const ancount = u16(buf, 6);
  const { q, end, hops } =
    rawQuery !== undefined && sameBytes(buf, rawQuery, HEADER_BYTES, query.questionEnd)
      ? { q: query.question, end: query.questionEnd, hops: 0 } // a query has no pointers
      : readQuestion(buf, true);
  if (
    q.name !== query.question.name ||
    q.qtype !== query.question.qtype ||
    q.qclass !== query.question.qclass
  ) {
    throw new WireError('answer-mismatch');
  }
  fullDecode(buf);
  let pos = end;
  let chain = q.name;
  let ttl = 0xffffffff;
  const ips: string[] = [];
  const cnames: string[] = [];
  const rrtypes: number[] = [];
  // names already read, by offset: an owner that is only a pointer to one (0xc00c, the question)
  // is that name, as readName would find it (the same walk from the same offset, one hop more)
  const names = new Map<number, { name: string; hops: number }>([[HEADER_BYTES, { name: q.name, hops }]]);
  for (let i = 0; i < ancount; i++) {
    const owner = ownerName(buf, pos, names);
    const type = u16(buf, owner.end);
    const ttlHi = u16(buf, owner.end + 4);
    const rrTTL = ttlHi * 65536 + u16(buf, owner.end + 6);
    const rdlen = u16(buf, owner.end + 8);
    const rdata = owner.end + 10;
    if (rdata + rdlen > buf.length) throw new WireError('truncated');
    if (owner.name !== chain) throw new WireError('answer-mismatch');
    if (type === TYPE.A || type === TYPE.AAAA) {
      const want = type === TYPE.A ? 4 : 16;
      if (rdlen !== want) throw new WireError('malformed');
      ips.push(type === TYPE.A ? ipv4(buf, rdata) : ipv6(buf, rdata));
      if (rrTTL < ttl) ttl = rrTTL;
    } else if (type === TYPE.CNAME) {
      const target = readName(buf, rdata, true);
      if (target.end !== rdata + rdlen) throw new WireError('malformed');
      names.set(rdata, { name: target.name, hops: target.hops });
      if (rrTTL < ttl) ttl = rrTTL;
      chain = target.name;
      cnames.push(target.rawName);
    }
    rrtypes.push(type);
    pos = rdata + rdlen;
  }
  const body: Omit<ParsedAnswer, 'id' | 'body'> = {
    rcode: flags & 0xf,
    truncated: (flags & 0x0200) !== 0,
    question: q,
    // the canonical text once, for the cache and the record (IPv4 already is)
    ips: ips.some((ip) => ip.includes(':')) ? ips.map((ip) => canonicalIP(ip) ?? ip) : ips,
    ttl,
    cnames,
    rrtypes,
  };
  if (key === undefined || !parsedAnswers.admits()) return { id: query.id, ...body };
  for (const list of [body.ips, body.cnames, body.rrtypes]) Object.freeze(list);
  const frozen = Object.freeze(body);
  parsedAnswers.set(key, frozen);
  return { id: query.id, ...frozen, body: frozen };
}

function sameBytes(a: Buffer, b: Buffer, from: number, to: number): boolean {
  if (a.length < to || b.length < to) return false;
  for (let i = from; i < to; i++) if (a[i] !== b[i]) return false;
  return true;
}

function ownerName(
  buf: Buffer,
  pos: number,
  names: Map<number, { name: string; hops: number }>,
): { name: string; end: number } {
  if (pos + 1 < buf.length && (buf[pos]! & 0xc0) === 0xc0) {
    const target = ((buf[pos]! & 0x3f) << 8) | buf[pos + 1]!;
    const known = target < pos ? names.get(target) : undefined;
    if (known !== undefined && known.hops + 1 <= MAX_HOPS) return { name: known.name, end: pos + 2 };
  }
  return readName(buf, pos, true);
}

function ipv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

function ipv6(buf: Buffer, off: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(((buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!).toString(16));
  return groups.join(':'); // canonicalIP (fqdn/ip.ts) gives the RFC 5952 form where it matters
}

/**
 * A reply the proxy makes itself (REFUSED, NXDOMAIN, SERVFAIL): the query's id and question, as
 * Cilium's SetRcode makes it (opcode and RD/CD copied, no answers, no EDNS).
 */
export function errorReply(raw: Buffer, query: ParsedQuery, rcode: number): Buffer {
  const out = Buffer.alloc(query.questionEnd);
  raw.copy(out, 0, 0, query.questionEnd);
  out.writeUInt16BE(query.id, 0);
  out.writeUInt16BE(0x8000 | (query.rd ? 0x0100 : 0) | (query.cd ? 0x0010 : 0) | (rcode & 0xf), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** DNS over TCP framing (RFC 1035 §4.2.2): a 2-byte length before each message. */
export class TCPFramer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxMessage: number) {}

  /** Bytes of an incomplete message held. */
  get pending(): number {
    return this.buf.length;
  }

  /** Feeds bytes; returns the complete messages. Throws WireError on a bad length prefix. */
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      if (this.buf.length < 2) break;
      const len = this.buf.readUInt16BE(0);
      if (len < HEADER_BYTES) throw new WireError('tcp-bad-length');
      if (len > this.maxMessage) throw new WireError('oversized');
      if (this.buf.length < 2 + len) break;
      out.push(Buffer.from(this.buf.subarray(2, 2 + len)));
      this.buf = this.buf.subarray(2 + len);
    }
    return out;
  }
}

export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(msg.length + 2);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

/** Hubble's names for query and record types (gopacket's DNSType.String); others are "Unknown". */
const TYPE_NAMES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  3: 'MD',
  4: 'MF',
  5: 'CNAME',
  6: 'SOA',
  7: 'MB',
  8: 'MG',
  9: 'MR',
  10: 'NULL',
  11: 'WKS',
  12: 'PTR',
  13: 'HINFO',
  14: 'MINFO',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  35: 'NAPTR',
  41: 'OPT',
  46: 'RRSIG',
  48: 'DNSKEY',
  64: 'SVCB',
  65: 'HTTPS',
  256: 'URI',
};

export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? 'Unknown';
}

export { dnsRcodeName as rcodeName } from '../../flow/dns-record.ts';
