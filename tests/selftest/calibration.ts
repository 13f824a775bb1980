/** Selftest of the calibration family: readBandwidth's checksum against the float64 sum. */
import { tensor } from '../../lib/index.js';
import { readBandwidth } from '../../lib/ops/calibration.js';
import { Rng } from '../helpers/random.js';
import { readBandwidthRef, readBandwidthTolerance } from '../reference/calibration.js';
import type { SelftestCase } from './index.js';

export const calibrationCases: SelftestCase[] = [
  {
    op: 'readBandwidth',
    name: 'n=1M+3 normal',
    run(device) {
      const x = new Rng().normals((1 << 20) + 3);
      const sum = readBandwidth(tensor(x, undefined, { device })).item();
      return { error: Math.abs(sum - readBandwidthRef(x)), tolerance: readBandwidthTolerance(x) };
    },
  },
];
