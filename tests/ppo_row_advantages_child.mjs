// Child process of ppo.test.ts, one per ISA (RLHF_KERNELS_ISA): ppoPolicyLoss
// with one advantage per row ([B]) against the same advantages written out
// [B, T], over shapes whose rows start anywhere in a vector (T below, at and
// past every ISA's width, and odd). The outputs must be the same bits.
// Prints JSON { isa, cases, differ: [case names] }.
import * as rk from '../dist/lib/index.js';

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const floats = (n, lo, hi) => Float32Array.from({ length: n }, () => lo + (hi - lo) * random());
const bits = (t) => (t ? Array.from(new Uint32Array(Float32Array.from(t.toArray()).buffer)) : []);

const AGGREGATIONS = ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'];
const differ = [];
let cases = 0;
for (const [B, T] of [[1, 1], [5, 1], [3, 3], [7, 15], [4, 16], [6, 17], [3, 33], [2, 1000], [9, 7], [40, 5]]) {
  for (const aggregation of AGGREGATIONS) {
    const n = B * T;
    const perRow = floats(B, -2, 2);
    const spread = Float32Array.from({ length: n }, (_, i) => perRow[Math.floor(i / T)]);
    const mask = Uint8Array.from({ length: n }, (_, i) => (Math.floor(i / T) === 1 ? 0 : random() < 0.8 ? 1 : 0));
    const t = (a, dtype) => rk.tensor(a, [B, T], dtype ? { dtype } : {});
    const opts = {
      mask: t(mask, 'uint8'), aggregation, clipLow: 0.2, clipHigh: 0.28, dualClip: 3,
      refLogprobs: t(floats(n, -3, 0)), klCoef: 0.05, entropy: t(floats(n, 0, 2)), entropyCoef: 0.01,
      ...(cases % 3 === 0 ? { normalizer: 2 * n + 1 } : {}),
    };
    const lp = t(floats(n, -3, 0)), old = t(floats(n, -3, 0));
    const a = rk.ppoPolicyLoss(lp, old, rk.tensor(perRow, [B]), opts);
    const b = rk.ppoPolicyLoss(lp, old, t(spread), opts);
    cases++;
    for (const key of ['loss', 'gradLogprobs', 'gradEntropy', 'clipFraction', 'clipFractionLower', 'approxKl', 'kl'])
      if (bits(a[key]).join() !== bits(b[key]).join()) differ.push(`B=${B} T=${T} ${aggregation} ${key}`);
  }
}
console.log(JSON.stringify({ isa: rk.info().cpu.isa, cases, differ }));
