// Test support: a CommandIO that keeps what a command printed and the exit code it set.

import type { CommandIO } from '../../policytest/cli-support.ts';

export type CapturedIO = CommandIO & { out: string; err: string; code: number | undefined };

export function capture(): CapturedIO {
  const io: CapturedIO = {
    out: '',
    err: '',
    code: undefined,
    stdout: (s: string) => {
      io.out += s;
    },
    stderr: (s: string) => {
      io.err += s;
    },
    setExitCode: (c: number) => {
      io.code = c;
    },
  };
  return io;
}
