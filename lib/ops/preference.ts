/**
 * Pairwise preference losses (reward models, DPO / IPO / SLiC) and the
 * masked per-sequence log-prob sums that feed DPO.
 *
 * A DPO step chains: tokenLogProbs -> sequenceLogProbs -> dpoLoss ->
 * sequenceLogProbsBackward (with gradChosen / gradRejected) ->
 * tokenLogProbsBackward.
 */
import { type Device, defaultDevice } from '../device.js';
import { runOp } from '../stream.js';
import { type Float32Tensor, Tensor } from '../tensor.js';
import {
  OpScope, type VectorInput, expectChoice, expectInvertible, expectNumber, expectOptions, expectRank, expectShape, expectTensor, sameDevice,
} from '../validate.js';

/** The per-pair loss: Bradley–Terry log-sigmoid, SLiC hinge, or IPO squared gap. */
export type PreferenceKind = 'sigmoid' | 'hinge' | 'ipo';
export type SequenceReduce = 'sum' | 'mean';

export type { VectorInput };

export interface PairwiseLossOptions {
  /** float32 [B], subtracted from beta * d (for 'ipo': from d). Default none (0). */
  margin?: VectorInput;
  /** > 0; default 1. */
  beta?: number;
  /** cDPO-style conservative smoothing s in [0, 0.5), 'sigmoid' only; default 0. */
  labelSmoothing?: number;
  /** Default 'sigmoid'. */
  kind?: PreferenceKind;
  /** >= 0; adds centerCoef * mean((chosen + rejected)^2) (reward centering). Default 0. */
  centerCoef?: number;
  /**
   * > 0: the loss's means (and so the gradients) divide by it instead of B:
   * pass the global batch's pair count when its micro-batches' losses are
   * summed. The statistics (accuracy, meanMargin, the rewards) stay this
   * batch's means. Default B.
   */
  normalizer?: number;
}

export interface DpoLossOptions {
  /** > 0; default 0.1 (the DPO paper's and TRL's default; for 'ipo' it is tau). */
  beta?: number;
  /** In [0, 0.5), 'sigmoid' only; default 0. */
  labelSmoothing?: number;
  /** Default 'sigmoid'. */
  kind?: PreferenceKind;
  /**
   * > 0: the loss's means (and so the gradients) divide by it instead of B:
   * pass the global batch's pair count when its micro-batches' losses are
   * summed. The statistics (accuracy, meanMargin, the rewards) stay this
   * batch's means. Default B.
   */
  normalizer?: number;
}

export interface PreferenceLossResult {
  /** 0-d: mean over the pairs of the per-pair loss (plus the centering term). */
  loss: Float32Tensor;
  /** [B]: d loss / d chosen (dpoLoss: / d policyChosen). */
  gradChosen: Float32Tensor;
  /** [B]: d loss / d rejected (dpoLoss: / d policyRejected). */
  gradRejected: Float32Tensor;
  /** 0-d: share of pairs with d > 0. */
  accuracy: Float32Tensor;
  /** 0-d: mean of d. */
  meanMargin: Float32Tensor;
  /**
   * 0-d: the chosen side's mean reward: mean(chosen) for pairwiseLoss;
   * beta * mean(policyChosen - refChosen) for dpoLoss (DPO's implicit reward,
   * TRL's `rewards/chosen`).
   */
  chosenReward: Float32Tensor;
  /** 0-d: the same for the rejected side (TRL's `rewards/rejected`). */
  rejectedReward: Float32Tensor;
}

export interface SequenceLogProbsOptions {
  /** 'sum' (default) or 'mean' over the row's valid tokens. */
  reduce?: SequenceReduce;
}

const KINDS: readonly PreferenceKind[] = ['sigmoid', 'hinge', 'ipo'];
const KIND_CODE: Record<PreferenceKind, number> = { sigmoid: 0, hinge: 1, ipo: 2 };
const REDUCES: readonly SequenceReduce[] = ['sum', 'mean'];
const REDUCE_CODE: Record<SequenceReduce, number> = { sum: 0, mean: 1 };

interface LossScalars {
  beta: number;
  labelSmoothing: number;
  kind: PreferenceKind;
  centerCoef: number;
  normalizer: number;  // 0: the batch's own B
}

function lossScalars(op: string, o: Partial<PairwiseLossOptions>, defaultBeta: number): LossScalars {
  const beta = expectNumber(op, 'beta', o.beta, defaultBeta, { above: 0 });
  const labelSmoothing = expectNumber(op, 'labelSmoothing', o.labelSmoothing, 0, { min: 0, below: 0.5 });
  const kind = expectChoice(op, 'kind', o.kind, KINDS, 'sigmoid');
  // Smoothing mixes in the flipped label's log-sigmoid: 'hinge' and 'ipo' have none to mix.
  if (labelSmoothing > 0 && kind !== 'sigmoid')
    throw new RangeError(`${op}: labelSmoothing applies to kind 'sigmoid' only, got ${labelSmoothing} with kind '${kind}'`);
  return {
    beta,
    labelSmoothing,
    kind,
    centerCoef: expectNumber(op, 'centerCoef', o.centerCoef, 0, { min: 0 }),
    normalizer: expectInvertible(op, 'normalizer', o.normalizer, 0, { above: 0 }),
  };
}

