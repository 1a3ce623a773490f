// The servers a live test starts in pods' namespaces are child processes; this stops them.

import type { ChildProcess } from 'node:child_process';

/** SIGTERM to each child still running; resolves once every one has exited. */
export function stopChildren(procs: readonly ChildProcess[]): Promise<void> {
  return Promise.all(
    procs.map(
      (c) =>
        new Promise<void>((r) => {
          if (c.exitCode !== null || c.signalCode !== null) return r();
          c.once('exit', () => r());
          c.kill('SIGTERM');
        }),
    ),
  ).then(() => {});
}
