/**
 * Advantage estimators: generalized advantage estimation (GAE) over [B, T]
 * trajectories, masked whitening, and group baselines (GRPO, Dr. GRPO, RLOO).
 * Outputs are float32 on the inputs' device.
 */
import { defaultDevice } from '../device.js';
import { describe } from '../errors.js';
import { runOp } from '../stream.js';
import { type Float32Tensor, Tensor } from '../tensor.js';
import {
  OpScope, expectBoolean, expectChoice, expectNumber, expectOptions, expectRank, expectShape, expectTensor,
  requireNumber, sameDevice,
} from '../validate.js';

export interface GaeOptions {
  /** Discount, in [0, 1]. */
  gamma: number;
  /** GAE lambda, in [0, 1]: 0 gives the TD residual, 1 the discounted return minus V. */
  lambda: number;
  /** uint8 [B, T]; 0 = not a step of this sequence (padding, prompt or tool tokens). */
  mask?: Tensor;
  /** uint8 [B, T]; 1 = the episode terminated after step t. */
  dones?: Tensor;
  /** uint8 [B, T]; 1 = the episode was cut after step t (time limit); needs truncatedValues. */
  truncated?: Tensor;
  /** float32 [B, T]; where truncated, the value of the state the episode was cut in. */
  truncatedValues?: Tensor;
  /** float32 [B]; value after the last step of each row (default 0). */
  lastValues?: Tensor | Float32Array | number[];
}

export interface GaeResult {
  /** float32 [B, T]; 0 where mask is 0. */
  advantages: Float32Tensor;
  /** float32 [B, T]; advantages + values, 0 where mask is 0. */
  returns: Float32Tensor;
}

const FLAG_DTYPES = ['uint8'] as const;
const GAE_OPTIONS: (keyof GaeOptions)[] = ['gamma', 'lambda', 'mask', 'dones', 'truncated', 'truncatedValues', 'lastValues'];

function flagTensor(op: string, name: string, value: unknown, shape: readonly number[]): Tensor | undefined {
  if (value === undefined) return undefined;
  const t = expectTensor(op, name, value, FLAG_DTYPES);
  expectShape(op, name, t, shape);
  return t;
}

/**
 * Generalized advantage estimation, backward over each row's valid steps:
 *
 *   delta_t = r_t + gamma * V_next * (1 - done_t) - V_t
 *   A_t     = delta_t + gamma * lambda * (1 - done_t) * A_next
 *   returns = A + V
 *
 * where "next" is the next valid step of the same row (`lastValues`, or 0,
 * after the last one). Where `truncated` is 1, V_next is `truncatedValues`
 * and A_next is 0: the episode was cut, so its tail is bootstrapped from the
 * value of the state it was cut in, and the recursion restarts. A step with
 * both `dones` and `truncated` set counts as done (terminated).
 *
 * Masked steps (mask 0) are transparent: they are skipped and nothing decays
 * across them (tool output between turns), their outputs are 0. A done or
 * truncated flag on a masked step still ends the episode there: the valid
 * step before it sees the flag as if it were its own. With right padding
 * this is the usual padding convention.
 *
 * @example Terminated versus truncated episodes
 * ```ts
 * // Row 0: the episode ends at t = 1 (done) and a new one starts at t = 2.
 * // Row 1: the episode is cut at t = 1 (time limit) in a state worth 0.5.
 * const B = 2, T = 4;
 * const rewards = tensor(new Float32Array([0, 1, 0, 1,  0, 1, 0, 1]), [B, T]);
 * const values = tensor(new Float32Array(B * T).fill(0.5), [B, T]);
 * const dones = tensor(new Uint8Array([0, 1, 0, 0,  0, 0, 0, 0]), [B, T]);
 * const truncated = tensor(new Uint8Array([0, 0, 0, 0,  0, 1, 0, 0]), [B, T]);
 * const truncatedValues = tensor(new Float32Array(B * T).fill(0.5), [B, T]);
 * const { advantages, returns } = gae(rewards, values, {
 *   gamma: 0.99, lambda: 0.95, dones, truncated, truncatedValues,
 * });
 * // advantages[0][1] = 1 - 0.5 (no bootstrap after a termination);
 * // advantages[1][1] = 1 + 0.99 * 0.5 - 0.5 (bootstrapped from the cut state).
 * ```
 */
export function gae(rewards: Tensor, values: Tensor, opts: GaeOptions): GaeResult {
  const op = 'gae';
  return OpScope.run((scope) => {
    const o = expectOptions<GaeOptions>(op, opts, GAE_OPTIONS);
    const r = expectTensor(op, 'rewards', rewards, ['float32']);
    expectRank(op, 'rewards', r, 2);
    const shape = r.shape;
    const [B, T] = shape as [number, number];
    const v = expectTensor(op, 'values', values, ['float32']);
    expectShape(op, 'values', v, shape);
    const gamma = requireNumber(op, 'gamma', o.gamma, { min: 0, max: 1 });
    const lambda = requireNumber(op, 'lambda', o.lambda, { min: 0, max: 1 });
    const mask = flagTensor(op, 'mask', o.mask, shape);
    const dones = flagTensor(op, 'dones', o.dones, shape);
    const truncated = flagTensor(op, 'truncated', o.truncated, shape);
    let truncatedValues: Tensor | undefined;
    if (truncated) {
      if (o.truncatedValues === undefined)
        throw new TypeError(`${op}: truncatedValues expected a float32 Tensor of shape [${B}, ${T}] (truncated is given), got undefined`);
      truncatedValues = expectTensor(op, 'truncatedValues', o.truncatedValues, ['float32']);
      expectShape(op, 'truncatedValues', truncatedValues, shape);
    } else if (o.truncatedValues !== undefined) {
      throw new TypeError(`${op}: truncated expected a uint8 Tensor (truncatedValues is given), got undefined`);
    }
    const lastValues =
      o.lastValues === undefined ? undefined : scope.vector(op, 'lastValues', o.lastValues, 'float32', r.device);
    if (lastValues) expectShape(op, 'lastValues', lastValues, [B]);
    const device = sameDevice(op, { rewards: r, values: v, mask, dones, truncated, truncatedValues, lastValues });

    const advantages = scope.output(shape, 'float32', device);
    const returns = scope.output(shape, 'float32', device);
    if (B * T > 0)
      runOp(op, r.ordinal, {
        rewards: r._storage(), values: v._storage(), mask: mask?._storage(), dones: dones?._storage(),
        truncated: truncated?._storage(), truncatedValues: truncatedValues?._storage(), lastValues: lastValues?._storage(),
        advantages: advantages._storage(), returns: returns._storage(), rows: B, steps: T, gamma, lambda,
      });
    return { advantages, returns };
  });
}

