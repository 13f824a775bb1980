/** Shared by the GPU suites (node:test; run with `node --test dist/tests/gpu/`). */
import { info } from '../../lib/index.js';

/** node:test's `skip` for a suite that needs cuda: false where a device is here, else why not. */
export const skip: false | string = (() => {
  try {
    const cuda = info().cuda;
    return cuda.available ? false : `cuda unavailable: ${cuda.reason}`;
  } catch (e) {
    return `cuda unavailable: ${(e as Error).message}`;
  }
})();

/** The largest finite |a[i]|. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
