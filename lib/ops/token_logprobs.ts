/**
 * Token log-probs: log-softmax gathered at the targets, with the row's
 * log-sum-exp and (optionally) its entropy, fused so that no [N, V]
 * intermediate exists; and the gradient with respect to the logits.
 */
import { DTYPE_CODE, type DType } from '../dtype.js';
import { ordinalOf } from '../device.js';
import { describe } from '../errors.js';
import { copyForReads, writePending } from '../storage.js';
import { runOp } from '../stream.js';
import { type Float32Tensor, Tensor } from '../tensor.js';
import {
  OpScope, expectBoolean, expectInvertible, expectNumber, expectOptions, expectShape, expectTensor, sameDevice,
} from '../validate.js';

const LOGIT_DTYPES = ['float32', 'bfloat16', 'float16'] as const;
const INT32_RULE = { integer: true, min: -2147483648, max: 2147483647 };

export interface TokenLogProbsOptions {
  /** Logits are divided by it first. Default 1; a finite number > 0. */
  temperature?: number;
  /** Rows whose target equals it give logprob 0 and entropy 0 (lse is still written). Default -100. */
  ignoreIndex?: number;
  /** Also return the per-row entropy. Default false. */
  entropy?: boolean;
}

/** `E`: whether the entropy was asked for (`entropy: true` makes it `true`, and `entropy` a Tensor). */
export interface TokenLogProbsResult<E extends boolean = boolean> {
  /** [...] float32: z[y] - lse(z). */
  logprobs: Float32Tensor;
  /** [...] float32: log-sum-exp of z = logits / temperature. */
  lse: Float32Tensor;
  /** [...] float32: lse(z) - sum p z, when asked for. */
  entropy: E extends true ? Float32Tensor : Float32Tensor | undefined;
}

export interface TokenLogProbsGrads {
  /** [...] float32, from the forward. Required. */
  lse: Tensor;
  /** [...] float32: d loss / d logprobs. */
  gradLogprobs?: Tensor;
  /** [...] float32, from the forward; required with gradEntropy. */
  entropy?: Tensor;
  /** [...] float32: d loss / d entropy. */
  gradEntropy?: Tensor;
}

export interface TokenLogProbsBackwardOptions {
  /**
   * The forward's. Default: the temperature grads.lse was computed with (1
   * for an lse from elsewhere); another value than that is a RangeError.
   */
  temperature?: number;
  /** The forward's. Default and check as for temperature (-100 for an lse from elsewhere). */
  ignoreIndex?: number;
  /** Write the gradient over `logits` and return that same Tensor. Default false. */
  inPlace?: boolean;
}

/**
 * The options each forward's lse came from. The backward takes them when it
 * is given none and refuses others: with another temperature its gradient
 * would be that of another distribution, without a word. (An lse made any
 * other way, or copied to another device, carries nothing to check.)
 */
const LSE_ORIGIN = new WeakMap<Tensor, { temperature: number; ignoreIndex: number }>();

/** The backward's temperature and ignoreIndex: as given, else the forward's; a mismatch is a RangeError. */
function forwardOptions(op: string, o: Partial<TokenLogProbsBackwardOptions>, lse: unknown): { temperature?: unknown; ignoreIndex?: unknown } {
  const origin = lse instanceof Tensor ? LSE_ORIGIN.get(lse) : undefined;
  if (!origin) return o;
  if (o.temperature !== undefined) temperatureOf(op, o.temperature);  // a wrong type is a TypeError before any comparison
  if (o.ignoreIndex !== undefined) ignoreIndexOf(op, o.ignoreIndex);
  for (const key of ['temperature', 'ignoreIndex'] as const)
    if (o[key] !== undefined && o[key] !== origin[key])
      throw new RangeError(`${op}: ${key} expected the forward's ${origin[key]} (grads.lse came from it), got ${describe(o[key])}`);
  return origin;
}

