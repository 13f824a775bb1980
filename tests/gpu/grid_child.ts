/**
 * Child of grid_invariance.test.ts: every op family on cuda over fixed
 * inputs (one seed), shapes that span several blocks, tiles and chunks;
 * prints a SHA-256 of every output's bytes, in a fixed order, as JSON.
 */
import { createHash } from 'node:crypto';
import {
  type Device, type Tensor, dpoLoss, gae, groupAdvantages, pairwiseLoss, ppoPolicyLoss, ppoValueLoss,
  sequenceLogProbs, sequenceLogProbsBackward, tensor, tokenLogProbs, tokenLogProbsBackward, whiten,
} from '../../lib/index.js';
import { Rng } from '../helpers/random.js';

const device: Device = 'cuda';
const rng = new Rng(20261127);
const hash = createHash('sha256');
const add = (...ts: (Tensor | undefined)[]): void => {
  for (const t of ts) if (t) hash.update(Buffer.from((t.toArray()).buffer));
};
const floats = (shape: number[], scale = 1, shift = 0) =>
  tensor(rng.normals(shape.reduce((a, b) => a * b, 1), scale, shift), shape, { device });
const mask = (shape: number[], p: number) =>
  tensor(rng.mask(shape.reduce((a, b) => a * b, 1), p), shape, { dtype: 'uint8', device });

// Token log-probs: rows of several 8192-logit chunks, both dtypes' paths.
{
  const rows = 23, V = 20011;
  const logits = floats([rows, V], 3);
  const targets = tensor(rng.ints(rows, 0, V), [rows], { device });
  const f = tokenLogProbs(logits, targets, { entropy: true, temperature: 0.8 });
  const g = tokenLogProbsBackward(logits, targets, {
    lse: f.lse, entropy: f.entropy, gradLogprobs: floats([rows]), gradEntropy: floats([rows]),
  }, { temperature: 0.8 });
  add(f.logprobs, f.lse, f.entropy, g);
}
// Advantages: rows longer than one GAE tile, more row groups than blocks.
{
  const B = 67, T = 4500;
  const r = gae(floats([B, T]), floats([B, T]), {
    gamma: 0.99, lambda: 0.95, mask: mask([B, T], 0.9), dones: mask([B, T], 0.01), lastValues: floats([B]),
  });
  add(r.advantages, r.returns);
  add(whiten(floats([B, T], 2, 1), { mask: mask([B, T], 0.8) }));
  add(groupAdvantages(floats([4096], 1), { groupSize: 16, estimator: 'rloo' }));
}
// PPO: more tiles than resident blocks, every aggregation.
for (const aggregation of ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'] as const) {
  const B = 37, T = 3001;
  const lp = floats([B, T], 0.3, -1);
  const p = ppoPolicyLoss(lp, floats([B, T], 0.3, -1), floats([B, T]), {
    mask: mask([B, T], 0.8), aggregation, dualClip: 3, refLogprobs: floats([B, T], 0.3, -1), klCoef: 0.05,
    entropy: floats([B, T], 1, 2), entropyCoef: 0.01,
  });
  add(p.loss, p.gradLogprobs, p.gradEntropy, p.clipFraction, p.clipFractionLower, p.approxKl, p.kl);
  const v = ppoValueLoss(floats([B, T]), floats([B, T]), floats([B, T]), { mask: mask([B, T], 0.8), clip: 0.2, aggregation });
  add(v.loss, v.gradValues, v.clipFraction);
}
// Preference: one block, several blocks combined by the last one.
for (const B of [700, 9000, 40000]) {
  const r = pairwiseLoss(floats([B]), floats([B]), { margin: floats([B], 0.1), labelSmoothing: 0.05, centerCoef: 0.01 });
  add(r.loss, r.gradChosen, r.gradRejected, r.accuracy, r.meanMargin, r.chosenReward, r.rejectedReward);
  const d = dpoLoss(floats([B]), floats([B]), floats([B]), floats([B]), { beta: 0.1, kind: 'ipo' });
  add(d.loss, d.gradChosen, d.gradRejected, d.accuracy, d.meanMargin, d.chosenReward, d.rejectedReward);
}
{
  const B = 41, T = 2049, m = mask([B, T], 0.7);
  add(sequenceLogProbs(floats([B, T]), m, { reduce: 'mean' }), sequenceLogProbsBackward(floats([B]), m, { reduce: 'sum' }));
}
console.log(JSON.stringify({ sha256: hash.digest('hex') }));
