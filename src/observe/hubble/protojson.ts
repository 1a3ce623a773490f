// A strict protojson reader for the Hubble messages: JSON → the plain object protobufjs encodes,
// with protojson's rules (proto or lowerCamel field names, enum names, 64-bit integers as decimal
// strings, Timestamp as RFC 3339, wrappers as their bare value, one field per oneof) and unknown
// fields rejected, as Go's protojson.Unmarshal does by default. `canonical` also requires what
// protojson.Marshal writes (no zero scalars, no empty lists, enum names, no nulls), so a record that
// passes is byte-for-byte the kind of JSON `hubble observe -o json` prints.

import type protobuf from 'protobufjs';
import { SeawallError } from '../../core/errors.ts';

export class ProtoJSONError extends SeawallError<'protojson'> {
  override name = 'ProtoJSONError';
  constructor(readonly problems: string[]) {
    super('protojson', problems.join('; '));
  }
}

export interface ProtoJSONOptions {
  /** Also require protojson.Marshal's canonical form (default true). */
  canonical?: boolean;
}

const INT32 = new Set(['int32', 'sint32', 'sfixed32']);
const UINT32 = new Set(['uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
};

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** What the walker needs of one field, computed once (protobufjs's fullName is a costly getter). */
interface FieldPlan {
  field: protobuf.Field;
  name: string;
  repeated: boolean;
  kind: 'enum' | 'wrapper' | 'timestamp' | 'message' | 'scalar';
  /** The scalar type (for wrappers: the wrapped one). */
  scalar: string;
  enumType?: protobuf.Enum;
  msgType?: protobuf.Type;
  /** The real oneof this field belongs to (not proto3 optional's synthetic one). */
  oneof?: string;
}

interface TypePlan {
  byKey: Map<string, FieldPlan>;
  fields: FieldPlan[];
  name: string;
  fullName: string;
}

const plans = new WeakMap<protobuf.Type, TypePlan>();

function planOf(t: protobuf.Type): TypePlan {
  let p = plans.get(t);
  if (p === undefined) {
    const byKey = new Map<string, FieldPlan>();
    const fields: FieldPlan[] = [];
    for (const f of t.fieldsArray) {
      const rt = f.resolvedType;
      const fp: FieldPlan = { field: f, name: f.name, repeated: f.repeated, kind: 'scalar', scalar: f.type };
      if (rt !== null && 'values' in rt) {
        fp.kind = 'enum';
        fp.enumType = rt as protobuf.Enum;
      } else if (rt !== null) {
        const full = rt.fullName;
        fp.msgType = rt as protobuf.Type;
        if (WRAPPERS[full] !== undefined) {
          fp.kind = 'wrapper';
          fp.scalar = WRAPPERS[full]!;
        } else fp.kind = full === '.google.protobuf.Timestamp' ? 'timestamp' : 'message';
      }
      if (f.partOf !== null && f.partOf.oneof.length > 1) fp.oneof = f.partOf.name;
      byKey.set(f.name, fp);
      byKey.set(lowerCamel(f.name), fp);
      fields.push(fp);
    }
    p = { byKey, fields, name: t.name, fullName: t.fullName.slice(1) };
    plans.set(t, p);
  }
  return p;
}

class Walker {
  readonly problems: string[] = [];
  constructor(readonly canonical: boolean) {}

  bad(path: string, why: string): undefined {
    this.problems.push(`${path}: ${why}`);
    return undefined;
  }

  message(t: protobuf.Type, v: unknown, path: string): Record<string, unknown> | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return this.bad(path, `expected a ${t.name} object, got ${kind(v)}`);
    }
    const plan = planOf(t);
    const out: Record<string, unknown> = {};
    let oneofSet: Map<string, string> | undefined;
    for (const key in v) {
      const val = (v as Record<string, unknown>)[key];
      if (val === undefined) continue; // not in JSON text; an object built in code may carry it
      const f = plan.byKey.get(key);
      if (f === undefined) {
        this.bad(`${path}.${key}`, `unknown field of ${plan.fullName}`);
        continue;
      }
      const p = `${path}.${key}`;
      if (f.name in out) {
        this.bad(p, `field ${f.name} given twice`);
        continue;
      }
      if (val === null) {
        if (this.canonical) this.bad(p, 'null (protojson writes no nulls)');
        continue;
      }
      if (f.oneof !== undefined) {
        oneofSet ??= new Map();
        const prev = oneofSet.get(f.oneof);
        if (prev !== undefined) {
          this.bad(p, `oneof ${f.oneof} already has ${prev}`);
          continue;
        }
        oneofSet.set(f.oneof, f.name);
      }
      let conv: unknown;
      if (f.repeated) {
        if (!Array.isArray(val)) {
          this.bad(p, `expected a list, got ${kind(val)}`);
          continue;
        }
        if (this.canonical && val.length === 0) this.bad(p, 'empty list (protojson omits it)');
        conv = val.map((x, i) => this.value(f, x, `${p}[${i}]`, true));
      } else {
        conv = this.value(f, val, p, false);
        if (this.canonical && conv !== undefined && isZero(f, conv)) {
          this.bad(p, `zero value ${JSON.stringify(val)} (protojson omits it)`);
        }
      }
      out[f.name] = conv;
    }
    return out;
  }

  value(f: FieldPlan, v: unknown, path: string, inList: boolean): unknown {
    switch (f.kind) {
      case 'enum':
        return this.enumValue(f.enumType!, v, path);
      case 'wrapper': {
        if (v === null && inList) return this.bad(path, 'null in a list');
        const inner = this.scalar(f.scalar, v, path);
        return inner === undefined ? undefined : { value: inner };
      }
      case 'timestamp':
        return this.timestamp(v, path);
      case 'message':
        return this.message(f.msgType!, v, path);
    }
    return this.scalar(f.scalar, v, path);
  }

  enumValue(e: protobuf.Enum, v: unknown, path: string): number | undefined {
    if (typeof v === 'string') {
      const n = e.values[v];
      if (n === undefined) return this.bad(path, `${JSON.stringify(v)} is not a value of enum ${e.name}`);
      return n;
    }
    if (typeof v === 'number' && Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
      // protojson accepts a number; Marshal writes the name when the enum knows the number.
      if (this.canonical && e.valuesById[v] !== undefined) {
        return this.bad(path, `enum ${e.name} as number ${v} (protojson writes ${e.valuesById[v]})`);
      }
      return v;
    }
    return this.bad(path, `expected an enum ${e.name} name, got ${kind(v)}`);
  }

  scalar(type: string, v: unknown, path: string): unknown {
    if (type === 'string') {
      if (typeof v !== 'string') return this.bad(path, `expected a string, got ${kind(v)}`);
      if (!(v as unknown as { isWellFormed(): boolean }).isWellFormed())
        return this.bad(path, 'string is not valid UTF-8 (lone surrogate)');
      return v;
    }
    if (type === 'bool') {
      if (typeof v !== 'boolean') return this.bad(path, `expected true or false, got ${kind(v)}`);
      return v;
    }
    if (INT32.has(type) || UINT32.has(type)) {
      const n = this.integer(v, path, false);
      if (n === undefined) return undefined;
      const [lo, hi] = UINT32.has(type) ? [0n, 0xffffffffn] : [-0x80000000n, 0x7fffffffn];
      if (n < lo || n > hi) return this.bad(path, `${n} out of range for ${type}`);
      return Number(n);
    }
    if (INT64.has(type) || UINT64.has(type)) {
      const n = this.integer(v, path, true);
      if (n === undefined) return undefined;
      const [lo, hi] = UINT64.has(type) ? [0n, (1n << 64n) - 1n] : [-(1n << 63n), (1n << 63n) - 1n];
      if (n < lo || n > hi) return this.bad(path, `${n} out of range for ${type}`);
      return n.toString();
    }
    if (type === 'double' || type === 'float') {
      if (typeof v === 'number') return v;
      if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
      return this.bad(path, `expected a number, got ${kind(v)}`);
    }
    if (type === 'bytes') {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) {
        return this.bad(path, `expected base64 bytes, got ${kind(v)}`);
      }
      return Buffer.from(v, 'base64');
    }
    return this.bad(path, `unsupported field type ${type}`);
  }

  /** protojson: 32-bit as numbers (or strings), 64-bit as decimal strings (or numbers). */
  integer(v: unknown, path: string, is64: boolean): bigint | undefined {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) return this.bad(path, `${v} is not an integer`);
      if (is64 && this.canonical)
        return this.bad(path, `64-bit integer as number ${v} (protojson writes "${v}")`);
      if (is64 && !Number.isSafeInteger(v)) return this.bad(path, `${v} loses precision as a JSON number`);
      return BigInt(v);
    }
    if (typeof v === 'string' && /^-?(0|[1-9]\d*)$/.test(v)) {
      if (!is64 && this.canonical)
        return this.bad(path, `32-bit integer as string "${v}" (protojson writes ${v})`);
      return BigInt(v);
    }
    return this.bad(path, `expected an integer, got ${kind(v)}`);
  }

  timestamp(v: unknown, path: string): { seconds: string; nanos: number } | undefined {
    if (typeof v !== 'string') return this.bad(path, `expected an RFC 3339 time, got ${kind(v)}`);
    const ts = parseRFC3339(v);
    if (typeof ts === 'string') return this.bad(path, `${JSON.stringify(v)}: ${ts}`);
    if (this.canonical && !/^[^.]*(\.(\d{3}|\d{6}|\d{9}))?Z$/.test(v)) {
      return this.bad(
        path,
        `${JSON.stringify(v)} is not protojson's form (UTC "Z", 0, 3, 6 or 9 fractional digits)`,
      );
    }
    return { seconds: String(ts.seconds), nanos: ts.nanos };
  }
}

