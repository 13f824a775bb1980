/**
 * PPO losses with their gradients and statistics, in one pass:
 * {@link ppoPolicyLoss} (clipped surrogate, dual clip, KL and entropy terms)
 * and {@link ppoValueLoss} (clipped value loss).
 *
 * Conventions follow verl's `compute_policy_loss`, `compute_value_loss`,
 * `kl_penalty` and `agg_loss` (verl/trainer/ppo/core_algos.py), with
 * gradients equal to what torch autograd gives for that formulation.
 */
import { ordinalOf } from '../device.js';
import { runOp } from '../stream.js';
import { type Float32Tensor, Tensor } from '../tensor.js';
import {
  OpScope, type VectorInput, expectChoice, expectInvertible, expectNumber, expectOptions, expectRank, expectShape, expectTensor,
  sameDevice,
} from '../validate.js';

/**
 * How per-token losses L become one, over the mask M (B' = rows with at
 * least one valid token):
 * - `'token-mean'`: sum(M L) / sum(M)
 * - `'seq-mean-token-sum'`: sum_b(sum_t M L) / B'
 * - `'seq-mean-token-mean'`: sum_b(sum_t M L / sum_t M) / B'
 * - `'seq-mean-token-sum-norm'`: sum(M L) / (B T), T the padded length (Dr. GRPO)
 *
 * These are verl's `agg_loss` modes; TRL's GRPOTrainer calls token-mean
 * 'bnpo', seq-mean-token-mean 'grpo' and seq-mean-token-sum-norm 'dr_grpo'
 * (TRL's dr_grpo divides by B × max_completion_length: pass that as
 * `normalizer` when T is shorter).
 * The seq-mean modes divide by B', where verl and TRL divide by every row
 * B; the two agree when no row is empty.
 *
 * The `normalizer` option replaces the denominator (sum(M), B', B', B T)
 * with a count the caller gives: with gradient accumulation or data
 * parallelism, the global batch's count (its valid tokens for token-mean,
 * its non-empty rows for the seq-mean modes, its rows × T for sum-norm), so
 * that the micro-batches' losses and gradients add up to the global batch's.
 */
export type Aggregation = 'token-mean' | 'seq-mean-token-sum' | 'seq-mean-token-mean' | 'seq-mean-token-sum-norm';

/**
 * KL estimators of d = logprob - refLogprob (Schulman's k1, k2, k3; verl's
 * kl_penalty 'kl', 'mse', 'low_var_kl'): k1 = d, k2 = d²/2,
 * k3 = exp(-d) + d - 1 (TRL's GRPO KL term), with d clamped to ±20.
 * verl's low_var_kl also clamps k3 itself to [-10, 10], which this does
 * not: where k3 > 10 (d < -2.62: a policy far below the reference)
 * verl's KL term is the constant 10 with gradient 0, this one keeps
 * growing (142.4 at d = -5, gradient -147.4), as TRL's does.
 */
export type KlEstimator = 'k1' | 'k2' | 'k3';

const AGGREGATIONS: readonly Aggregation[] = ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'];
const KL_ESTIMATORS: readonly KlEstimator[] = ['k1', 'k2', 'k3'];

