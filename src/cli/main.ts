// The seawall command: commander wiring only. Each command lives in its own module and
// registers itself here; this is the one place that exits the process.

import { Command } from 'commander';
import { registerAgent } from './agent.ts';
import { registerDemo } from './demo.ts';
import { registerDiff } from './diff.ts';
import { registerEndpoint } from './endpoint.ts';
import { registerExec } from './exec.ts';
import { registerFqdn } from './fqdn.ts';
import { registerGenerate } from './generate.ts';
import { registerKvstoreLists } from './kvstore.ts';
import { registerMatrix } from './matrix.ts';
import { registerObserve } from './observe.ts';
import { registerPolicyShow } from './policy-show.ts';
import { registerTest } from './test.ts';
import { registerTrace } from './trace.ts';
import { registerUI } from './ui.ts';
import { registerValidate } from './validate.ts';

const program = new Command();
program
  .name('seawall')
  .description(
    'Cilium network policy: validate, explain, test and enforce CiliumNetworkPolicy and NetworkPolicy',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

// Commands register below (one import per command module).
const registrars: Array<(p: Command) => void> = [];
// -- command registrars --
registrars.push(registerTest);
registrars.push(registerTrace);
registrars.push(registerMatrix);
registrars.push(registerPolicyShow);
registrars.push(registerValidate);
registrars.push(registerAgent);
registrars.push(registerExec);
registrars.push(registerDemo);
registrars.push(registerObserve);
registrars.push(registerFqdn);
registrars.push(registerGenerate);
registrars.push(registerDiff);
registrars.push(registerEndpoint);
registrars.push(registerKvstoreLists);
registrars.push(registerUI);

for (const r of registrars) r(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const code = (e as { exitCode?: number; code?: string }).exitCode;
  if (typeof code === 'number') process.exit(code === 1 ? 2 : code);
  process.stderr.write(`seawall: ${(e as Error).message}\n`);
  process.exit(2);
}
