// Running the tools the datapath drives (ip, nft, ping) with typed failures. Every command that
// touches networking names its namespace explicitly: nothing here runs in the machine's own.

import { spawn } from 'node:child_process';
import { SeawallError } from '../core/errors.ts';

/** A kernel-facing step failed: a command, the nft session, a socket, an agent request. */
export class DatapathError extends SeawallError {
  override name = 'DatapathError';
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.on('error', (e) => reject(new DatapathError('exec-failed', `${cmd}: ${e.message}`)));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.on('error', () => {});
    p.stdin.end(input ?? '');
  });
}

/** Runs and throws a DatapathError with the tool's message when it fails. */
export async function must(
  cmd: string,
  args: string[],
  input?: string,
  code = 'command-failed',
): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    throw new DatapathError(code, `${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
  return r.stdout;
}
