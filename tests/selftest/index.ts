/**
 * `rlhf-kernels selftest`: every op on every available backend against its
 * float64 reference on fresh random inputs. Each op family adds its cases to
 * CASES (one file per family beside this one).
 */
import { type Device, info } from '../../lib/index.js';
import { ADVANTAGES_CASES } from './advantages.js';
import { PREFERENCE_CASES } from './preference.js';
import { calibrationCases } from './calibration.js';
import { PPO_CASES } from './ppo.js';
import { TOKEN_LOGPROBS_CASES } from './token_logprobs.js';

export interface SelftestResult {
  /** Largest error found, in the unit the case's tolerance uses. */
  error: number;
  tolerance: number;
  detail?: string;
}

export interface SelftestCase {
  op: string;
  /** What this case covers, e.g. "V=32000 bf16 entropy". */
  name: string;
  run(device: Device): SelftestResult | Promise<SelftestResult>;
}

export const CASES: SelftestCase[] = [
  ...calibrationCases,
  ...PREFERENCE_CASES,
  ...ADVANTAGES_CASES,
  ...PPO_CASES,
  ...TOKEN_LOGPROBS_CASES,
];

function devices(requested: string | undefined): Device[] {
  if (requested) return [requested as Device];
  return info().cuda.available ? ['cpu', 'cuda'] : ['cpu'];
}

/** Runs every case; prints a line per case; true when all passed. */
export async function runSelftest(opts: { device?: string | undefined }): Promise<boolean> {
  let failed = 0;
  let total = 0;
  console.log('selftest: ops against the float64 reference (error / tolerance)');
  for (const device of devices(opts.device)) {
    for (const c of CASES) {
      total++;
      let line: string;
      try {
        const r = await c.run(device);
        const ok = r.error <= r.tolerance && Number.isFinite(r.error);
        if (!ok) failed++;
        line = `${ok ? 'ok  ' : 'FAIL'} ${device.padEnd(6)} ${c.op.padEnd(24)} ${c.name.padEnd(34)} ${r.error.toExponential(2)} / ${r.tolerance.toExponential(2)}${r.detail ? '  ' + r.detail : ''}`;
      } catch (e) {
        failed++;
        line = `FAIL ${device.padEnd(6)} ${c.op.padEnd(24)} ${c.name.padEnd(34)} threw ${(e as Error).message}`;
      }
      console.log(line);
    }
  }
  console.log(failed === 0 ? `selftest: all ${total} cases passed` : `selftest: ${failed} of ${total} cases FAILED`);
  return failed === 0;
}
