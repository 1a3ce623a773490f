// Kafka's wire primitives (the protocol guide's types): big-endian integers, unsigned varints,
// strings and bytes in both their classic (int16/int32 length) and compact (varint length + 1)
// forms, UUIDs, and the tagged-field sections of flexible versions. A message is described by a
// schema (schema.ts) and read or written field by field; every read checks the bounds first, so
// a short or lying frame is a KafkaParseError, never an out-of-range read or a huge allocation.

import { SeawallError } from '../../core/errors.ts';

export class KafkaParseError extends SeawallError<'kafka-parse'> {
  override name = 'KafkaParseError';
  constructor(message: string) {
    super('kafka-parse', message);
  }
}

export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new KafkaParseError(`${what}: needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
    }
  }

  int8(): number {
    this.need(1, 'int8');
    return this.buf.readInt8(this.pos++);
  }
  int16(): number {
    this.need(2, 'int16');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4, 'int32');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  int64(): bigint {
    this.need(8, 'int64');
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  bool(): boolean {
    const b = this.int8();
    if (b !== 0 && b !== 1) throw new KafkaParseError(`boolean byte ${b} at offset ${this.pos - 1}`);
    return b === 1;
  }
  uuid(): string {
    this.need(16, 'uuid');
    const s = this.buf.toString('hex', this.pos, this.pos + 16);
    this.pos += 16;
    return s;
  }
  /** Unsigned varint of at most 5 bytes (32 bits), as Kafka's readUnsignedVarint. */
  uvarint(): number {
    let v = 0;
    for (let i = 0; i < 5; i++) {
      this.need(1, 'varint');
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if (v > 0xffffffff) break;
        return v;
      }
    }
    throw new KafkaParseError(`varint longer than 32 bits at offset ${this.pos}`);
  }
  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }
  take(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** Classic (int16 length, -1 null) or compact (varint length+1, 0 null) string. */
  string(compact: boolean, nullable: boolean): string | null {
    const n = compact ? this.uvarint() - 1 : this.int16();
    if (n < 0) {
      if (!nullable) throw new KafkaParseError(`null string where none is allowed at offset ${this.pos}`);
      return null;
    }
    return this.take(n, 'string').toString('utf8');
  }
  bytes(compact: boolean, nullable: boolean): Buffer | null {
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n < 0) {
      if (!nullable) throw new KafkaParseError(`null bytes where none are allowed at offset ${this.pos}`);
      return null;
    }
    return this.take(n, 'bytes');
  }
  /** An array's element count (null → -1); never more elements than bytes left (each is ≥ 1 byte). */
  arrayLength(compact: boolean, nullable: boolean, minElement = 1): number {
    const n = compact ? this.uvarint() - 1 : this.int32();
    if (n < 0) {
      if (!nullable) throw new KafkaParseError(`null array where none is allowed at offset ${this.pos}`);
      return -1;
    }
    if (n * minElement > this.remaining) {
      throw new KafkaParseError(
        `array of ${n} elements at offset ${this.pos} but ${this.remaining} bytes left`,
      );
    }
    return n;
  }
  /** Skips a tagged-field section (flexible versions): nothing in it is judged. */
  taggedFields(): void {
    const n = this.uvarint();
    if (n > this.remaining) throw new KafkaParseError(`${n} tagged fields at offset ${this.pos}`);
    let last = -1;
    for (let i = 0; i < n; i++) {
      const tag = this.uvarint();
      if (tag <= last) throw new KafkaParseError(`tagged field ${tag} out of order at offset ${this.pos}`);
      last = tag;
      this.skip(this.uvarint(), 'tagged field');
    }
  }
}

export class Writer {
  private chunks: Buffer[] = [];
  private size = 0;

  private push(b: Buffer): this {
    this.chunks.push(b);
    this.size += b.length;
    return this;
  }
  int8(v: number): this {
    const b = Buffer.allocUnsafe(1);
    b.writeInt8(v);
    return this.push(b);
  }
  int16(v: number): this {
    const b = Buffer.allocUnsafe(2);
    b.writeInt16BE(v);
    return this.push(b);
  }
  int32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(v);
    return this.push(b);
  }
  int64(v: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(v);
    return this.push(b);
  }
  bool(v: boolean): this {
    return this.int8(v ? 1 : 0);
  }
  uuid(hex: string): this {
    const b = Buffer.from(hex.padStart(32, '0').slice(0, 32), 'hex');
    return this.push(b.length === 16 ? b : Buffer.alloc(16));
  }
  uvarint(v: number): this {
    const out: number[] = [];
    let x = v >>> 0;
    while (x >= 0x80) {
      out.push((x & 0x7f) | 0x80);
      x >>>= 7;
    }
    out.push(x);
    return this.push(Buffer.from(out));
  }
  raw(b: Buffer): this {
    return this.push(b);
  }
  string(v: string | null, compact: boolean): this {
    if (v === null) return compact ? this.uvarint(0) : this.int16(-1);
    const b = Buffer.from(v, 'utf8');
    if (compact) this.uvarint(b.length + 1);
    else this.int16(b.length);
    return this.push(b);
  }
  bytes(v: Buffer | null, compact: boolean): this {
    if (v === null) return compact ? this.uvarint(0) : this.int32(-1);
    if (compact) this.uvarint(v.length + 1);
    else this.int32(v.length);
    return this.push(v);
  }
  arrayLength(n: number, compact: boolean): this {
    if (n < 0) return compact ? this.uvarint(0) : this.int32(-1);
    return compact ? this.uvarint(n + 1) : this.int32(n);
  }
  /** An empty tagged-field section. */
  taggedFields(): this {
    return this.uvarint(0);
  }
  get length(): number {
    return this.size;
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}
