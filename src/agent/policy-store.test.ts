// Issue 8 item 3 (unit): a change is applied only once the file has been stable (two equal reads
// stableMs apart), so a truncate-and-rewrite never applies the empty file in between; removals
// settle the same way; an invalid or unreadable file keeps its last good version.

import assert from 'node:assert/strict';
import {
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { PolicyStore, RACY_MS } from './policy-store.ts';

const cnp = (name: string, port: number): string => `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ${name}, namespace: shop}
spec:
  endpointSelector: {matchLabels: {app: ledger}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: client}}]
      toPorts: [{ports: [{port: "${port}", protocol: TCP}]}]
`;

describe('item 3: PolicyStore applies a change once it is stable', () => {
  const root = mkdtempSync(join(tmpdir(), 'seawall-store-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let dirN = 0;
  const setup = () => {
    const dir = join(root, `d${dirN++}`);
    mkdirSync(dir);
    let t = 1_000_000;
    const store = new PolicyStore(dir, { stableMs: 300, now: () => t });
    const file = join(dir, 'ledger.yaml');
    writeFileSync(file, cnp('ledger', 8080));
    store.scan();
    t += 300;
    const first = store.scan();
    return {
      dir,
      file,
      store,
      first,
      advance: (ms: number) => {
        t += ms;
      },
      ports: () => [...store.policies().keys()],
    };
  };

  it('startup: two reads a settle time apart apply the file', () => {
    const s = setup();
    assert.equal(s.first.changed, true);
    assert.deepEqual(s.ports(), ['CiliumNetworkPolicy/shop/ledger']);
  });

  it('truncate, then rewrite within the settle time: the empty file is never applied', () => {
    const s = setup();
    writeFileSync(s.file, '');
    s.advance(50);
    const a = s.store.scan();
    assert.equal(a.changed, false);
    assert.equal(a.found, 1);
    assert.deepEqual(
      s.store.pendingChanges().map((p) => p.change),
      ['modified'],
    );
    s.advance(200);
    writeFileSync(s.file, cnp('ledger', 8080));
    const b = s.store.scan();
    assert.equal(b.changed, false);
    assert.deepEqual(s.store.pendingChanges(), [], 'back to the applied content: nothing pending');
    assert.deepEqual(s.ports(), ['CiliumNetworkPolicy/shop/ledger']);
  });

  const rows: Array<{ name: string; change: (file: string) => void; want: string[] }> = [
    {
      name: 'a new version',
      change: (f) => writeFileSync(f, cnp('ledger-v2', 9090)),
      want: ['CiliumNetworkPolicy/shop/ledger-v2'],
    },
    { name: 'an empty file that stays empty (zero policies)', change: (f) => writeFileSync(f, ''), want: [] },
    { name: 'a removed file', change: (f) => unlinkSync(f), want: [] },
    {
      name: 'an invalid file keeps the last good version',
      change: (f) => writeFileSync(f, 'kind: CiliumNetworkPolicy\nspec: {bogus: 1}\n'),
      want: ['CiliumNetworkPolicy/shop/ledger'],
    },
  ];
  for (const r of rows) {
    it(`${r.name}: pending until stable, then applied`, () => {
      const s = setup();
      r.change(s.file);
      assert.equal(s.store.scan().changed, false, 'first sight: pending');
      s.advance(299);
      assert.equal(s.store.scan().changed, false, 'not yet stable');
      assert.equal(s.store.nextDue(), s.store.pendingChanges()[0]!.since + 300);
      s.advance(1);
      s.store.scan();
      assert.deepEqual(s.ports(), r.want);
      assert.deepEqual(s.store.pendingChanges(), []);
    });
  }

  it('a file that keeps changing is not applied until it stops', () => {
    const s = setup();
    for (let i = 0; i < 5; i++) {
      writeFileSync(s.file, cnp('ledger', 9000 + i));
      s.store.scan();
      s.advance(200);
    }
    assert.deepEqual(
      s.ports(),
      ['CiliumNetworkPolicy/shop/ledger'],
      'the last good version while it changes',
    );
    s.advance(100);
    s.store.scan();
    assert.equal(s.store.pendingChanges().length, 0, 'stable: applied');
  });

  it('an explicit reload applies at once', () => {
    const s = setup();
    writeFileSync(s.file, cnp('ledger-now', 1));
    assert.equal(s.store.scan({ immediate: true }).changed, true);
    assert.deepEqual(s.ports(), ['CiliumNetworkPolicy/shop/ledger-now']);
  });

  it('an unreadable store changes nothing and says so', () => {
    const s = setup();
    rmSync(s.dir, { recursive: true });
    const r = s.store.scan();
    assert.equal(r.changed, false);
    assert.match(r.error ?? '', /the last good state stays/);
    s.advance(1000);
    s.store.scan();
    assert.deepEqual(s.ports(), ['CiliumNetworkPolicy/shop/ledger']);
  });

  it('after a restart an unsettled file is enforced in its saved last good version', () => {
    const s = setup();
    let t = 5_000_000;
    const store = new PolicyStore(s.dir, { stableMs: 300, now: () => t });
    store.restore({ [s.file]: cnp('saved', 7) });
    writeFileSync(s.file, '');
    store.scan();
    assert.deepEqual([...store.policies().keys()], ['CiliumNetworkPolicy/shop/saved']);
    t += 300;
    store.scan();
    assert.deepEqual([...store.policies().keys()], [], 'stable now: the empty file is what the user wants');
  });
});

describe('issue 15: scanning thousands of files', () => {
  const root = mkdtempSync(join(tmpdir(), 'seawall-store-scale-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const N = 2000;
  const old = new Date(Date.now() - 3_600_000);
  for (let i = 0; i < N; i++) {
    const f = join(root, `p${i}.yaml`);
    writeFileSync(f, cnp(`p${i}`, 1000 + (i % 50)));
    utimesSync(f, old, old);
  }
  const written = Date.now();
  // utimes cannot set ctime back: until RACY_MS past the last write a read leaves a file
  // untrusted (read again by the next scan), and the counts below would depend on how fast the
  // machine got here (CI saw 1,000 files read twice)
  before(() => new Promise((r) => setTimeout(r, Math.max(0, written + RACY_MS + 100 - Date.now()))));

  it('an asynchronous scan yields to the event loop and shows its progress', async () => {
    const store = new PolicyStore(root, { stableMs: 0 });
    const seen: Array<{ done: number; files: number }> = [];
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
      const p = store.progress();
      if (p !== undefined) seen.push({ done: p.done, files: p.files });
    }, 5);
    try {
      const r = await store.scanAsync({ immediate: true });
      assert.equal(r.changed, true);
    } finally {
      clearInterval(timer);
    }
    assert.equal(store.policies().size, N);
    assert.equal(store.progress(), undefined, 'no scan in progress after it ended');
    assert.ok(seen.length >= 2, `the timer ran during the scan (${seen.length} times)`);
    assert.ok(seen.every((p) => p.files === N && p.done >= 1 && p.done <= N));
    assert.ok(seen[0]!.done < N, 'progress seen before the end');
    // slices are 20 ms; a loaded machine gets headroom
    assert.ok(worst < 1000, `longest stall ${worst.toFixed(0)} ms`);
  });

  it('startup (two scans a settle time apart) reads each file once', () => {
    let t = 1_000_000;
    const store = new PolicyStore(root, { stableMs: 300, now: () => t });
    store.scan();
    assert.equal(store.policies().size, 0, 'pending until stable');
    t += 300;
    assert.equal(store.scan().changed, true);
    assert.equal(store.policies().size, N);
    assert.equal(store.reads, N, 'the pending read is the one applied');
  });

  it('a rescan reads no unchanged file; an edited one is read alone', () => {
    const store = new PolicyStore(root, { stableMs: 0 });
    store.scan({ immediate: true });
    assert.equal(store.reads, N);
    const rows: Array<{ name: string; edit?: () => void; reads: number; port?: number }> = [
      { name: 'nothing changed', reads: 0 },
      {
        name: 'one file edited',
        edit: () => writeFileSync(join(root, 'p7.yaml'), cnp('p7', 4242)),
        reads: 1,
        port: 4242,
      },
      // written just now: its stat could hide a change in the same time stamp, so it is read again
      { name: 'a file changed moments ago is read again', reads: 1 },
    ];
    for (const row of rows) {
      const before: number = store.reads;
      row.edit?.();
      store.scan({ immediate: true });
      assert.equal(store.reads - before, row.reads, row.name);
      if (row.port !== undefined) {
        const p = store.policies().get('CiliumNetworkPolicy/shop/p7');
        assert.match(JSON.stringify(p?.spec), new RegExp(`"${row.port}"`), row.name);
      }
    }
  });
});

describe('issue 15: a scan of the files watch events name', () => {
  const root = mkdtempSync(join(tmpdir(), 'seawall-store-events-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  let dirN = 0;
  /** A store of three files, loaded; its directory's real path is what the watcher reports. */
  const setup = () => {
    const dir = join(root, `d${dirN++}`);
    mkdirSync(dir);
    for (const n of ['a', 'b', 'c']) writeFileSync(join(dir, `${n}.yaml`), cnp(n, 80));
    let t = 1_000_000;
    const store = new PolicyStore(dir, { stableMs: 300, now: () => t });
    store.scan({ immediate: true });
    const real = realpathSync(dir);
    return {
      dir,
      store,
      real,
      advance: (ms: number) => {
        t += ms;
      },
      names: () => [...store.policies().keys()].map((k) => k.split('/')[2]).sort(),
    };
  };

  it('an edited file named by an event is read alone; a file no event named is left to the resync', () => {
    const s = setup();
    writeFileSync(join(s.dir, 'a.yaml'), cnp('a2', 80));
    writeFileSync(join(s.dir, 'b.yaml'), cnp('b2', 80)); // its event "lost"
    const before = s.store.reads;
    const paths = s.store.pathsFor([{ dir: s.real, name: 'a.yaml' }]);
    assert.deepEqual(paths, [join(s.dir, 'a.yaml')]);
    s.store.scan({ paths: paths! });
    assert.deepEqual(s.names(), ['a', 'b', 'c'], 'pending until stable');
    s.advance(300);
    assert.equal(s.store.scan({ paths: s.store.pendingFiles() }).changed, true);
    assert.equal(s.store.reads - before, 2, 'the named file, twice (changed, then settled): nothing else');
    assert.deepEqual(s.names(), ['a2', 'b', 'c']);
    s.store.scan({ immediate: true }); // the periodic full scan
    assert.deepEqual(s.names(), ['a2', 'b2', 'c']);
  });

  it('a named file that is gone is removed once its absence is stable', () => {
    const s = setup();
    unlinkSync(join(s.dir, 'b.yaml'));
    const paths = s.store.pathsFor([{ dir: s.real, name: 'b.yaml' }])!;
    assert.equal(s.store.scan({ paths }).changed, false);
    assert.deepEqual(
      s.store.pendingChanges().map((p) => p.change),
      ['removed'],
    );
    s.advance(300);
    assert.equal(s.store.scan({ paths: s.store.pendingFiles() }).changed, true);
    assert.deepEqual(s.names(), ['a', 'c']);
    assert.deepEqual(s.store.pendingChanges(), []);
  });

  it('a named file that no longer validates keeps its last good version', () => {
    const s = setup();
    writeFileSync(join(s.dir, 'c.yaml'), 'kind: CiliumNetworkPolicy\nspec: 7\n');
    const r = s.store.scan({ immediate: true, paths: s.store.pathsFor([{ dir: s.real, name: 'c.yaml' }])! });
    assert.equal(r.changed, false);
    assert.deepEqual(s.names(), ['a', 'b', 'c']);
    assert.deepEqual(
      s.store.invalidFiles().map((f) => f.file),
      [join(s.dir, 'c.yaml')],
    );
  });

  it('a named file that cannot be read is skipped and keeps its last good version, until it reads again', () => {
    const s = setup();
    const f = join(s.dir, 'a.yaml');
    const store = new PolicyStore(s.dir, { maxBytes: 1000, stableMs: 0 });
    store.scan({ immediate: true });
    writeFileSync(f, `${cnp('a2', 80)}#${'x'.repeat(1000)}\n`);
    store.scan({ immediate: true, paths: [f] });
    assert.deepEqual(
      store.skippedFiles().map((x) => x.file),
      [f],
    );
    assert.ok(store.policies().has('CiliumNetworkPolicy/shop/a'), 'the last good version stays');
    writeFileSync(f, cnp('a3', 80));
    store.scan({ immediate: true, paths: [f] });
    assert.deepEqual(store.skippedFiles(), [], 'read again: no longer skipped');
    assert.ok(store.policies().has('CiliumNetworkPolicy/shop/a3'));
  });

  const rows: Array<{
    name: string;
    make?: (dir: string) => void;
    events: (real: string) => Array<{ dir: string; name: string | null }>;
    want: string[] | undefined;
  }> = [
    { name: 'a policy file', events: (r) => [{ dir: r, name: 'a.yaml' }], want: ['a.yaml'] },
    {
      name: 'several events on one file, and a new one',
      events: (r) => [
        { dir: r, name: 'a.yaml' },
        { dir: r, name: 'a.yaml' },
        { dir: r, name: 'new.json' },
      ],
      want: ['a.yaml', 'a.yaml', 'new.json'],
    },
    { name: "an editor's hidden swap file", events: (r) => [{ dir: r, name: '.a.yaml.swp' }], want: [] },
    { name: 'a file that is no policy', events: (r) => [{ dir: r, name: 'README' }], want: [] },
    { name: 'an event without a name', events: (r) => [{ dir: r, name: null }], want: undefined },
    { name: 'a directory not walked', events: () => [{ dir: '/nowhere', name: 'a.yaml' }], want: undefined },
    {
      name: 'a new subdirectory',
      make: (d) => mkdirSync(join(d, 'sub')),
      events: (r) => [{ dir: r, name: 'sub' }],
      want: undefined,
    },
    {
      name: 'a directory named like a policy file',
      make: (d) => mkdirSync(join(d, 'odd.yaml')),
      events: (r) => [{ dir: r, name: 'odd.yaml' }],
      want: undefined,
    },
  ];
  for (const row of rows) {
    it(`pathsFor: ${row.name}`, () => {
      const s = setup();
      row.make?.(s.dir);
      const got = s.store.pathsFor(row.events(s.real));
      assert.deepEqual(
        got,
        row.want?.map((n) => join(s.dir, n)),
      );
    });
  }

  it('pathsFor: a subdirectory removed is a walk of the store', () => {
    const s = setup();
    mkdirSync(join(s.dir, 'sub'));
    writeFileSync(join(s.dir, 'sub', 'd.yaml'), cnp('d', 80));
    s.store.scan({ immediate: true });
    assert.deepEqual(s.names(), ['a', 'b', 'c', 'd']);
    rmSync(join(s.dir, 'sub'), { recursive: true });
    assert.equal(s.store.pathsFor([{ dir: s.real, name: 'sub' }]), undefined);
  });

  it('pathsFor: an event in a directory reached through a symlink names the path the walk used', () => {
    const s = setup();
    const target = join(root, `t${dirN++}`);
    mkdirSync(target);
    writeFileSync(join(target, 'e.yaml'), cnp('e', 80));
    symlinkSync(target, join(s.dir, 'linked'));
    s.store.scan({ immediate: true });
    assert.deepEqual(s.names(), ['a', 'b', 'c', 'e']);
    writeFileSync(join(target, 'e.yaml'), cnp('e2', 80));
    const paths = s.store.pathsFor([{ dir: realpathSync(target), name: 'e.yaml' }]);
    assert.deepEqual(paths, [join(s.dir, 'linked', 'e.yaml')]);
    s.store.scan({ immediate: true, paths: paths! });
    assert.deepEqual(s.names(), ['a', 'b', 'c', 'e2']);
  });
});