function isZero(f: FieldPlan, conv: unknown): boolean {
  if (f.kind !== 'scalar' && f.kind !== 'enum') return false; // messages have presence
  return (
    conv === 0 ||
    conv === '0' ||
    conv === false ||
    conv === '' ||
    (conv instanceof Buffer && conv.length === 0)
  );
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** The date and time of day (`YYYY-MM-DDTHH:MM:SS`) of the last UTC time parsed, and its seconds. */
let lastBase = '';
let lastBaseSeconds = 0;

/** `s` is `lastBase` + `Z` or + `.` and 1–9 digits + `Z`: its Timestamp, without the regex. */
function sameSecond(s: string): { seconds: number; nanos: number } | undefined {
  const n = s.length;
  if (n < 20 || n > 30 || s.charCodeAt(n - 1) !== 90 /* Z */ || !s.startsWith(lastBase)) return undefined;
  if (n === 20) return { seconds: lastBaseSeconds, nanos: 0 };
  if (n === 21 || s.charCodeAt(19) !== 46 /* . */) return undefined;
  let nanos = 0;
  for (let i = 20; i < n - 1; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    nanos = nanos * 10 + d;
  }
  return { seconds: lastBaseSeconds, nanos: nanos * 10 ** (30 - n) };
}

/** RFC 3339 as protojson reads a Timestamp (years 0001–9999, no leap second); a string says why not. */
export function parseRFC3339(s: string): { seconds: number; nanos: number } | string {
  // records come many per second: the date and time of day are checked once per second
  if (lastBase !== '') {
    const same = sameSecond(s);
    if (same !== undefined) return same;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (m === null) return 'not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.frac]Z)';
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > (mo === 2 && leap ? 29 : DAYS[mo - 1]!))
    return 'no such date';
  if (h > 23 || mi > 59 || se > 59) return 'no such time of day';
  let offset = 0;
  const z = m[8]!;
  if (z !== 'Z') {
    const oh = Number(z.slice(1, 3));
    const om = Number(z.slice(4, 6));
    if (oh > 23 || om > 59) return 'bad UTC offset';
    offset = (z[0] === '-' ? -1 : 1) * (oh * 3600 + om * 60);
  }
  const seconds = Date.UTC(y, mo - 1, d, h, mi, se) / 1000 - offset;
  const nanos = m[7] === undefined ? 0 : Number(m[7].padEnd(9, '0'));
  if (z === 'Z') {
    lastBase = s.slice(0, 19);
    lastBaseSeconds = seconds;
  }
  return { seconds, nanos };
}

/**
 * Reads protojson for message type `t` into the plain object `t.fromObject` takes.
 * Throws ProtoJSONError listing every problem with its JSON path.
 */
export function readProtoJSON(
  t: protobuf.Type,
  json: unknown,
  opts: ProtoJSONOptions = {},
): Record<string, unknown> {
  const w = new Walker(opts.canonical ?? true);
  const out = w.message(t, json, t.name);
  if (w.problems.length > 0 || out === undefined) throw new ProtoJSONError(w.problems);
  return out;
}

/** The problems protojson finds in `json` as a `t` (empty: it parses). */
export function protoJSONProblems(t: protobuf.Type, json: unknown, opts: ProtoJSONOptions = {}): string[] {
  const w = new Walker(opts.canonical ?? true);
  w.message(t, json, t.name);
  return w.problems;
}

/**
 * The inverse for tests and clients: a protobufjs object (toObject with keepCase, enums and longs
 * as String, defaults false) → protojson with proto field names, as `hubble observe -o json` prints.
 */
export function toProtoJSON(t: protobuf.Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of planOf(t).fields) {
    const v = obj[f.name];
    if (v === undefined || v === null) continue;
    if (f.repeated) {
      if (!Array.isArray(v) || v.length === 0) continue;
      out[f.name] = v.map((x) => jsonValue(f, x));
    } else {
      const j = jsonValue(f, v);
      if (j !== undefined) out[f.name] = j;
    }
  }
  return out;
}

function jsonValue(f: FieldPlan, v: unknown): unknown {
  const o = v as Record<string, unknown>;
  switch (f.kind) {
    case 'wrapper':
      return o.value ?? zeroOf(f.scalar);
    case 'timestamp':
      return formatTimestamp(Number(o.seconds ?? 0), Number(o.nanos ?? 0));
    case 'message':
      return toProtoJSON(f.msgType!, o);
    case 'scalar':
      return isZero(f, v) ? undefined : v;
  }
  return v;
}

function zeroOf(scalar: string): unknown {
  if (scalar === 'bool') return false;
  if (scalar === 'string') return '';
  if (INT64.has(scalar) || UINT64.has(scalar)) return '0';
  return 0;
}

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits (protojson's Timestamp). */
export function formatTimestamp(seconds: number, nanos: number): string {
  const base = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (nanos === 0) return `${base}Z`;
  let frac = String(nanos).padStart(9, '0');
  if (frac.endsWith('000000')) frac = frac.slice(0, 3);
  else if (frac.endsWith('000')) frac = frac.slice(0, 6);
  return `${base}.${frac}Z`;
}
