// `seawall validate PATH...`: load policies (files, directories, `-` for stdin), report every
// issue in the chosen format, and set the exit status: 0 valid, 1 errors (or warnings with
// --strict), 2 usage or I/O error.

import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { type Command, Option } from 'commander';
import { MAX_INPUT_BYTES, readRegularFile } from '../core/files.ts';
import { crossPolicyLint } from '../lint/cross-policy.ts';
import { countBySeverity } from '../policy-api/issue.ts';
import { LoadError, loadPolicies, sortIssues } from '../policy-api/load.ts';
import type { LoadResult } from '../policy-api/types.ts';
import { formatHuman, formatJson, formatJunit, formatSarif, type ReportInput } from '../report/index.ts';

export type LoadPolicies = typeof loadPolicies;

/** What the command touches outside itself; tests replace parts of it. */
export interface ValidateDeps {
  load: () => Promise<LoadPolicies>;
  readStdin: () => Promise<Buffer>;
  readFile: (file: string) => Buffer | undefined;
  writeFile: (file: string, text: string) => void;
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  cwd: string;
  setExitCode: (code: number) => void;
}

const defaultDeps: ValidateDeps = {
  load: async () => loadPolicies,
  readStdin: async () => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of process.stdin) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size > MAX_INPUT_BYTES) break; // the loader reports the oversize; keep memory bounded
    }
    return Buffer.concat(chunks);
  },
  readFile: (file) => {
    // Only to quote source lines: the same reader as the loader (no FIFOs, devices, huge files).
    const r = readRegularFile(file);
    return r.ok ? r.bytes : undefined;
  },
  writeFile: (file, text) => writeFileSync(file, text),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
  cwd: process.cwd(),
  setExitCode: (code) => {
    process.exitCode = code;
  },
};

export const EXIT = { valid: 0, invalid: 1, usage: 2 } as const;

type OutputFormat = 'human' | 'json' | 'sarif';

interface ValidateOptions {
  output: OutputFormat;
  junit?: string;
  strict?: boolean;
  lint: boolean;
  color: boolean;
}

/** Names a loader may give to standard input. */
const STDIN_NAMES = new Set(['-', '<stdin>', 'stdin', '/dev/stdin']);

const EXAMPLES = `
Exit status: 0 valid, 1 errors found (or warnings, with --strict), 2 usage or I/O error.

Examples:
  # Every policy under a directory (its YAML and JSON files)
  $ seawall validate policies/

  # Warnings fail too, for CI
  $ seawall validate --strict policies/ k8s/netpol.yaml

  # From a pipe: validate what kustomize renders (non-policy objects are passed over)
  $ kustomize build overlays/prod | seawall validate -

  # Upload findings to GitHub code scanning
  $ seawall validate -o sarif policies/ > seawall.sarif

  # Machine-readable issues, e.g. only the codes
  $ seawall validate -o json policies/ | jq -r '.issues[].code'

  # JUnit report for the CI test tab, human output on the console
  $ seawall validate --junit reports/seawall.xml policies/

  # Schema and semantic checks only (no lint warnings)
  $ seawall validate --no-lint policies/
`;

export function registerValidate(program: Command, overrides: Partial<ValidateDeps> = {}): void {
  const deps: ValidateDeps = { ...defaultDeps, ...overrides };
  program
    .command('validate')
    .description(
      'validate and lint CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy and NetworkPolicy files',
    )
    .argument('<paths...>', 'files or directories to read; - reads standard input')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['human', 'json', 'sarif'])
        .default('human'),
    )
    .option('--junit <file>', 'also write a JUnit XML report to FILE')
    .option('--strict', 'warnings fail validation too (exit 1)')
    .option('--no-lint', 'skip lint warnings; report only what Cilium would reject')
    .option('--no-color', 'no colour in human output (also: NO_COLOR env, or output not a terminal)')
    .addHelpText('after', EXAMPLES)
    .action(async (paths: string[], opts: ValidateOptions) => {
      deps.setExitCode(await runValidate(paths, opts, deps));
    });
}

async function runValidate(paths: string[], opts: ValidateOptions, deps: ValidateDeps): Promise<number> {
  let stdinText: string | undefined;
  const loadOpts: { stdin?: NodeJS.ReadableStream; lint?: boolean } = { lint: opts.lint };
  let result: LoadResult;
  try {
    if (paths.includes('-')) {
      // Read it here so the human report can quote its lines too.
      const bytes = await deps.readStdin();
      // Past the cap the loader refuses it; quoting its first "line" would flood the terminal.
      stdinText = bytes.length > MAX_INPUT_BYTES ? undefined : decodeUtf8(bytes);
      loadOpts.stdin = Readable.from([bytes]);
    }
    const loadPolicies = await deps.load();
    result = await loadPolicies(paths, loadOpts);
  } catch (e) {
    if (!isLoadError(e)) throw e;
    deps.stderr(`seawall validate: ${(e as Error).message}\n`);
    return EXIT.usage;
  }

  // Findings that need every policy in view; conflicting L7 parsers are errors even with --no-lint.
  const cross = crossPolicyLint(result.policies).filter((i) => opts.lint || i.severity === 'error');
  if (cross.length > 0) {
    const issues = [...result.issues, ...cross];
    sortIssues(issues);
    result = { ...result, issues };
  }

  const input: ReportInput = {
    files: result.files,
    policies: result.policies.length + result.rejected,
    rejected: result.rejected,
    others: result.others.length,
    issues: result.issues,
  };
  const sources = new Map<string, string | undefined>();
  const getSource = (file: string): string | undefined => {
    if (STDIN_NAMES.has(file) && stdinText !== undefined) return stdinText;
    if (!sources.has(file)) {
      const bytes = deps.readFile(file);
      sources.set(file, bytes === undefined ? undefined : decodeUtf8(bytes));
    }
    return sources.get(file);
  };

  switch (opts.output) {
    case 'json':
      deps.stdout(formatJson(input));
      break;
    case 'sarif':
      deps.stdout(formatSarif(input, { cwd: deps.cwd, toolVersion: '0.1.0' }));
      break;
    default: {
      const noColor = deps.env.NO_COLOR !== undefined && deps.env.NO_COLOR !== '';
      deps.stdout(formatHuman(input, { getSource, color: opts.color && deps.isTTY && !noColor }));
    }
  }

  if (opts.junit !== undefined) {
    try {
      deps.writeFile(opts.junit, formatJunit(input, { strict: opts.strict === true }));
    } catch (e) {
      deps.stderr(`seawall validate: cannot write JUnit report: ${(e as Error).message}\n`);
      return EXIT.usage;
    }
  }

  const { errors, warnings } = countBySeverity(result.issues);
  return errors > 0 || (opts.strict === true && warnings > 0) ? EXIT.invalid : EXIT.valid;
}

/** The loader's I/O failures (LoadError, with a code); anything else is a bug and propagates. */
function isLoadError(e: unknown): boolean {
  return e instanceof LoadError || (e instanceof Error && e.name === 'LoadError');
}

/** Text for quoting source lines; undefined when the bytes are not UTF-8 (the loader says why). */
function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    return undefined;
  }
}
