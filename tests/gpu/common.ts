/** Shared by the GPU suites (node:test; run with `node --test dist/tests/gpu/`). */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
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

/** A full garbage collection (node --test runs without --expose-gc). */
export const collectGarbage: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();