export interface PpoPolicyLossOptions {
  /**
   * uint8 [B, T]; nonzero = a valid token. Default: every token valid.
   * Prompt and padding tokens belong at 0 here: a target equal to
   * tokenLogProbs' ignoreIndex gives logprob 0 but still counts in the
   * loss's mean unless masked.
   */
  mask?: Tensor;
  /** Lower clip: the ratio is clipped to [1 - clipLow, 1 + clipHigh]. Default 0.2, in [0, 1]. */
  clipLow?: number;
  /** Upper clip (DAPO's asymmetric "clip-higher"). Default clipLow, >= 0. */
  clipHigh?: number;
  /** Dual clip c > 1 (e.g. 3): for A < 0 the loss is at most -A c. Default off. */
  dualClip?: number;
  /** Default 'token-mean'. */
  aggregation?: Aggregation;
  /**
   * The aggregation's denominator, > 0, in place of this batch's own (see
   * {@link Aggregation}): pass the global batch's count when its
   * micro-batches' losses are summed. The statistics stay this batch's
   * token means. Default: this batch's count. (On cuda a given normalizer
   * also spares the kernel its count of the mask and its grid barrier,
   * unless seq-mean-token-mean needs the counts of rows over 1024 tokens;
   * so does a mask made on the host, by tensor() or to(), whose count its
   * upload took.)
   */
  normalizer?: number;
  /** float32 [B, T] log-probs of the reference policy: adds the KL term and the `kl` statistic. */
  refLogprobs?: Tensor;
  /** Weight of the KL term, >= 0. Default 0; nonzero needs refLogprobs. */
  klCoef?: number;
  /** Default 'k3' (low variance, non-negative). */
  klEstimator?: KlEstimator;
  /** float32 [B, T] per-token entropy H: adds -entropyCoef H and returns gradEntropy. */
  entropy?: Tensor;
  /** Weight of the entropy bonus. Default 0; nonzero needs entropy. */
  entropyCoef?: number;
  /**
   * 'token' (default): each token's ratio is its own, exp(logprob - oldLogprob).
   * 'sequence' (GSPO, Zheng et al. 2025; TRL's importance_sampling_level
   * 'sequence', verl's loss_mode 'gspo'): every valid token of a row takes
   * the row's ratio exp(mean over its valid tokens of logprob - oldLogprob),
   * clamped to ±20 like a token's (verl clamps GSPO's at +10). The gradient
   * reaches each token through its own term, as in verl's gspo and the
   * paper's GSPO-token (d ratio / d logprob = ratio): with advantages equal
   * along each row (`advantages` [B], GRPO's) that is the exact gradient of
   * the loss; with per-token advantages it is GSPO-token's, which weighs a
   * token by its own advantage. clipFraction counts tokens (a clipped row
   * counts all of its valid tokens); approxKl stays the token-level mean.
   * One more read of logprobs, oldLogprobs and mask (a first pass, a second
   * launch on cuda).
   */
  importanceSampling?: ImportanceSampling;
}

/** Whose ratio a token's surrogate uses: its own, or its sequence's (GSPO). */
export type ImportanceSampling = 'token' | 'sequence';
const IMPORTANCE_SAMPLING: readonly ImportanceSampling[] = ['token', 'sequence'];

/**
 * `G` and `K`: Tensor when entropy and refLogprobs were given (gradEntropy
 * and kl are then there), undefined when not, either when not known.
 */
export interface PpoPolicyLossResult<G extends Tensor | undefined = Float32Tensor | undefined,
  K extends Tensor | undefined = Float32Tensor | undefined> {
  /** 0-d: the aggregated loss. */
  loss: Float32Tensor;
  /** [B, T]: d loss / d logprobs (0 where masked); chains into tokenLogProbsBackward. */
  gradLogprobs: Float32Tensor;
  /** [B, T]: d loss / d entropy = -entropyCoef × the token's aggregation weight; when entropy is given. */
  gradEntropy: G;
  /** 0-d: share of valid tokens whose clipped term is strictly the larger. */
  clipFraction: Float32Tensor;
  /** 0-d: share of valid tokens with A < 0 whose dual-clip bound is strictly below the clipped loss. */
  clipFractionLower: Float32Tensor;
  /** 0-d: token mean of exp(old - new) - (old - new) - 1 (the log-ratio clamped to ±20). */
  approxKl: Float32Tensor;
  /** 0-d: token mean of the KL estimator; when refLogprobs is given. */
  kl: K;
}

export interface PpoValueLossOptions {
  /** uint8 [B, T]; nonzero = a valid token. Default: every token valid. */
  mask?: Tensor;
  /** Value clip c >= 0: values are clipped to oldValues ± c. Default: no clipping. */
  clip?: number;
  /** Default 'token-mean'. */
  aggregation?: Aggregation;
  /**
   * The aggregation's denominator, > 0, in place of this batch's own (see
   * {@link Aggregation}): pass the global batch's count when its
   * micro-batches' losses are summed. The statistics stay this batch's
   * token means. Default: this batch's count. (On cuda a given normalizer
   * also spares the kernel its count of the mask and its grid barrier,
   * unless seq-mean-token-mean needs the counts of rows over 1024 tokens.)
   */
  normalizer?: number;
}

