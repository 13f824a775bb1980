/** Shared by the GPU suites (node:test; run with `node --test dist/tests/gpu/`). */
import { info } from '../../lib/index.js';
// One base seed per test file, as vitest's setup does: replay a failure with RK_SEED=<seed>.
import '../helpers/setup.js';

/** node:test's `skip` for a suite that needs cuda: false where a device is here, else why not. */
export const skip: false | string = (() => {
  try {
    const cuda = info().cuda;
    return cuda.available ? false : `cuda unavailable: ${cuda.reason}`;
  } catch (e) {
    return `cuda unavailable: ${(e as Error).message}`;
  }
})();

export { maxAbs } from '../helpers/tolerance.js';
