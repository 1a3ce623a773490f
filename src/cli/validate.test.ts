import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Command } from 'commander';
import type { Issue } from '../policy-api/issue.ts';
import type { LoadResult } from '../policy-api/types.ts';
import { type LoadPolicies, registerValidate, type ValidateDeps } from './validate.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIX = 'src/cli/testdata/validate';

// ------------------------------------------------------------ in-process, with a fake loader

function issue(severity: Issue['severity'], code: string, file = 'p.yaml'): Issue {
  return { code, severity, path: 'spec', pos: { file, line: 2, column: 3 }, message: `${code}!` };
}

class LoadError extends Error {
  override name = 'LoadError';
  code = 'ENOENT';
}

interface Run {
  code: number | undefined;
  out: string;
  err: string;
  written: Map<string, string>;
  seen: { paths?: string[]; lint?: boolean | undefined; stdin?: string };
}

async function runWith(args: string[], load: LoadPolicies, extra: Partial<ValidateDeps> = {}): Promise<Run> {
  const run: Run = { code: undefined, out: '', err: '', written: new Map(), seen: {} };
  const program = new Command().exitOverride().configureOutput({
    writeOut: (s) => {
      run.out += s;
    },
    writeErr: (s) => {
      run.err += s;
    },
  });
  registerValidate(program, {
    load: async () => async (paths, opts) => {
      run.seen.paths = paths;
      run.seen.lint = opts?.lint;
      if (opts?.stdin) {
        let s = '';
        for await (const c of opts.stdin) s += c.toString();
        run.seen.stdin = s;
      }
      return load(paths, opts);
    },
    readStdin: async () => Buffer.from('kind: x\nspec: 1\n'),
    readFile: (f) => (f === 'p.yaml' ? Buffer.from('a: 1\nbad:  here\n') : undefined),
    writeFile: (f, t) => run.written.set(f, t),
    stdout: (s) => {
      run.out += s;
    },
    stderr: (s) => {
      run.err += s;
    },
    isTTY: false,
    env: {},
    cwd: ROOT,
    setExitCode: (c) => {
      run.code = c;
    },
    ...extra,
  });
  try {
    await program.parseAsync(['node', 'seawall', 'validate', ...args]);
  } catch (e) {
    run.code = (e as { exitCode?: number }).exitCode === 1 ? 2 : ((e as { exitCode?: number }).exitCode ?? 2);
  }
  return run;
}

const result = (issues: Issue[], files = ['p.yaml']): LoadResult => ({
  policies: [],
  others: [],
  rejected: 0,
  issues,
  files,
});

interface FakeRow {
  name: string;
  args: string[];
  issues?: Issue[];
  throws?: Error;
  extra?: Partial<ValidateDeps>;
  code: number;
  check?: (r: Run) => void;
}

