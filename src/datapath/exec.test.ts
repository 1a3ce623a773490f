// run(): commands are spawned from a worker thread, never on the caller's (spawn() blocks its
// thread until the child exec'd), with the same results as spawning inline.

import assert from 'node:assert/strict';
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, describe, it, mock } from 'node:test';
import { DatapathError, run } from './exec.ts';

const ROWS: Array<{ name: string; cmd: string; args: string[]; input?: string; want: RegExp | object }> = [
  {
    name: 'stdout and exit 0',
    cmd: 'echo',
    args: ['hello'],
    want: { code: 0, stdout: 'hello\n', stderr: '' },
  },
  {
    name: 'input, stderr and an exit code',
    cmd: 'sh',
    args: ['-c', 'cat; echo oops >&2; exit 3'],
    input: 'piped',
    want: { code: 3, stdout: 'piped', stderr: 'oops\n' },
  },
  {
    name: 'a missing command is an exec-failed error',
    cmd: '/nonexistent/seawall-cmd',
    args: [],
    want: /ENOENT/,
  },
];

describe('run', () => {
  afterEach(() => {
    delete process.env.SEAWALL_EXEC_INLINE;
    mock.restoreAll();
    syncBuiltinESMExports();
  });

  for (const mode of ['worker', 'inline'] as const)
    for (const r of ROWS)
      it(`${mode}: ${r.name}`, async () => {
        if (mode === 'inline') process.env.SEAWALL_EXEC_INLINE = '1';
        if (r.want instanceof RegExp) {
          await assert.rejects(run(r.cmd, r.args, r.input), (e: unknown) => {
            assert.ok(e instanceof DatapathError);
            assert.equal(e.code, 'exec-failed');
            assert.match(e.message, r.want as RegExp);
            return true;
          });
        } else assert.deepEqual(await run(r.cmd, r.args, r.input), r.want);
      });

  it('spawns off the calling thread (inline, the baseline, spawns on it)', async () => {
    const spy = mock.method(childProcess, 'spawn');
    syncBuiltinESMExports();
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => run('echo', [String(i)])));
    assert.deepEqual(
      rs.map((x) => x.stdout),
      Array.from({ length: 8 }, (_, i) => `${i}\n`),
    );
    assert.equal(spy.mock.callCount(), 0, 'spawn ran on the calling thread');
    process.env.SEAWALL_EXEC_INLINE = '1';
    await run('true', []);
    assert.equal(spy.mock.callCount(), 1, 'the spy does not see spawn on this thread');
  });
});
