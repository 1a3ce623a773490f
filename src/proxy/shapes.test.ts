import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AnnouncedShape, jsonPairs, jsonString, ShapeAnnouncer, ShapeTable } from './shapes.ts';

describe('ShapeAnnouncer: a shape goes before its first record, and again after a loss or an epoch', () => {
  // each row: a bound, a script of records (a shape id) and losses (x), and what went ahead of
  // each record (the shape's id, or - for nothing)
  const rows: Array<{ name: string; max: number; script: string; sent: string }> = [
    { name: 'first use only', max: 10, script: '1 1 2 1 2', sent: '1 - 2 - -' },
    { name: 'again after a loss', max: 10, script: '1 2 x 2 1 2', sent: '1 2 2 1 -' },
    { name: 'a new epoch past the bound', max: 2, script: '1 2 3 1 3', sent: '1 2 3 1 -' },
    { name: 'a bound of one: each change of shape', max: 1, script: '1 1 2 1', sent: '1 - 2 1' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const a = new ShapeAnnouncer(r.max);
      const shapes = new Map<number, AnnouncedShape>();
      const sent: string[] = [];
      for (const step of r.script.split(' ')) {
        if (step === 'x') {
          a.lost();
          continue;
        }
        const id = Number(step);
        if (!shapes.has(id)) shapes.set(id, { id, def: step, epoch: -1 });
        sent.push(a.prefix(shapes.get(id)!) || '-');
      }
      assert.equal(sent.join(' '), r.sent);
    });
  }
});

describe('ShapeTable: least recently used out first', () => {
  const rows: Array<{ name: string; max: number; script: string; kept: number[] }> = [
    { name: 'under the bound: all kept', max: 3, script: 's1 s2 s3', kept: [1, 2, 3] },
    { name: 'past it: the oldest out', max: 2, script: 's1 s2 s3', kept: [2, 3] },
    { name: 'a use keeps a shape', max: 2, script: 's1 s2 g1 s3', kept: [1, 3] },
    { name: 'announced again: now the newest', max: 2, script: 's1 s2 s1 s3', kept: [1, 3] },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const t = new ShapeTable<string>(r.max);
      for (const step of r.script.split(' ')) {
        const id = Number(step.slice(1));
        if (step[0] === 's') t.set(id, `shape${id}`);
        else assert.equal(t.get(id), `shape${id}`);
      }
      assert.equal(t.size, r.kept.length);
      for (const id of [1, 2, 3]) assert.equal(t.get(id) !== undefined, r.kept.includes(id), `shape ${id}`);
    });
  }
});

describe('jsonString and jsonPairs: JSON.stringify, byte for byte', () => {
  const rows: Array<{ name: string; s: string }> = [
    { name: 'plain ASCII', s: '/public/item?id=1' },
    { name: 'empty', s: '' },
    { name: 'a quote', s: 'say "hi"' },
    { name: 'a backslash', s: 'a\\b' },
    { name: 'a control byte', s: 'a\u0001b\tc' },
    { name: 'DEL', s: 'a\u007fb' },
    { name: 'latin1 and beyond', s: 'caf\u00e9 \u2028 \u{1f600}' },
    { name: 'a lone surrogate', s: 'x\ud800y' },
    { name: 'space and tilde (the bounds that stay)', s: ' ~' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      assert.equal(jsonString(r.s), JSON.stringify(r.s));
      const pairs: Array<[string, string]> = [
        ['host', r.s],
        [r.s, 'v'],
      ];
      assert.equal(jsonPairs(pairs), JSON.stringify(pairs));
      assert.equal(jsonPairs([]), '[]');
    });
  }
});