const FAKE_ROWS: FakeRow[] = [
  {
    name: 'no issues exits 0',
    args: ['p.yaml'],
    issues: [],
    code: 0,
    check: (r) => assert.match(r.out, /0 errors/),
  },
  {
    name: 'an error exits 1 and quotes the line',
    args: ['p.yaml'],
    issues: [issue('error', 'unknown-field')],
    code: 1,
    check: (r) => {
      assert.match(r.out, /^p\.yaml:2:3 error unknown-field unknown-field! \(spec\)$/m);
      assert.match(r.out, /^ 2 \| bad: {2}here\n {3}\| {3}\^$/m);
    },
  },
  { name: 'a warning exits 0', args: ['p.yaml'], issues: [issue('warning', 'w')], code: 0 },
  {
    name: 'a warning with --strict exits 1',
    args: ['--strict', 'p.yaml'],
    issues: [issue('warning', 'w')],
    code: 1,
  },
  {
    name: 'an I/O error exits 2',
    args: ['nope.yaml'],
    throws: new LoadError('cannot read nope.yaml: no such file'),
    code: 2,
    check: (r) => assert.match(r.err, /cannot read nope\.yaml/),
  },
  { name: 'an unknown format exits 2', args: ['-o', 'xml', 'p.yaml'], issues: [], code: 2 },
  { name: 'no path exits 2', args: [], issues: [], code: 2 },
  {
    name: 'json output',
    args: ['-o', 'json', 'p.yaml'],
    issues: [issue('error', 'e'), issue('warning', 'w')],
    code: 1,
    check: (r) => {
      const j = JSON.parse(r.out);
      assert.deepEqual([j.files, j.errors, j.warnings, j.issues.length], [1, 1, 1, 2]);
    },
  },
  {
    name: 'sarif output',
    args: ['--output', 'sarif', 'p.yaml'],
    issues: [issue('error', 'e')],
    code: 1,
    check: (r) => assert.equal(JSON.parse(r.out).runs[0].results[0].ruleId, 'e'),
  },
  {
    name: '--junit writes a report beside the output',
    args: ['--junit', 'out.xml', 'p.yaml'],
    issues: [issue('error', 'e')],
    code: 1,
    check: (r) => assert.match(r.written.get('out.xml') ?? '', /<failure message="1 error, 0 warnings"/),
  },
  {
    name: '--junit write failure exits 2',
    args: ['--junit', '/nope/out.xml', 'p.yaml'],
    issues: [],
    extra: {
      writeFile: () => {
        throw new Error('EACCES');
      },
    },
    code: 2,
    check: (r) => assert.match(r.err, /cannot write JUnit report: EACCES/),
  },
  {
    name: '--no-lint reaches the loader',
    args: ['--no-lint', 'p.yaml'],
    issues: [],
    code: 0,
    check: (r) => assert.equal(r.seen.lint, false),
  },
  {
    name: 'lint is on by default',
    args: ['p.yaml'],
    issues: [],
    code: 0,
    check: (r) => assert.equal(r.seen.lint, true),
  },
  {
    name: 'stdin reaches the loader and is quoted',
    args: ['-'],
    issues: [issue('error', 'e', '-')],
    code: 1,
    check: (r) => {
      assert.equal(r.seen.stdin, 'kind: x\nspec: 1\n');
      assert.match(r.out, / 2 \| spec: 1/);
    },
  },
  {
    name: 'colour on a terminal',
    args: ['p.yaml'],
    issues: [issue('error', 'e')],
    extra: { isTTY: true },
    code: 1,
    check: (r) => assert.match(r.out, /\x1b\[31m/),
  },
  {
    name: '--no-color on a terminal',
    args: ['--no-color', 'p.yaml'],
    issues: [issue('error', 'e')],
    extra: { isTTY: true },
    code: 1,
    check: (r) => assert.doesNotMatch(r.out, /\x1b/),
  },
  {
    name: 'NO_COLOR on a terminal',
    args: ['p.yaml'],
    issues: [issue('error', 'e')],
    extra: { isTTY: true, env: { NO_COLOR: '1' } },
    code: 1,
    check: (r) => assert.doesNotMatch(r.out, /\x1b/),
  },
];

describe('validate command (fake loader)', () => {
  for (const row of FAKE_ROWS) {
    test(row.name, async () => {
      const r = await runWith(
        row.args,
        async () => {
          if (row.throws) throw row.throws;
          return result(row.issues ?? []);
        },
        row.extra,
      );
      assert.equal(r.code, row.code, `exit code; stdout:\n${r.out}\nstderr:\n${r.err}`);
      row.check?.(r);
    });
  }
});

// ------------------------------------------------------------ the real command, spawned

interface SpawnRow {
  name: string;
  args: string[];
  stdin?: string;
  code: number;
  stdout?: RegExp[];
  stderr?: RegExp;
  check?: (out: string, dir: string) => void;
}

const TMP = mkdtempSync(join(tmpdir(), 'seawall-validate-'));

const SPAWN_ROWS: SpawnRow[] = [
  {
    name: 'valid file',
    args: [`${FIX}/valid.yaml`],
    code: 0,
    stdout: [/^1 file, 1 policy: 0 errors, 0 warnings$/m],
  },
  {
    name: 'directory with a non-policy object',
    args: [`${FIX}/dir`],
    code: 0,
    stdout: [/^2 files, 2 policies \(1 other object passed over\): 0 errors/m],
  },
  {
    name: 'unknown field is an error at its line',
    args: [`${FIX}/invalid.yaml`],
    code: 1,
    stdout: [/invalid\.yaml:18:11 error unknown-field /, /^ 18 \| {11}pathRegex:/m, /1 error/],
  },
  {
    name: 'warning passes',
    args: [`${FIX}/warning.yaml`],
    code: 0,
    stdout: [/warning header-value-looks-like-regex/, /0 errors, 1 warning$/m],
  },
  { name: 'warning fails with --strict', args: ['--strict', `${FIX}/warning.yaml`], code: 1 },
  {
    name: 'warning gone with --no-lint',
    args: ['--no-lint', '--strict', `${FIX}/warning.yaml`],
    code: 0,
    stdout: [/0 errors, 0 warnings/],
  },
  {
    name: 'json of several paths',
    args: ['-o', 'json', `${FIX}/valid.yaml`, `${FIX}/invalid.yaml`],
    code: 1,
    check: (out) => {
      const j = JSON.parse(out);
      assert.equal(j.files, 2);
      assert.equal(j.errors, 1);
      assert.equal(j.issues[0].code, 'unknown-field');
      assert.equal(j.issues[0].line, 18);
    },
  },
  {
    name: 'sarif uri is relative',
    args: ['-o', 'sarif', `${FIX}/invalid.yaml`],
    code: 1,
    check: (out) => {
      const loc = JSON.parse(out).runs[0].results[0].locations[0].physicalLocation;
      assert.equal(loc.artifactLocation.uri, `${FIX}/invalid.yaml`);
      assert.deepEqual(loc.region, { startLine: 18, startColumn: 11 });
    },
  },
  {
    name: 'junit file',
    args: ['--junit', join(TMP, 'r.xml'), `${FIX}/valid.yaml`, `${FIX}/invalid.yaml`],
    code: 1,
    check: () => {
      const xml = readFileSync(join(TMP, 'r.xml'), 'utf8');
      assert.match(xml, /<testsuite name="seawall validate" tests="2" failures="1"/);
    },
  },
  {
    name: 'stdin',
    args: ['-'],
    stdin: readFileSync(join(ROOT, FIX, 'invalid.yaml'), 'utf8'),
    code: 1,
    stdout: [/:18:11 error unknown-field/, / 18 \| {11}pathRegex/],
  },
  { name: 'missing file is an I/O error', args: [`${FIX}/nope.yaml`], code: 2, stderr: /nope\.yaml/ },
  {
    name: 'item 5: /dev/zero is refused at once, not read until 4 GB',
    args: ['/dev/zero'],
    code: 1,
    stdout: [/\/dev\/zero:1:1 error not-regular-file/, /is a character device, not a regular file/],
  },
  { name: 'bad output format', args: ['-o', 'xml', `${FIX}/valid.yaml`], code: 2, stderr: /xml/ },
  { name: 'help', args: ['--help'], code: 0, stdout: [/Examples:/, /seawall validate -o sarif/] },
];

describe('seawall validate (spawned)', () => {
  for (const row of SPAWN_ROWS) {
    test(row.name, () => {
      const r = spawnSync(process.execPath, ['bin/seawall.js', 'validate', ...row.args], {
        cwd: ROOT,
        input: row.stdin ?? '',
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
      });
      assert.equal(r.status, row.code, `exit code; stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      for (const re of row.stdout ?? []) assert.match(r.stdout, re);
      if (row.stderr) assert.match(r.stderr, row.stderr);
      row.check?.(r.stdout, TMP);
    });
  }
});
