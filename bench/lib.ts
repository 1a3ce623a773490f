// Helpers for benchmarks: interleaved timing, medians, heap use, aligned tables. Benchmarks print
// ratios against a baseline measured in the same run; they never assert times.

import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A full collection when possible (without --expose-gc too), so heap figures mean something. */
export const gc: () => void = (() => {
  let g = (globalThis as { gc?: () => void }).gc;
  try {
    // Sweeping otherwise runs behind the collection, and heapUsed would still count garbage.
    setFlagsFromString('--no-concurrent-sweeping');
    if (!g) {
      setFlagsFromString('--expose-gc');
      g = runInNewContext('gc') as () => void;
    }
  } catch {
    // no collection available: heap figures are rough
  }
  return g ?? (() => {});
})();

/** Holds each run's result until it is measured; module-level so the optimiser cannot drop it. */
const sink: { result?: unknown } = {};

export interface Sample {
  /** Milliseconds of each run, in run order. */
  ms: number[];
  /** Heap held by one run's result (bytes; largest over the runs). */
  retainedBytes: number;
  /** Peak-ish heap growth during one run (heapUsed after minus before, no collection between). */
  allocatedBytes: number;
}

/**
 * Runs each variant `runs` times, interleaved (A B A B …) after one warm-up round, so drift
 * (JIT, thermal, other load) hits every variant alike.
 */
export async function interleaved(
  variants: Record<string, () => unknown>,
  runs = 5,
): Promise<Record<string, Sample>> {
  const names = Object.keys(variants);
  const out: Record<string, Sample> = {};
  for (const n of names) out[n] = { ms: [], retainedBytes: 0, allocatedBytes: 0 };
  for (const n of names) await variants[n]!(); // warm-up
  for (let r = 0; r < runs; r++) {
    for (const n of names) {
      gc();
      const before = process.memoryUsage().heapUsed;
      const t0 = performance.now();
      // No local variable holds the result: it would keep it alive past the release below.
      sink.result = variants[n]!();
      if (sink.result instanceof Promise) sink.result = await sink.result;
      const ms = performance.now() - t0;
      const after = process.memoryUsage().heapUsed;
      gc();
      const kept = process.memoryUsage().heapUsed;
      sink.result = undefined; // (an array's `length = 0` does not free its elements at once)
      gc();
      const s = out[n]!;
      s.ms.push(ms);
      s.allocatedBytes = Math.max(s.allocatedBytes, after - before);
      // What the result holds: heap with it minus heap without it, both right after a collection.
      s.retainedBytes = Math.max(s.retainedBytes, kept - process.memoryUsage().heapUsed);
    }
  }
  return out;
}

/**
 * What a result holds on the heap: the heap with it minus the heap once it is released, both right
 * after a full collection. Kept in `sink` rather than a local, which an optimised frame may keep
 * alive past its last use (a difference of start heaps then counts what the previous run left).
 */
export function retainedBytes(f: () => unknown): number {
  sink.result = f();
  const withIt = heapUsedBytes();
  sink.result = undefined;
  return withIt - heapUsedBytes();
}

export function heapUsedBytes(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

export function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

export function fmtBytes(b: number): string {
  if (Math.abs(b) >= 1024 * 1024) return `${(b / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(b) >= 1024) return `${(b / 1024).toFixed(1)} KiB`;
  return `${b} B`;
}

export function fmtRatio(x: number): string {
  return `${x.toFixed(2)}x`;
}

/** A plain-text table: the first row is the header; numbers-looking cells align right. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((c, k) => {
      widths[k] = Math.max(widths[k] ?? 0, c.length);
    });
  }
  const line = (row: readonly string[]) =>
    row
      .map((c, k) => (/^[-\d.]/.test(c) ? c.padStart(widths[k]!) : c.padEnd(widths[k]!)))
      .join('  ')
      .trimEnd();
  const [head, ...body] = rows;
  if (!head) return '';
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export { rng } from '../src/policy/testutil.ts';