export interface PpoValueLossResult {
  /** 0-d: the aggregated loss. */
  loss: Float32Tensor;
  /** [B, T]: d loss / d values (0 where masked). */
  gradValues: Float32Tensor;
  /** 0-d: share of valid tokens whose clipped term is strictly the larger (0 without clip). */
  clipFraction: Float32Tensor;
}

const POLICY_OPTIONS: (keyof PpoPolicyLossOptions)[] = [
  'mask', 'clipLow', 'clipHigh', 'dualClip', 'aggregation', 'normalizer', 'refLogprobs', 'klCoef', 'klEstimator', 'entropy', 'entropyCoef',
  'importanceSampling',
];
const VALUE_OPTIONS: (keyof PpoValueLossOptions)[] = ['mask', 'clip', 'aggregation', 'normalizer'];

/** [B, T] float32 inputs of one shape; returns [B, T]. */
function expectInputs(op: string, names: readonly string[], values: readonly unknown[]): [number, number] {
  const first = expectTensor(op, names[0]!, values[0], ['float32']);
  expectRank(op, names[0]!, first, 2);
  for (let i = 1; i < names.length; i++) expectShape(op, names[i]!, expectTensor(op, names[i]!, values[i], ['float32']), first.shape);
  return [first.shape[0]!, first.shape[1]!];
}

function optionalTensor(op: string, name: string, value: unknown, dtype: 'float32' | 'uint8', shape: readonly number[]): Tensor | undefined {
  if (value === undefined) return undefined;
  const t = expectTensor(op, name, value, [dtype]);
  expectShape(op, name, t, shape);
  return t;
}

/**
 * On cuda, the normalizer a mask's upload counted (Tensor._rowCounts), when
 * none is given: the kernel then skips its own count of the mask and the
 * grid barrier after it. The same number the kernel would count (exact
 * integers), so the same bits. 0 when unknown, or when the count is 0 (the
 * kernel's own path handles an empty batch).
 */
function countedNormalizer(mask: Tensor | undefined, aggregation: Aggregation, device: string): number {
  const counts = device === 'cpu' ? undefined : mask?._rowCounts;
  if (!counts || aggregation === 'seq-mean-token-sum-norm') return 0;  // (that one divides by B T: no count)
  let n = 0;
  for (const c of counts) n += aggregation === 'token-mean' ? c : c > 0 ? 1 : 0;  // sum(M), or B'
  return n;
}

/** ppoPolicyLoss (below) with `entropy` and `refLogprobs` given: `gradEntropy` and `kl` are Tensors. */
export function ppoPolicyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantages: VectorInput,
  opts: PpoPolicyLossOptions & { entropy: Tensor; refLogprobs: Tensor }): PpoPolicyLossResult<Float32Tensor, Float32Tensor>;
/** ppoPolicyLoss (below) with `entropy` given: `gradEntropy` is a Tensor. */
export function ppoPolicyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantages: VectorInput,
  opts: PpoPolicyLossOptions & { entropy: Tensor }): PpoPolicyLossResult<Float32Tensor, undefined>;
/** ppoPolicyLoss (below) with `refLogprobs` given: `kl` is a Tensor. */
export function ppoPolicyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantages: VectorInput,
  opts: PpoPolicyLossOptions & { refLogprobs: Tensor }): PpoPolicyLossResult<undefined, Float32Tensor>;
