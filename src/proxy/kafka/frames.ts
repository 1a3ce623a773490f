// Splits a Kafka byte stream into size-prefixed frames (int32 size, then that many bytes). A size
// below the smallest header or above the limit is a KafkaParseError before any of the frame is
// buffered: a client cannot make the proxy hold more than one frame's limit per connection.

import { KafkaParseError } from './wire.ts';

/** Kafka's socket.request.max.bytes default (100 MiB). */
export const DEFAULT_MAX_FRAME = 104_857_600;

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxFrame = DEFAULT_MAX_FRAME,
    /** Smallest payload: a request header v0 is 8 bytes, a response header 4. */
    private readonly minFrame = 8,
  ) {}

  get pending(): number {
    return this.buffered;
  }

  /** Buffers a chunk; frames are then taken with next(). */
  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame (size prefix included), or undefined until more bytes come. */
  next(): Buffer | undefined {
    if (this.buffered < 4) return undefined;
    const size = this.peek4().readInt32BE(0);
    if (size < this.minFrame || size > this.maxFrame) {
      throw new KafkaParseError(
        size < this.minFrame
          ? `frame size ${size} is below the ${this.minFrame}-byte minimum`
          : `frame size ${size} exceeds the ${this.maxFrame}-byte limit`,
      );
    }
    if (this.buffered < size + 4) return undefined;
    return this.take(size + 4);
  }

  /** append() then every whole frame. */
  push(chunk: Buffer): Buffer[] {
    this.append(chunk);
    const out: Buffer[] = [];
    for (let f = this.next(); f !== undefined; f = this.next()) out.push(f);
    return out;
  }

  private peek4(): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      const frame = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return frame;
    }
    const frame = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(frame, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return frame;
  }
}
