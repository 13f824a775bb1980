/**
 * Float64 reference of the token log-prob family, written as the obvious
 * loop. With `round = f32` every intermediate is rounded to float32: that is
 * the naive float32 run the tolerance rule compares kernels with.
 */
import { type Round, f64 } from '../helpers/tolerance.js';

export interface TokenLogProbsRefOptions {
  temperature?: number;
  ignoreIndex?: number;
}

export interface TokenLogProbsRef {
  logprobs: Float64Array;
  lse: Float64Array;
  entropy: Float64Array;
}

/**
 * logits: rows x V values (half types already decoded), targets: rows ids.
 * Conventions (as documented in lib/ops/token_logprobs.ts): ignored rows give
 * logprob 0 and entropy 0; -inf logits carry no mass and no entropy term; a
 * row of only -inf gives lse -inf, logprob NaN, entropy NaN; NaN or +inf
 * logits make the row NaN.
 */
export function tokenLogProbsRef(
  logits: ArrayLike<number>, targets: ArrayLike<number>, vocab: number, opts: TokenLogProbsRefOptions = {}, round: Round = f64,
): TokenLogProbsRef {
  const T = opts.temperature ?? 1;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const rows = targets.length;
  const out = { logprobs: new Float64Array(rows), lse: new Float64Array(rows), entropy: new Float64Array(rows) };
  const z = new Float64Array(vocab);
  for (let r = 0; r < rows; r++) {
    let m = -Infinity;
    for (let j = 0; j < vocab; j++) {
      z[j] = round(logits[r * vocab + j]! / T);
      m = Number.isNaN(z[j]!) || Number.isNaN(m) ? NaN : Math.max(m, z[j]!);
    }
    const y = targets[r]!;
    const ignored = y === ignoreIndex;
    if (m === -Infinity) {
      out.lse[r] = -Infinity;
      out.logprobs[r] = ignored ? 0 : NaN;
      out.entropy[r] = ignored ? 0 : NaN;
      continue;
    }
    let s = 0;
    for (let j = 0; j < vocab; j++) s = round(s + round(Math.exp(round(z[j]! - m))));
    const lse = round(m + round(Math.log(s)));
    out.lse[r] = lse;
    if (ignored) continue;
    // Against the max, like the entropy below: z - lse would lose log s to
    // the rounding of lse once |z| dwarfs it (at 1e20 a uniform row's -log V).
    out.logprobs[r] = round(round(z[y]! - m) - round(Math.log(s)));
    // H = -sum p log p = log s - sum p (z - m), against the max (lse - sum p z
    // would cancel: at |z| = 1e8 it loses the entropy to the rounding of lse).
    let pd = 0;
    for (let j = 0; j < vocab; j++) {
      if (z[j] === -Infinity) continue; // p = 0: 0 * -inf counts as 0
      const d = round(z[j]! - m);
      pd = round(pd + round(round(round(Math.exp(d)) / s) * d));
    }
    out.entropy[r] = round(round(Math.log(s)) - pd);
  }
  return out;
}

export interface TokenLogProbsGradsRef {
  lse: ArrayLike<number>;
  gradLogprobs?: ArrayLike<number>;
  entropy?: ArrayLike<number>;
  gradEntropy?: ArrayLike<number>;
}

/**
 * dlogits = (gLp (onehot(y) - p) - gH p (log p + H)) / T with p = exp(z - lse),
 * using the lse and H handed in (as the kernels do). Ignored rows, rows with
 * lse = -inf (only -inf logits) and -inf logits get 0; a NaN among a row's
 * inputs makes the whole row NaN.
 */
export function tokenLogProbsBackwardRef(
  logits: ArrayLike<number>, targets: ArrayLike<number>, vocab: number, grads: TokenLogProbsGradsRef,
  opts: TokenLogProbsRefOptions = {}, round: Round = f64,
): Float64Array {
  const T = opts.temperature ?? 1;
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const rows = targets.length;
  const out = new Float64Array(rows * vocab);
  for (let r = 0; r < rows; r++) {
    const y = targets[r]!;
    const lse = grads.lse[r]!;
    if (y === ignoreIndex || lse === -Infinity) continue;
    const gLp = grads.gradLogprobs?.[r] ?? 0;
    const gH = grads.gradEntropy?.[r] ?? 0;
    const H = gH !== 0 ? grads.entropy![r]! : 0;
    for (let j = 0; j < vocab; j++) {
      const z = round(logits[r * vocab + j]! / T);
      if (z === -Infinity) {
        // p = 0: the gradient is 0, or NaN when the row's inputs hold a NaN.
        out[r * vocab + j] = 0 * (lse + gLp + gH * H + gH);
        continue;
      }
      const logp = round(z - lse);
      const p = round(Math.exp(logp));
      const onehot = j === y ? 1 : 0;
      const g = round(round(gLp * round(onehot - p)) - round(gH * round(p * round(logp + H))));
      out[r * vocab + j] = round(g / T);
    }
  }
  return out;
}