/**
 * The [B] inputs of a loss as float32 tensors on one device: that of the
 * first Tensor given, else the default device (host arrays are copied there
 * for this call). Every input is required but those named `optional`.
 */
function pairInputs(scope: OpScope, op: string, named: Record<string, unknown>, optional: readonly string[] = []): Record<string, Tensor> {
  const first = Object.values(named).find((v): v is Tensor => v instanceof Tensor);
  const device: Device = first ? first.device : defaultDevice();
  const tensors: Record<string, Tensor> = {};
  for (const [name, value] of Object.entries(named)) {
    if (value === undefined && optional.includes(name)) continue;
    tensors[name] = scope.vector(op, name, value, 'float32', device);
  }
  sameDevice(op, tensors);
  const [firstName, lead] = Object.entries(tensors)[0]!;
  if (lead.size === 0) throw new RangeError(`${op}: ${firstName} expected at least one pair, got shape [0]`);
  for (const [name, t] of Object.entries(tensors)) expectShape(op, name, t, lead.shape);
  return tensors;
}

interface LossTensors {
  chosen: Tensor;
  rejected: Tensor;
  refChosen?: Tensor | undefined;
  refRejected?: Tensor | undefined;
  margin?: Tensor | undefined;
}

function runLoss(scope: OpScope, t: LossTensors, s: LossScalars): PreferenceLossResult {
  const device = t.chosen.device;
  const out: PreferenceLossResult = {
    loss: scope.output([], 'float32', device),
    gradChosen: scope.output(t.chosen.shape, 'float32', device),
    gradRejected: scope.output(t.chosen.shape, 'float32', device),
    accuracy: scope.output([], 'float32', device),
    meanMargin: scope.output([], 'float32', device),
    chosenReward: scope.output([], 'float32', device),
    rejectedReward: scope.output([], 'float32', device),
  };
  runOp('preferenceLoss', t.chosen.ordinal, {
    count: t.chosen.size,
    chosen: t.chosen._storage(),
    rejected: t.rejected._storage(),
    refChosen: t.refChosen?._storage(),
    refRejected: t.refRejected?._storage(),
    margin: t.margin?._storage(),
    gradChosen: out.gradChosen._storage(),
    gradRejected: out.gradRejected._storage(),
    loss: out.loss._storage(),
    accuracy: out.accuracy._storage(),
    meanMargin: out.meanMargin._storage(),
    chosenReward: out.chosenReward._storage(),
    rejectedReward: out.rejectedReward._storage(),
    beta: s.beta,
    labelSmoothing: s.labelSmoothing,
    centerCoef: s.centerCoef,
    kind: KIND_CODE[s.kind],
    normalizer: s.normalizer,
  });
  return out;
}

/**
 * Pairwise preference loss of a reward model over B pairs of scores.
 *
 * With d = chosen - rejected, x = beta * d - margin and s = labelSmoothing:
 * - 'sigmoid' (Bradley–Terry): l = -(1 - s) log σ(x) - s log σ(-x), in softplus
 *   form (finite at any |x|);
 * - 'hinge': l = relu(1 - x) (subgradient 0 at x = 1);
 * - 'ipo': l = (d - margin - 1 / (2 beta))^2.
 * labelSmoothing > 0 with 'hinge' or 'ipo' is a RangeError (they have no
 * flipped label to mix in).
 *
 * loss = mean(l) + centerCoef * mean((chosen + rejected)^2); the gradients are
 * those of `loss`. accuracy = mean(d > 0), meanMargin = mean(d),
 * chosenReward = mean(chosen), rejectedReward = mean(rejected). The means are
 * deterministic (fixed partition, ordered combine). B = 0 is a RangeError.
 * With `normalizer` N, the loss's means are sums / N (micro-batches given
 * the global batch's N add up to its loss and gradients).
 */
export function pairwiseLoss(chosen: VectorInput, rejected: VectorInput, opts?: PairwiseLossOptions): PreferenceLossResult {
  const op = 'pairwiseLoss';
  const o = expectOptions<PairwiseLossOptions>(op, opts, ['margin', 'beta', 'labelSmoothing', 'kind', 'centerCoef', 'normalizer']);
  const scalars = lossScalars(op, o, 1);
  return OpScope.run((scope) => {
    const t = pairInputs(scope, op, { chosen, rejected, margin: o.margin }, ['margin']);
    return runLoss(scope, { chosen: t.chosen!, rejected: t.rejected!, margin: t.margin }, scalars);
  });
}

