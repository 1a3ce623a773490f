// The real engine as every consumer's default: kept apart so that code taking an EngineFactory can
// be tested on a stand-in without loading the engine.

import { PolicyEngine } from './engine.ts';
import type { EngineFactory } from './types.ts';

export const defaultEngineFactory: EngineFactory = (config, deps) => new PolicyEngine(config, deps);