/**
 * The PPO clipped policy loss over [B, T] tokens, its gradient wrt
 * `logprobs` and its statistics, in one pass (one kernel launch on cuda).
 * `advantages` is [B, T], or [B]: one per row, the same for each of its
 * tokens (GRPO's, from groupAdvantages), read without being spread out in
 * memory; the results are the same bits as with it written out [B, T].
 * [B] may also be host data (a typed array or number[]), copied to the
 * log-probs' device for the call.
 *
 * Per valid token, with r = exp(clamp(logprobs - oldLogprobs, -20, 20))
 * (with importanceSampling 'sequence', the row's mean log-ratio in place of
 * the token's: GSPO) and A the advantage:
 *
 *     L = max(-A r, -A clip(r, 1 - clipLow, 1 + clipHigh))
 *     L = min(L, -A dualClip)                      where A < 0 and dualClip is set
 *     L += klCoef kl(d) - entropyCoef H            d = logprobs - refLogprobs
 *
 * then aggregated over the mask (see {@link Aggregation}). With no valid
 * token at all, the loss, gradients and statistics are 0. Statistics are
 * token means over the mask whatever the aggregation.
 *
 * Gradients are torch autograd's for this formulation: the clamps pass the
 * gradient inside their bounds, ends included, and none outside (so a
 * token with |log-ratio| > 20 gets no gradient from the surrogate, and
 * with k3 one with |d| > 20 none from the KL term, whose d is clamped the
 * same way); at a tie, max and min split the gradient half and half.
 * Masked positions get gradient 0 and never reach the loss, even when they
 * hold NaN. A NaN in a valid token makes the loss NaN.
 *
 * @throws TypeError for a wrong type or dtype, a missing refLogprobs when
 *   klCoef ≠ 0 or a missing entropy when entropyCoef ≠ 0.
 * @throws RangeError for a wrong shape, mixed devices, an option out of
 *   range (negative clips, dualClip ≤ 1, normalizer ≤ 0 or not finite,
 *   unknown aggregation or estimator).
 */
export function ppoPolicyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantages: VectorInput, opts?: PpoPolicyLossOptions): PpoPolicyLossResult;
export function ppoPolicyLoss(logprobs: Tensor, oldLogprobs: Tensor, advantagesIn: VectorInput, opts?: PpoPolicyLossOptions): PpoPolicyLossResult {
  const op = 'ppoPolicyLoss';
  return OpScope.run((scope) => {
    const o = expectOptions<PpoPolicyLossOptions>(op, opts, POLICY_OPTIONS);
    const [rows, steps] = expectInputs(op, ['logprobs', 'oldLogprobs'], [logprobs, oldLogprobs]);
    const shape = [rows, steps];
    // [B, T], or [B]: one per row (GRPO's group advantages), spread over its
    // tokens; a host array is [B], copied to the log-probs' device.
    const advantages = advantagesIn instanceof Tensor
      ? expectTensor(op, 'advantages', advantagesIn, ['float32'])
      : scope.vector(op, 'advantages', advantagesIn, 'float32', logprobs.device, [rows]);
    const advantagePerRow = advantages.shape.length === 1;
    if (!advantagePerRow) expectShape(op, 'advantages', advantages, shape);
    else if (advantages.shape[0] !== rows)
      throw new RangeError(`${op}: advantages expected shape [${rows}, ${steps}] or [${rows}] (one per row), got [${advantages.shape[0]}]`);
    const mask = optionalTensor(op, 'mask', o.mask, 'uint8', shape);
    const refLogprobs = optionalTensor(op, 'refLogprobs', o.refLogprobs, 'float32', shape);
    const entropy = optionalTensor(op, 'entropy', o.entropy, 'float32', shape);
    const device = sameDevice(op, { logprobs, oldLogprobs, advantages, mask, refLogprobs, entropy });

    const clipLow = expectNumber(op, 'clipLow', o.clipLow, 0.2, { min: 0, max: 1 });
    const clipHigh = expectNumber(op, 'clipHigh', o.clipHigh, clipLow, { min: 0 });
    const dualClip = o.dualClip === undefined ? 0 : expectNumber(op, 'dualClip', o.dualClip, 0, { above: 1 });
    const aggregation = expectChoice(op, 'aggregation', o.aggregation, AGGREGATIONS, 'token-mean');
    const normalizer = expectInvertible(op, 'normalizer', o.normalizer, 0, { above: 0 }) || countedNormalizer(mask, aggregation, device);
    const klCoef = expectNumber(op, 'klCoef', o.klCoef, 0, { min: 0 });
    const klEstimator = expectChoice(op, 'klEstimator', o.klEstimator, KL_ESTIMATORS, 'k3');
    const entropyCoef = expectNumber(op, 'entropyCoef', o.entropyCoef, 0);
    const sequenceRatio = expectChoice(op, 'importanceSampling', o.importanceSampling, IMPORTANCE_SAMPLING, 'token') === 'sequence';
    if (klCoef !== 0 && !refLogprobs)
      throw new TypeError(`${op}: refLogprobs expected a float32 Tensor [${rows}, ${steps}] when klCoef is ${klCoef}, got undefined`);
    if (entropyCoef !== 0 && !entropy)
      throw new TypeError(`${op}: entropy expected a float32 Tensor [${rows}, ${steps}] when entropyCoef is ${entropyCoef}, got undefined`);

    const scalar = (): Float32Tensor => scope.output([], 'float32', device);
    const gradEntropy = entropy ? scope.output(shape, 'float32', device) : undefined;
    const kl = refLogprobs ? scalar() : undefined;
    const sequenceLogRatio = sequenceRatio ? scope.scratch([rows], 'float32', device) : undefined;
    const out = {
      loss: scalar(),
      gradLogprobs: scope.output(shape, 'float32', device),
      clipFraction: scalar(),
      clipFractionLower: scalar(),
      approxKl: scalar(),
      ...(gradEntropy && { gradEntropy }),
      ...(kl && { kl }),
    };
    runOp(op, ordinalOf(device), {
      rows, steps,
      logprobs: logprobs._storage(), oldLogprobs: oldLogprobs._storage(), advantages: advantages._storage(),
      mask: mask?._storage(), refLogprobs: refLogprobs?._storage(), entropy: entropy?._storage(),
      gradLogprobs: out.gradLogprobs._storage(), gradEntropy: gradEntropy?._storage(),
      loss: out.loss._storage(), clipFraction: out.clipFraction._storage(),
      clipFractionLower: out.clipFractionLower._storage(), approxKl: out.approxKl._storage(), kl: kl?._storage(),
      clipLow, clipHigh, dualClip, klCoef, entropyCoef,
      aggregation: AGGREGATIONS.indexOf(aggregation), normalizer, klEstimator: KL_ESTIMATORS.indexOf(klEstimator), advantagePerRow,
      sequenceRatio, sequenceLogRatio: sequenceLogRatio?._storage(),
    });
    return out as PpoPolicyLossResult;
  });
}