/**
 * DPO loss over B pairs of sequence log-probs (see sequenceLogProbs), with
 * d = (policyChosen - refChosen) - (policyRejected - refRejected) and the
 * per-pair losses of pairwiseLoss (no margin, no centering). The gradients
 * are wrt policyChosen and policyRejected (the refs' are their negatives).
 * The same statistics, with the rewards DPO's implicit ones:
 * chosenReward = beta * mean(policyChosen - refChosen), rejectedReward
 * likewise (TRL's rewards/chosen and rewards/rejected; their difference is
 * TRL's rewards/margins, beta * meanMargin up to rounding). B = 0 is a
 * RangeError.
 *
 * beta defaults to 0.1, as in the DPO paper and TRL's DPOConfig (pairwiseLoss
 * keeps 1, the plain Bradley–Terry model). 'ipo' is (d - 1 / (2 beta))^2 as in
 * Azar et al. eq. 17 and TRL; TRL feeds it per-token mean log-probs, i.e.
 * sequenceLogProbs with reduce 'mean'.
 */
export function dpoLoss(policyChosen: VectorInput, policyRejected: VectorInput, refChosen: VectorInput,
  refRejected: VectorInput, opts?: DpoLossOptions): PreferenceLossResult {
  const op = 'dpoLoss';
  const o = expectOptions<DpoLossOptions>(op, opts, ['beta', 'labelSmoothing', 'kind', 'normalizer']);
  const scalars = lossScalars(op, o, 0.1);
  return OpScope.run((scope) => {
    const t = pairInputs(scope, op, { policyChosen, policyRejected, refChosen, refRejected });
    return runLoss(scope, { chosen: t.policyChosen!, rejected: t.policyRejected!, refChosen: t.refChosen, refRejected: t.refRejected }, scalars);
  });
}

/**
 * Per-sequence log-prob: out[b] = sum over t with mask[b, t] != 0 of
 * tokenLogprobs[b, t]; with reduce 'mean', divided by that count. 0 for a row
 * without valid tokens. tokenLogprobs float32 [B, T], mask uint8 [B, T]
 * (any nonzero value counts as 1). Returns float32 [B].
 */
export function sequenceLogProbs(tokenLogprobs: Tensor, mask: Tensor, opts?: SequenceLogProbsOptions): Float32Tensor {
  const op = 'sequenceLogProbs';
  const o = expectOptions<SequenceLogProbsOptions>(op, opts, ['reduce']);
  const reduce = expectChoice(op, 'reduce', o.reduce, REDUCES, 'sum');
  const lp = expectTensor(op, 'tokenLogprobs', tokenLogprobs, ['float32']);
  expectRank(op, 'tokenLogprobs', lp, 2);
  const m = expectTensor(op, 'mask', mask, ['uint8']);
  expectShape(op, 'mask', m, lp.shape);
  sameDevice(op, { tokenLogprobs: lp, mask: m });
  const [rows, steps] = lp.shape as [number, number];
  return OpScope.run((scope) => {
    const out = scope.output([rows], 'float32', lp.device);
    runOp('sequenceLogProbs', lp.ordinal, {
      rows, steps, reduce: REDUCE_CODE[reduce], tokenLogprobs: lp._storage(), mask: m._storage(), out: out._storage(),
    });
    return out;
  });
}

/**
 * Gradient of sequenceLogProbs wrt tokenLogprobs: out[b, t] = gradSequence[b]
 * where mask[b, t] != 0 (divided by the row's count for 'mean'), else exactly
 * 0. gradSequence float32 [B] (a Tensor or host array), mask uint8 [B, T].
 * Returns float32 [B, T].
 */
export function sequenceLogProbsBackward(gradSequence: VectorInput, mask: Tensor, opts?: SequenceLogProbsOptions): Float32Tensor {
  const op = 'sequenceLogProbsBackward';
  const o = expectOptions<SequenceLogProbsOptions>(op, opts, ['reduce']);
  const reduce = expectChoice(op, 'reduce', o.reduce, REDUCES, 'sum');
  const m = expectTensor(op, 'mask', mask, ['uint8']);
  expectRank(op, 'mask', m, 2);
  const [rows, steps] = m.shape as [number, number];
  return OpScope.run((scope) => {
    const g = scope.vector(op, 'gradSequence', gradSequence, 'float32', m.device);
    sameDevice(op, { mask: m, gradSequence: g });
    expectShape(op, 'gradSequence', g, [rows]);
    const out = scope.output([rows, steps], 'float32', m.device);
    runOp('sequenceLogProbsBackward', m.ordinal, {
      rows, steps, reduce: REDUCE_CODE[reduce], gradSequence: g._storage(), mask: m._storage(), out: out._storage(),
    });
    return out;
  });
}
