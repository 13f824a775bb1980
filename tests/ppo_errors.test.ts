import { describe, expect, it } from 'vitest';
import { KernelError, Tensor, ppoPolicyLoss, ppoValueLoss, synchronize, tensor } from '../lib/index.js';
import { runOp } from '../lib/stream.js';
import { Rng } from './helpers/random.js';
import { isPoison, poison } from './helpers/tolerance.js';
import { randomPolicyInputs } from './reference/ppo_inputs.js';

const f = (shape: number[], fill = 0.5): Tensor => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill), shape);
const u8 = (shape: number[]): Tensor => tensor(new Uint8Array(shape.reduce((a, b) => a * b, 1)).fill(1), shape);
const P = 'ppoPolicyLoss';

/** A tensor that claims to live on cuda:0 (never handed to the addon: validation refuses it first). */
function onCuda(shape: number[]): Tensor {
  const fake = { bytes: 4 * shape.reduce((a, b) => a * b, 1), device: 0, free() {} };
  return new Tensor(shape, 'float32', 'cuda:0', null, fake);
}

function policy(opts: Record<string, unknown>, shapes: { lp?: number[]; old?: number[]; adv?: number[] } = {}) {
  return () => ppoPolicyLoss(f(shapes.lp ?? [2, 3]), f(shapes.old ?? [2, 3]), f(shapes.adv ?? [2, 3]), opts as never);
}