export interface WhitenOptions {
  /** uint8, the shape of x (a Uint8Array: x's elements in order); 0 = left out of the statistics, output 0. */
  mask?: Tensor | Uint8Array;
  /** Default true; false adds the mean back after scaling. */
  shiftMean?: boolean;
  /** Added to the variance, > 0; default 1e-8. */
  eps?: number;
}

/**
 * Whitening over the mask: (x - mean) / sqrt(var + eps), with the mean and
 * the unbiased variance (n - 1) of the valid elements; the mean is added
 * back when `shiftMean` is false. Masked-out positions are 0. With a single
 * valid element the variance is taken as 0 (that element becomes 0, or
 * itself without shiftMean); with none, every output is 0. Any shape; the
 * statistics are reduced in a fixed order (double precision on cpu), so
 * results are reproducible bit for bit. Any finite float32 data whiten to
 * finite results: data spread near float32's limit (where x - mean would
 * overflow it) are whitened in double.
 */
export function whiten(x: Tensor | Float32Array | number[], opts?: WhitenOptions): Float32Tensor {
  const op = 'whiten';
  return OpScope.run((scope) => {
    const o = expectOptions<WhitenOptions>(op, opts, ['mask', 'shiftMean', 'eps']);
    const t = scope.tensorOrArray(op, 'x', x, 'float32', defaultDevice());
    const mask = o.mask === undefined ? undefined : scope.tensorOrArray(op, 'mask', o.mask, 'uint8', t.device, t.shape);
    if (mask) expectShape(op, 'mask', mask, t.shape);
    const shiftMean = expectBoolean(op, 'shiftMean', o.shiftMean, true);
    const eps = expectNumber(op, 'eps', o.eps, 1e-8, { above: 0 });
    const device = sameDevice(op, { x: t, mask });
    const out = scope.output(t.shape, 'float32', device);
    if (t.size > 0)
      runOp(op, t.ordinal, { x: t._storage(), mask: mask?._storage(), out: out._storage(), count: t.size, eps, shiftMean });
    return out;
  });
}

export type GroupEstimator = 'grpo' | 'rloo' | 'dr-grpo';
const ESTIMATORS: readonly GroupEstimator[] = ['grpo', 'dr-grpo', 'rloo'];
/** The native codes (native/ops/advantages.h GroupEstimator). */
const ESTIMATOR_CODE: Record<GroupEstimator, number> = { grpo: 0, 'dr-grpo': 1, rloo: 2 };

export interface GroupAdvantagesOptions {
  /** Members per group (K): groups are runs of K consecutive scores. */
  groupSize: number;
  estimator: GroupEstimator;
  /** Added to the std by 'grpo', > 0; default 1e-6. */
  eps?: number;
}

/**
 * Advantages of sampled completions against their group (the completions
 * of one prompt, `groupSize` consecutive scores):
 *
 *   'grpo':    (s - mean) / (std + eps), unbiased std
 *   'dr-grpo': s - mean
 *   'rloo':    s - mean of the other members = K / (K - 1) * (s - mean)
 *
 * A group of one has no baseline: its advantage is 0 under every estimator
 * (verl passes the raw score through instead; TRL refuses fewer than two
 * generations). A group of equal scores gets 0.
 */
export function groupAdvantages(scores: Tensor | Float32Array | number[], opts: GroupAdvantagesOptions): Float32Tensor {
  const op = 'groupAdvantages';
  return OpScope.run((scope) => {
    const o = expectOptions<GroupAdvantagesOptions>(op, opts, ['groupSize', 'estimator', 'eps']);
    const s = scope.vector(op, 'scores', scores, 'float32', defaultDevice());
    const groupSize = requireNumber(op, 'groupSize', o.groupSize, { integer: true, min: 1 });
    if (s.size % groupSize !== 0)
      throw new RangeError(`${op}: groupSize expected a divisor of the number of scores (${s.size}), got ${groupSize}`);
    if (o.estimator === undefined)
      throw new TypeError(`${op}: estimator expected one of ${ESTIMATORS.map((e) => `'${e}'`).join(', ')}, got ${describe(o.estimator)}`);
    const estimator = expectChoice(op, 'estimator', o.estimator, ESTIMATORS, 'grpo');
    const eps = expectNumber(op, 'eps', o.eps, 1e-6, { above: 0 });
    const out = scope.output(s.shape, 'float32', s.device);
    if (s.size > 0)
      runOp(op, s.ordinal, {
        scores: s._storage(), out: out._storage(), groups: s.size / groupSize, groupSize,
        estimator: ESTIMATOR_CODE[estimator], eps,
      });
    return out;
  });
}
