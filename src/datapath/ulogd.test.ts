import assert from 'node:assert/strict';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { KernelEvent } from '../flow/nflog.ts';
import { JsonLineTailer } from './ulogd.ts';

// ulogd2 lines recorded from ulogd2 2.0.8 (shared with flow/nflog.test.ts, which parses them)
const SAMPLES = join(import.meta.dirname, '..', 'flow', 'testdata', 'ulogd-samples.jsonl');
const lines = (): string[] => readFileSync(SAMPLES, 'utf8').split('\n').filter(Boolean);

describe('JsonLineTailer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-tail-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sample = lines();

  it('follows appends, partial lines, malformed lines, truncation and rotation', () => {
    const path = join(dir, 'flows.json');
    writeFileSync(path, `${sample[0]}\n`); // before start: skipped with from=end
    const got: KernelEvent[] = [];
    const t = new JsonLineTailer(path, { onEvent: (e) => got.push(e), dedupWindowMs: 1000 });
    t.poll();
    assert.equal(got.length, 0);

    const half = Math.floor(sample[1]!.length / 2);
    appendFileSync(path, sample[1]!.slice(0, half));
    t.poll();
    assert.equal(got.length, 0, 'partial line waits');
    appendFileSync(path, `${sample[1]!.slice(half)}\nnot json\n${sample[2]}\n${sample[3]}\n`);
    t.poll();
    // sample[2] repeats sample[1]'s 5-tuple 1.03 s later: admitted; sample[3] is another tuple.
    assert.deepEqual(
      got.map((e) => e.verdict),
      ['deny', 'deny', 'denied'],
    );
    assert.equal(t.stats.skipped['malformed-json'], 1);

    truncateSync(path, 0);
    t.poll();
    appendFileSync(path, `${sample[4]}\n`);
    t.poll();
    assert.equal(got.at(-1)?.proto, 1);
    assert.equal(t.stats.truncations, 1);

    renameSync(path, `${path}.1`);
    appendFileSync(`${path}.1`, `${sample[5]}\n`); // written to the old file after the rename
    t.poll();
    writeFileSync(path, `${sample[7]}\n`);
    t.poll();
    assert.deepEqual(
      got.slice(-2).map((e) => `${e.verdict}/${e.proto}`),
      ['redir/6', 'deny/17'],
    );
    assert.equal(t.stats.reopens, 1);
    t.stop();
  });

  it('suppresses a drop flood of one tuple', () => {
    const path = join(dir, 'flood.json');
    writeFileSync(path, '');
    const got: KernelEvent[] = [];
    const t = new JsonLineTailer(path, { onEvent: (e) => got.push(e), from: 'start' });
    appendFileSync(path, `${sample[1]}\n`.repeat(500));
    t.poll();
    assert.equal(got.length, 1);
    assert.equal(t.stats.suppressedDrops, 499);
    t.stop();
  });
});
