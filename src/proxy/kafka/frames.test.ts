import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameReader } from './frames.ts';
import { KafkaParseError } from './wire.ts';

const frame = (n: number, fill = 1): Buffer => {
  const b = Buffer.alloc(4 + n, fill);
  b.writeInt32BE(n, 0);
  return b;
};

describe('FrameReader', () => {
  const rows: Array<{ name: string; chunks: Buffer[]; frames: number[]; pending: number }> = [
    { name: 'one frame in one chunk', chunks: [frame(8)], frames: [12], pending: 0 },
    {
      name: 'two frames in one chunk',
      chunks: [Buffer.concat([frame(8), frame(20)])],
      frames: [12, 24],
      pending: 0,
    },
    {
      name: 'a frame split in the size prefix',
      chunks: [frame(9).subarray(0, 2), frame(9).subarray(2)],
      frames: [13],
      pending: 0,
    },
    {
      name: 'a frame split byte by byte',
      chunks: [...frame(10)].map((b) => Buffer.from([b])),
      frames: [14],
      pending: 0,
    },
    { name: 'a partial frame stays buffered', chunks: [frame(30).subarray(0, 17)], frames: [], pending: 17 },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const fr = new FrameReader(100, 8);
      const out: Buffer[] = [];
      for (const c of r.chunks) out.push(...fr.push(c));
      assert.deepEqual(
        out.map((f) => f.length),
        r.frames,
      );
      assert.equal(fr.pending, r.pending);
    });
  }

  const bad: Array<{ name: string; size: number; error: RegExp }> = [
    { name: 'above the limit', size: 101, error: /frame size 101 exceeds the 100-byte limit/ },
    { name: 'negative', size: -1, error: /frame size -1 is below the 8-byte minimum/ },
    { name: 'smaller than a header', size: 3, error: /frame size 3 is below/ },
  ];
  for (const r of bad) {
    it(`a size ${r.name} is an error before the frame is buffered`, () => {
      const b = Buffer.alloc(4);
      b.writeInt32BE(r.size, 0);
      assert.throws(
        () => new FrameReader(100, 8).push(b),
        (e) => e instanceof KafkaParseError && r.error.test(e.message),
      );
    });
  }

  it('next() takes one frame at a time (the proxy judges no further than its in-flight limit)', () => {
    const fr = new FrameReader(100, 8);
    fr.append(Buffer.concat([frame(8, 1), frame(8, 2)]));
    assert.equal(fr.next()?.[4], 1);
    assert.equal(fr.pending, 12);
    assert.equal(fr.next()?.[4], 2);
    assert.equal(fr.next(), undefined);
  });
});