interface Common {
  logits: Tensor;
  targets: Tensor;
  rows: number;
  vocab: number;
  leading: number[];
  invTemperature: number;
  ignoreIndex: number;
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function temperatureOf(op: string, value: unknown): number {
  return expectInvertible(op, 'temperature', value, 1, { above: 0 });
}

function ignoreIndexOf(op: string, value: unknown): number {
  return expectNumber(op, 'ignoreIndex', value, -100, INT32_RULE);
}

const FORWARD_OPTIONS: (keyof TokenLogProbsOptions)[] = ['temperature', 'ignoreIndex', 'entropy'];
const BACKWARD_OPTIONS: (keyof TokenLogProbsBackwardOptions)[] = ['temperature', 'ignoreIndex', 'inPlace'];
// The forward's result may be spread into grads ({ ...forward, gradLogprobs }): its logprobs are ignored.
const GRADS: (keyof TokenLogProbsGrads | keyof TokenLogProbsResult)[] = ['lse', 'gradLogprobs', 'entropy', 'gradEntropy', 'logprobs'];

/** A per-row input: a Tensor of the leading shape, or a typed array of its elements in order. */
function rowTensor(scope: OpScope, op: string, name: string, value: unknown, dtype: 'float32' | 'int32', leading: number[], logits: Tensor): Tensor {
  const t = value === undefined || value === null ? expectTensor(op, name, value, [dtype])
    : scope.tensorOrArray(op, name, value, dtype, logits.device, leading);
  expectShape(op, name, t, leading);
  return t;
}

/**
 * On cpu, a target outside [0, V) that is not ignoreIndex is a RangeError
 * now, naming its position (on cuda the kernel reports it, in the same
 * words, at the next synchronizing call; so does the cpu kernel for targets
 * a queued op, a slice() or concat(), has yet to write).
 */
function checkTargets(op: string, logits: Tensor, targets: Tensor, vocab: number, ignoreIndex: number, leading: readonly number[]): void {
  if (targets.device !== 'cpu' || logits.device !== 'cpu') return;  // on different devices: sameDevice's error
  const y = targets._storage(`${op}: targets`) as Int32Array;
  if (writePending(y)) return;  // not written yet: the kernel checks them as it runs
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (v === ignoreIndex || (v >= 0 && v < vocab)) continue;
    const at: number[] = [];
    for (let k = leading.length - 1, rest = i; k >= 0; k--) {
      at.unshift(rest % leading[k]!);
      rest = Math.floor(rest / leading[k]!);
    }
    throw new RangeError(`${op}: targets[${at.join(', ')}] is ${v}, expected a token id in [0, ${vocab}) or ignoreIndex (${ignoreIndex})`);
  }
}

function common(scope: OpScope, op: string, logitsIn: unknown, targetsIn: unknown, opts: { temperature?: unknown; ignoreIndex?: unknown }): Common {
  const logits = expectTensor(op, 'logits', logitsIn, LOGIT_DTYPES);
  if (logits.shape.length < 1)
    throw new RangeError(`${op}: logits expected shape [..., V] with at least one dimension, got ${shapeText(logits.shape)}`);
  const vocab = logits.shape[logits.shape.length - 1]!;
  if (vocab < 1 || vocab > 2147483647)
    throw new RangeError(`${op}: logits expected a vocabulary (last dimension) V in [1, 2^31), got shape ${shapeText(logits.shape)}`);
  const leading = logits.shape.slice(0, -1);
  const targets = rowTensor(scope, op, 'targets', targetsIn, 'int32', leading, logits);
  const invTemperature = 1 / temperatureOf(op, opts.temperature);
  const ignoreIndex = ignoreIndexOf(op, opts.ignoreIndex);
  checkTargets(op, logits, targets, vocab, ignoreIndex, leading);
  return { logits, targets, rows: logits.size / vocab, vocab, leading, invTemperature, ignoreIndex };
}