describe('ppoPolicyLoss refuses bad input with a message naming the argument', () => {
  it.each([
    ['logprobs not a tensor', () => ppoPolicyLoss([1, 2] as never, f([2, 3]), f([2, 3])), TypeError,
      'ppoPolicyLoss: logprobs expected a float32 Tensor, got an array of length 2'],
    ['wrong dtype', () => ppoPolicyLoss(tensor(new Int32Array(6), [2, 3]), f([2, 3]), f([2, 3])), TypeError,
      'ppoPolicyLoss: logprobs expected dtype float32, got int32'],
    ['1-D logprobs', policy({}, { lp: [6] }), RangeError, 'ppoPolicyLoss: logprobs expected a 2-D tensor, got shape [6]'],
    ['shape mismatch', policy({}, { old: [2, 4] }), RangeError, 'ppoPolicyLoss: oldLogprobs expected shape [2, 3], got [2, 4]'],
    ['advantages transposed', policy({}, { adv: [3, 2] }), RangeError, 'ppoPolicyLoss: advantages expected shape [2, 3], got [3, 2]'],
    ['advantages per row, too many', policy({}, { adv: [3] }), RangeError, 'ppoPolicyLoss: advantages expected shape [2, 3] or [2] (one per row), got [3]'],
    ['advantages 3-D', policy({}, { adv: [2, 3, 1] }), RangeError, 'ppoPolicyLoss: advantages expected shape [2, 3], got [2, 3, 1]'],
    ['float mask', policy({ mask: f([2, 3]) }), TypeError, 'ppoPolicyLoss: mask expected dtype uint8, got float32'],
    ['mask shape', policy({ mask: u8([3, 2]) }), RangeError, 'ppoPolicyLoss: mask expected shape [2, 3], got [3, 2]'],
    ['refLogprobs shape', policy({ refLogprobs: f([2, 2]), klCoef: 0.1 }), RangeError, 'ppoPolicyLoss: refLogprobs expected shape [2, 3], got [2, 2]'],
    ['entropy dtype', policy({ entropy: u8([2, 3]), entropyCoef: 0.1 }), TypeError, 'ppoPolicyLoss: entropy expected dtype float32, got uint8'],
    ['negative clipLow', policy({ clipLow: -0.1 }), RangeError, 'ppoPolicyLoss: clipLow expected a finite number >= 0 <= 1, got -0.1'],
    ['clipLow above 1', policy({ clipLow: 1.5 }), RangeError, 'ppoPolicyLoss: clipLow expected a finite number >= 0 <= 1, got 1.5'],
    ['negative clipHigh', policy({ clipHigh: -0.2 }), RangeError, 'ppoPolicyLoss: clipHigh expected a finite number >= 0, got -0.2'],
    ['NaN clipLow', policy({ clipLow: NaN }), RangeError, 'ppoPolicyLoss: clipLow expected a finite number >= 0 <= 1, got NaN'],
    ['string clipLow', policy({ clipLow: '0.2' }), TypeError, 'ppoPolicyLoss: clipLow expected a finite number >= 0 <= 1, got "0.2"'],
    ['dualClip of 1', policy({ dualClip: 1 }), RangeError, 'ppoPolicyLoss: dualClip expected a finite number > 1, got 1'],
    ['dualClip below 1', policy({ dualClip: 0.5 }), RangeError, 'ppoPolicyLoss: dualClip expected a finite number > 1, got 0.5'],
    ['unknown aggregation', policy({ aggregation: 'mean' }), RangeError,
      `ppoPolicyLoss: aggregation expected one of 'token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm', got "mean"`],
    ['normalizer of 0', policy({ normalizer: 0 }), RangeError, 'ppoPolicyLoss: normalizer expected a finite number > 0, got 0'],
    ['negative normalizer', policy({ normalizer: -4 }), RangeError, 'ppoPolicyLoss: normalizer expected a finite number > 0, got -4'],
    ['infinite normalizer', policy({ normalizer: Infinity }), RangeError, 'ppoPolicyLoss: normalizer expected a finite number > 0, got Infinity'],
    ['string normalizer', policy({ normalizer: '4096' }), TypeError, 'ppoPolicyLoss: normalizer expected a finite number > 0, got "4096"'],
    ['normalizer with an infinite float32 inverse', policy({ normalizer: 1e-39 }), RangeError,
      'ppoPolicyLoss: normalizer expected a number whose inverse is a finite, non-zero float32, got 1e-39'],
    ['advantages as a host array of [B, T] elements', () => ppoPolicyLoss(f([2, 3]), f([2, 3]), new Float32Array(6)), RangeError,
      'ppoPolicyLoss: advantages expected shape [2], got 6 elements'],
    ['advantages as a Uint16Array', () => ppoPolicyLoss(f([2, 3]), f([2, 3]), new Uint16Array(2) as never), TypeError,
      'ppoPolicyLoss: advantages expected a float32 Tensor or a typed array, got a Uint16Array of length 2'],
    ['unknown estimator', policy({ refLogprobs: f([2, 3]), klCoef: 0.1, klEstimator: 'k4' }), RangeError,
      `ppoPolicyLoss: klEstimator expected one of 'k1', 'k2', 'k3', got "k4"`],
    ['KL coefficient without refLogprobs', policy({ klCoef: 0.1 }), TypeError,
      'ppoPolicyLoss: refLogprobs expected a float32 Tensor [2, 3] when klCoef is 0.1, got undefined'],
    ['negative klCoef', policy({ refLogprobs: f([2, 3]), klCoef: -1 }), RangeError, 'ppoPolicyLoss: klCoef expected a finite number >= 0, got -1'],
    ['entropy coefficient without entropy', policy({ entropyCoef: 0.01 }), TypeError,
      'ppoPolicyLoss: entropy expected a float32 Tensor [2, 3] when entropyCoef is 0.01, got undefined'],
    ['infinite entropyCoef', policy({ entropy: f([2, 3]), entropyCoef: Infinity }), RangeError,
      'ppoPolicyLoss: entropyCoef expected a finite number, got Infinity'],
    ['misspelled option', policy({ clip_low: 0.1 }), RangeError,
      'ppoPolicyLoss: options expected keys among mask, clipLow, clipHigh, dualClip, aggregation, normalizer, refLogprobs, klCoef, klEstimator, entropy, entropyCoef, importanceSampling, got "clip_low"'],
    ['unknown importance sampling', policy({ importanceSampling: 'sentence' as never }), RangeError,
      `ppoPolicyLoss: importanceSampling expected one of 'token', 'sequence', got "sentence"`],
    ['options not an object', () => ppoPolicyLoss(f([2, 3]), f([2, 3]), f([2, 3]), 3 as never), TypeError,
      'ppoPolicyLoss: options expected an object, got 3'],
    ['mixed devices', () => ppoPolicyLoss(f([2, 3]), onCuda([2, 3]), f([2, 3])), RangeError,
      'ppoPolicyLoss: oldLogprobs expected to be on cpu like logprobs, got cuda:0'],
    ['mixed devices in an option', policy({ refLogprobs: onCuda([2, 3]), klCoef: 0.1 }), RangeError,
      'ppoPolicyLoss: refLogprobs expected to be on cpu like logprobs, got cuda:0'],
  ])('%s', (_, call, kind, message) => {
    expect(call).toThrow(kind);
    expect(call).toThrow(message);
  });

  it('refuses a disposed tensor with KernelError EDISPOSED', () => {
    const lp = f([2, 3]);
    lp.dispose();
    try {
      ppoPolicyLoss(lp, f([2, 3]), f([2, 3]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(KernelError);
      expect((e as KernelError).code).toBe('EDISPOSED');
      expect((e as Error).message).toMatch(/^ppoPolicyLoss: logprobs: the tensor .* was disposed$/);
    }
  });
});

describe('ppoValueLoss refuses bad input with a message naming the argument', () => {
  const value = (opts: Record<string, unknown>, shape = [2, 3]) => () => ppoValueLoss(f([2, 3]), f(shape), f([2, 3]), opts as never);
  it.each([
    ['shape mismatch', value({}, [2, 2]), RangeError, 'ppoValueLoss: oldValues expected shape [2, 3], got [2, 2]'],
    ['negative clip', value({ clip: -0.5 }), RangeError, 'ppoValueLoss: clip expected a finite number >= 0, got -0.5'],
    ['unknown aggregation', value({ aggregation: 'sum' }), RangeError, /ppoValueLoss: aggregation expected one of .*, got "sum"/],
    ['float mask', value({ mask: f([2, 3]) }), TypeError, 'ppoValueLoss: mask expected dtype uint8, got float32'],
    ['NaN normalizer', value({ normalizer: NaN }), RangeError, 'ppoValueLoss: normalizer expected a finite number > 0, got NaN'],
    ['normalizer with an infinite float32 inverse', value({ normalizer: 2e-39 }), RangeError,
      'ppoValueLoss: normalizer expected a number whose inverse is a finite, non-zero float32, got 2e-39'],
    ['policy option', value({ clipLow: 0.2 }), RangeError, 'ppoValueLoss: options expected keys among mask, clip, aggregation, normalizer, got "clipLow"'],
    ['mixed devices', () => ppoValueLoss(f([2, 3]), f([2, 3]), onCuda([2, 3])), RangeError,
      'ppoValueLoss: returns expected to be on cpu like values, got cuda:0'],
  ])('%s', (_, call, kind, message) => {
    expect(call).toThrow(kind);
    expect(call).toThrow(message);
  });
});

describe('the ppo bindings', () => {
  // The addon's own checks, behind lib/: a buggy caller still cannot reach memory it does not own.
  function args(n: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      rows: 2, steps: 3, logprobs: new Float32Array(n), oldLogprobs: new Float32Array(n), advantages: new Float32Array(n),
      gradLogprobs: new Float32Array(n), loss: new Float32Array(1), clipFraction: new Float32Array(1),
      clipFractionLower: new Float32Array(1), approxKl: new Float32Array(1),
      clipLow: 0.2, clipHigh: 0.2, dualClip: 0, klCoef: 0, entropyCoef: 0, aggregation: 0, klEstimator: 2, normalizer: 0, ...extra,
    };
  }

  it('refuse short buffers, unknown codes and bad scalars', () => {
    expect(() => runOp(P, -1, args(5))).toThrow("ppoPolicyLoss: 'logprobs' holds 20 bytes, the op needs 24");
    expect(() => runOp(P, -1, args(6, { aggregation: 4 }))).toThrow('ppoPolicyLoss: aggregation code 4 is unknown');
    expect(() => runOp(P, -1, args(6, { klEstimator: -1 }))).toThrow('ppoPolicyLoss: klEstimator code -1 is unknown');
    expect(() => runOp(P, -1, args(6, { dualClip: 0.5 }))).toThrow(RangeError);
    expect(() => runOp(P, -1, args(6, { clipLow: Infinity }))).toThrow(RangeError);
    expect(() => runOp(P, -1, args(6, { steps: -3 }))).toThrow('ppoPolicyLoss: steps expected >= 0, got -3');
    expect(() => runOp(P, -1, args(6, { entropy: new Float32Array(6) }))).toThrow("ppoPolicyLoss: missing tensor 'gradEntropy'");
    expect(() => runOp(P, -1, args(6, { normalizer: -1 }))).toThrow('ppoPolicyLoss: normalizer expected a finite number >= 0, got -1');
    expect(() => runOp(P, -1, args(6, { normalizer: NaN }))).toThrow(RangeError);
    expect(() => runOp(P, -1, args(6, { normalizer: undefined }))).toThrow("ppoPolicyLoss: 'normalizer' must be a number");
  });

  it('write every output element (poisoned before the run)', async () => {
    const x = randomPolicyInputs(new Rng(), 5, 37, { mask: 'random', klEstimator: 'k3', entropyCoef: 0.1 });
    const n = x.B * x.T;
    const outputs = {
      gradLogprobs: poison(new Float32Array(n)), gradEntropy: poison(new Float32Array(n)), loss: poison(new Float32Array(1)),
      clipFraction: poison(new Float32Array(1)), clipFractionLower: poison(new Float32Array(1)),
      approxKl: poison(new Float32Array(1)), kl: poison(new Float32Array(1)),
    };
    runOp(P, -1, {
      ...args(n), rows: x.B, steps: x.T, logprobs: x.logprobs, oldLogprobs: x.oldLogprobs, advantages: x.advantages,
      mask: x.mask, refLogprobs: x.refLogprobs, entropy: x.entropy, entropyCoef: 0.1, klCoef: 0.1, ...outputs,
    });
    await synchronize('cpu');
    for (const [name, a] of Object.entries(outputs)) expect(a.some(isPoison), name).toBe(false);
    const values = { gradValues: poison(new Float32Array(n)), loss: poison(new Float32Array(1)), clipFraction: poison(new Float32Array(1)) };
    runOp('ppoValueLoss', -1, {
      rows: x.B, steps: x.T, values: x.logprobs, oldValues: x.oldLogprobs, returns: x.advantages, mask: x.mask,
      clip: 0.2, aggregation: 2, normalizer: 0, ...values,
    });
    await synchronize('cpu');
    for (const [name, a] of Object.entries(values)) expect(a.some(isPoison), name).toBe(false);
  });
});