/**
 * The PPO value loss over [B, T] tokens, its gradient wrt `values` and its
 * clip fraction, in one pass. Per valid token, with R the return:
 *
 *     L = 0.5 max((v - R)², (clamp(v, oldV - clip, oldV + clip) - R)²)
 *
 * (the same as oldV + clip(v - oldV, -clip, clip), and v itself when not
 * clipped), or 0.5 (v - R)² without `clip`; aggregated over the mask like
 * {@link ppoPolicyLoss}. Gradients follow torch autograd: the clamp passes
 * the gradient inside its bounds (ends included), max splits it at a tie.
 *
 * @throws TypeError for a wrong type or dtype.
 * @throws RangeError for a wrong shape, mixed devices, a negative clip, a
 *   normalizer ≤ 0 or not finite, or an unknown aggregation.
 */
export function ppoValueLoss(values: Tensor, oldValues: Tensor, returns: Tensor, opts?: PpoValueLossOptions): PpoValueLossResult {
  const op = 'ppoValueLoss';
  const o = expectOptions<PpoValueLossOptions>(op, opts, VALUE_OPTIONS);
  const [rows, steps] = expectInputs(op, ['values', 'oldValues', 'returns'], [values, oldValues, returns]);
  const shape = [rows, steps];
  const mask = optionalTensor(op, 'mask', o.mask, 'uint8', shape);
  const device = sameDevice(op, { values, oldValues, returns, mask });
  const clip = o.clip === undefined ? -1 : expectNumber(op, 'clip', o.clip, 0, { min: 0 });
  const aggregation = expectChoice(op, 'aggregation', o.aggregation, AGGREGATIONS, 'token-mean');
  const normalizer = expectInvertible(op, 'normalizer', o.normalizer, 0, { above: 0 }) || countedNormalizer(mask, aggregation, device);

  return OpScope.run((scope) => {
    const out: PpoValueLossResult = {
      loss: scope.output([], 'float32', device),
      gradValues: scope.output(shape, 'float32', device),
      clipFraction: scope.output([], 'float32', device),
    };
    runOp(op, ordinalOf(device), {
      rows, steps,
      values: values._storage(), oldValues: oldValues._storage(), returns: returns._storage(), mask: mask?._storage(),
      gradValues: out.gradValues._storage(), loss: out.loss._storage(), clipFraction: out.clipFraction._storage(),
      clip, aggregation: AGGREGATIONS.indexOf(aggregation), normalizer,
    });
    return out;
  });
}