/**
 * Log-probabilities of the targets under softmax(logits / temperature), one
 * read of the logits. With z = logits / T and p = softmax(z) over the last
 * dimension V:
 *
 *   lse = log sum_j exp(z_j),  logprob = z[y] - lse,  entropy = lse - sum_j p_j z_j.
 *
 * Rows whose target is `ignoreIndex` give logprob 0 and entropy 0 (lse is
 * still their log-sum-exp). A target outside [0, V) raises a RangeError
 * naming the row: at once on cpu; on cuda at the next synchronize, with code
 * 'EBADINPUT', and then also `instanceof KernelError` (so on cpu too for
 * targets that an op queued before the call, a slice() or concat(), has
 * yet to write).
 *
 * Edge values: `-inf` logits are a masked vocabulary (p = 0, no entropy
 * contribution); a target at a `-inf` logit gives logprob -inf. A row of only
 * `-inf` logits gives lse = -inf and logprob = entropy = NaN (no distribution
 * exists; IEEE's -inf - -inf). A NaN or +inf logit makes its row's lse,
 * logprob and entropy NaN (an ignored row still gives logprob 0, entropy 0);
 * other rows are untouched. Range: the kernels work in base 2, on
 * z log2(e), so |z| may reach 2.3e38 (float32's max / log2 e), at any
 * temperature; a row whose largest logit lies beyond gives lse and
 * logprob NaN, and a logit below -2.3e38 in a row whose largest is within
 * range counts as masked (p = 0; logprob -inf as a target).
 *
 * Batch invariance: each row's outputs are bit-identical whatever the batch
 * size, its position and the thread count, on a given backend and device.
 *
 * @param logits `[..., V]` float32, bfloat16 or float16 (accumulated in float32).
 * @param targets int32 `[...]` (the leading dims of logits), or a typed array of them in order.
 * @returns float32 tensors of shape `[...]`.
 */
export function tokenLogProbs<E extends boolean = false>(logits: Tensor, targets: Tensor | Int32Array | number[],
  opts?: TokenLogProbsOptions & { entropy?: E }): TokenLogProbsResult<E> {
  const op = 'tokenLogProbs';
  return OpScope.run((scope) => {
    const o = expectOptions<TokenLogProbsOptions>(op, opts, FORWARD_OPTIONS);
    const c = common(scope, op, logits, targets, o);
    const withEntropy = expectBoolean(op, 'entropy', o.entropy, false);
    const device = sameDevice(op, { logits: c.logits, targets: c.targets });
    const logprobs = scope.output(c.leading, 'float32', device);
    const lse = scope.output(c.leading, 'float32', device);
    const entropy = withEntropy ? scope.output(c.leading, 'float32', device) : undefined;
    runOp(op, ordinalOf(device), {
      logits: c.logits._storage(`${op}: logits`),
      targets: c.targets._storage(`${op}: targets`),
      logprobs: logprobs._storage(),
      lse: lse._storage(),
      entropy: entropy?._storage(),
      rows: c.rows,
      leading: c.leading,
      vocab: c.vocab,
      dtype: DTYPE_CODE[c.logits.dtype],
      invTemperature: c.invTemperature,
      ignoreIndex: c.ignoreIndex,
    });
    LSE_ORIGIN.set(lse, { temperature: (o.temperature as number | undefined) ?? 1, ignoreIndex: c.ignoreIndex });
    return (entropy ? { logprobs, lse, entropy } : { logprobs, lse }) as TokenLogProbsResult<E>;
  });
}

/**
 * Gradient of a loss with respect to the logits, given its gradients with
 * respect to the forward's logprobs and/or entropy (at least one):
 *
 *   dlogits = (gLp (onehot(y) - p) - gH p (log p + H)) / T,  p = exp(z - lse),
 *
 * in the logits' dtype, one read and one write of the logits (lse comes from
 * the forward: nothing is reduced again). Ignored rows, `-inf` logits and
 * rows of only `-inf` logits get 0 (the forward returned constants there);
 * NaN in a row's inputs makes that row NaN. With `inPlace` the gradient
 * overwrites `logits` and that same Tensor is returned (no [..., V] output
 * is allocated, and half the memory is touched).
 *
 * @param grads lse (required), gradLogprobs, entropy + gradEntropy: float32 `[...]`; the
 *   forward's result may be spread in (`{ ...forward, gradLogprobs }`). Other keys are a RangeError.
 */
