/** Selftest cases of the token log-prob family (see tests/selftest/index.ts). */
import {
  type Device, fromBFloat16, fromFloat16, tensor, toBFloat16, toFloat16, tokenLogProbs, tokenLogProbsBackward,
} from '../../lib/index.js';
import { Rng } from '../helpers/random.js';
import { EPS, errorStats, f32 } from '../helpers/tolerance.js';
import { tokenLogProbsBackwardRef, tokenLogProbsRef } from '../reference/token_logprobs.js';
import type { SelftestCase, SelftestResult } from './index.js';

type LogitDType = 'float32' | 'bfloat16' | 'float16';

function encode(dtype: LogitDType, v: Float32Array): Float32Array | Uint16Array {
  return dtype === 'bfloat16' ? toBFloat16(v) : dtype === 'float16' ? toFloat16(v) : v;
}
function decode(dtype: LogitDType, v: ArrayLike<number>): Float32Array {
  return dtype === 'bfloat16' ? fromBFloat16(v as Uint16Array) : dtype === 'float16' ? fromFloat16(v as Uint16Array) : Float32Array.from(v);
}

/**
 * Worst of several outputs under the tolerance rule: 4 x naive float32 error
 * + a floor of 16 float32 ulps (2 ulps of a half output) of the largest |ref|.
 */
function judge(parts: { out: ArrayLike<number>; ref: ArrayLike<number>; naive: ArrayLike<number>; unit?: number }[]): SelftestResult {
  let worst: SelftestResult = { error: 0, tolerance: 1 };
  for (const { out, ref, naive, unit = EPS.float32 } of parts) {
    let top = 1;
    for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i]!)) top = Math.max(top, Math.abs(ref[i]!));
    const tolerance = 4 * errorStats(naive, ref).maxAbs + (unit === EPS.float32 ? 16 : 2) * unit * top;
    const s = errorStats(out, ref);
    const error = s.mismatchedNonFinite ? Infinity : s.maxAbs;
    if (error / tolerance > worst.error / worst.tolerance) worst = { error, tolerance };
  }
  return worst;
}

function forwardCase(V: number, rows: number, dtype: LogitDType, temperature: number): SelftestCase {
  return {
    op: 'tokenLogProbs',
    name: `V=${V} ${dtype} T=${temperature} entropy`,
    run(device: Device) {
      const rng = new Rng();
      const data = encode(dtype, rng.normals(rows * V, 3));
      const values = decode(dtype, data);
      const y = rng.ints(rows, 0, V);
      y[0] = -100;
      const out = tokenLogProbs(tensor(data, [rows, V], { dtype, device }), tensor(y, [rows], { device }), { temperature, entropy: true });
      const ref = tokenLogProbsRef(values, y, V, { temperature });
      const naive = tokenLogProbsRef(values, y, V, { temperature }, f32);
      return judge((['logprobs', 'lse', 'entropy'] as const).map((k) => ({ out: out[k]!.toArray(), ref: ref[k], naive: naive[k] })));
    },
  };
}

function backwardCase(V: number, rows: number, dtype: LogitDType): SelftestCase {
  return {
    op: 'tokenLogProbsBackward',
    name: `V=${V} ${dtype} entropy term`,
    run(device: Device) {
      const rng = new Rng();
      const data = encode(dtype, rng.normals(rows * V, 3));
      const values = decode(dtype, data);
      const y = rng.ints(rows, 0, V);
      const logits = tensor(data, [rows, V], { dtype, device });
      const targets = tensor(y, [rows], { device });
      const fwd = tokenLogProbs(logits, targets, { entropy: true });
      const gLp = rng.normals(rows), gH = rng.normals(rows);
      const g = tokenLogProbsBackward(logits, targets, {
        lse: fwd.lse, entropy: fwd.entropy, gradLogprobs: tensor(gLp, [rows], { device }), gradEntropy: tensor(gH, [rows], { device }),
      });
      const grads = { lse: fwd.lse.toArray(), entropy: fwd.entropy!.toArray(), gradLogprobs: gLp, gradEntropy: gH };
      const ref = tokenLogProbsBackwardRef(values, y, V, grads);
      const naive = decode(dtype, encode(dtype, Float32Array.from(tokenLogProbsBackwardRef(values, y, V, grads, {}, f32))));
      return judge([{ out: decode(dtype, g.toArray()), ref, naive, unit: EPS[dtype] }]);
    },
  };
}

export const TOKEN_LOGPROBS_CASES: SelftestCase[] = [
  forwardCase(32000, 8, 'bfloat16', 1),
  forwardCase(50257, 4, 'float32', 0.7),
  backwardCase(1025, 16, 'float16'),
  backwardCase(151936, 2, 'bfloat16'),
];
