/** Which backends the tests run on: cpu always, cuda when a device is here. */
import { type Device, info } from '../../lib/index.js';

export const HAS_CUDA: boolean = (() => {
  try {
    return info().cuda.available;
  } catch {
    return false;
  }
})();

export const DEVICES: Device[] = HAS_CUDA ? ['cpu', 'cuda'] : ['cpu'];
