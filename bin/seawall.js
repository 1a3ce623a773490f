#!/usr/bin/env node
// Entry point: loads the TypeScript CLI through tsx, so a checkout needs no build step.
// `seawall agent` runs with the agent's V8 flags (src/agent/node-flags.ts): when this process
// lacks them, it runs itself again with them as its child and passes signals and the exit on.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register();

const REEXEC = 'SEAWALL_AGENT_REEXEC';
const args = process.argv.slice(2);
const isAgent = args[0] === 'agent' && args[1] !== 'status' && args[1] !== 'help';

if (process.env[REEXEC] === '1') {
  delete process.env[REEXEC]; // not for the agent's own children
  // The wrapper below went away without passing a signal on: it was SIGKILLed (or crashed).
  // `kill -9` on the agent's pid must stay a crash, as without the wrapper: no graceful stop
  // (which would release the kvstore lease and take the datapath down), never a lingering agent.
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.channel?.unref();
  await import('../src/cli/main.ts');
} else {
  const { AGENT_NODE_FLAGS } = isAgent
    ? await import('../src/agent/node-flags.ts')
    : { AGENT_NODE_FLAGS: [] };
  const missing = AGENT_NODE_FLAGS.filter((f) => !process.execArgv.includes(f));
  if (missing.length === 0) await import('../src/cli/main.ts');
  else {
    const child = spawn(
      process.execPath,
      [...missing, ...process.execArgv, fileURLToPath(import.meta.url), ...args],
      { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [REEXEC]: '1' } },
    );
    // a signal sent to this pid is the agent's (a terminal's Ctrl-C reaches both: the agent
    // says it is already stopping)
    const forward = (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, forward);
    child.on('error', (e) => {
      process.stderr.write(`seawall agent: cannot start ${process.execPath}: ${e.message}\n`);
      process.exitCode = 1;
    });
    child.on('exit', (code, signal) => {
      if (signal !== null) {
        // die of the same signal, as the agent did (the shell sees 128 + n)
        for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.off(sig, forward);
        process.kill(process.pid, signal);
      } else process.exitCode = code ?? 1;
    });
  }
}