export function tokenLogProbsBackward<D extends DType>(
  logits: Tensor<D>,
  targets: Tensor | Int32Array | number[],
  grads: TokenLogProbsGrads,
  opts?: TokenLogProbsBackwardOptions,
): Tensor<D> {
  const op = 'tokenLogProbsBackward';
  return OpScope.run((scope) => {
    const o = expectOptions<TokenLogProbsBackwardOptions>(op, opts, BACKWARD_OPTIONS);
    if (grads === null || typeof grads !== 'object' || Array.isArray(grads) || grads instanceof Tensor)
      throw new TypeError(`${op}: grads expected an object { lse, gradLogprobs?, entropy?, gradEntropy? }, got ${describe(grads)}`);
    expectOptions<TokenLogProbsGrads & TokenLogProbsResult>(op, grads, GRADS, 'grads');
    const c = common(scope, op, logits, targets, forwardOptions(op, o, grads.lse));
    const inPlace = expectBoolean(op, 'inPlace', o.inPlace, false);
    const row = (name: keyof TokenLogProbsGrads, value: unknown) =>
      value === undefined ? undefined : rowTensor(scope, op, `grads.${name}`, value, 'float32', c.leading, c.logits);
    const lse = rowTensor(scope, op, 'grads.lse', grads.lse, 'float32', c.leading, c.logits);
    const gradLogprobs = row('gradLogprobs', grads.gradLogprobs);
    const gradEntropy = row('gradEntropy', grads.gradEntropy);
    const entropy = row('entropy', grads.entropy);
    if (!gradLogprobs && !gradEntropy)
      throw new TypeError(`${op}: grads expected gradLogprobs or gradEntropy (or both), got neither`);
    if (gradEntropy && !entropy)
      throw new TypeError(`${op}: grads.entropy expected a float32 Tensor (the forward's entropy, needed with gradEntropy), got undefined`);
    const device = sameDevice(op, {
      logits: c.logits, targets: c.targets, 'grads.lse': lse, 'grads.gradLogprobs': gradLogprobs,
      'grads.entropy': entropy, 'grads.gradEntropy': gradEntropy,
    });
    if (inPlace) {
      // Rows are written as they are computed: an input in the logits' memory would be read after it was overwritten.
      const inputs = { targets: c.targets, 'grads.lse': lse, 'grads.gradLogprobs': gradLogprobs, 'grads.entropy': entropy, 'grads.gradEntropy': gradEntropy };
      for (const [name, t] of Object.entries(inputs))
        if (t?._overlaps(c.logits))
          throw new RangeError(`${op}: ${name} expected memory apart from logits (inPlace overwrites them), got a tensor sharing it`);
      if (c.logits._host) copyForReads(c.logits._host);  // reads in flight keep what they were called on
    }
    const out = inPlace ? logits : scope.output(logits.shape, logits.dtype, device);  // c.logits is logits, checked
    runOp(op, ordinalOf(device), {
      logits: c.logits._storage(`${op}: logits`),
      targets: c.targets._storage(`${op}: targets`),
      lse: lse._storage(`${op}: grads.lse`),
      gradLogprobs: gradLogprobs?._storage(`${op}: grads.gradLogprobs`),
      entropy: entropy?._storage(`${op}: grads.entropy`),
      gradEntropy: gradEntropy?._storage(`${op}: grads.gradEntropy`),
      gradLogits: out._storage(),
      rows: c.rows,
      leading: c.leading,
      vocab: c.vocab,
      dtype: DTYPE_CODE[c.logits.dtype],
      invTemperature: c.invTemperature,
      ignoreIndex: c.ignoreIndex,
    });
    return out;
  });
}
