// The real engine as the runner's default: kept apart so the runner itself can be tested on a stub.

import { PolicyEngine } from '../policy/engine.ts';
import type { EngineFactory } from './runner.ts';

export const defaultEngineFactory: EngineFactory = (config) => new PolicyEngine(config);
