/**
 * Argument handling shared by every op: unknown option keys, numbers that
 * leave float32, the class of a wrong choice, plain arrays copied for one
 * call (and freed after it), storage that cannot be transferred away while
 * work reads it, and the data tensor() refuses.
 */
import { constants as bufferConstants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  defaultDevice, dpoLoss, fromBFloat16, fromFloat16, gae, groupAdvantages, memory, pairwiseLoss, ppoPolicyLoss, ppoValueLoss,
  sequenceLogProbs, sequenceLogProbsBackward, setDefaultDevice, synchronize, tensor, toBFloat16, toFloat16, tokenLogProbs,
  tokenLogProbsBackward, whiten,
} from '../lib/index.js';
import { type Tensor } from '../lib/tensor.js';
import { OpScope } from '../lib/validate.js';
import { DEVICES } from './helpers/devices.js';

type Thrower = [() => unknown, TypeErrorConstructor | RangeErrorConstructor, string];

function expectThrows(cases: Thrower[]): void {
  for (const [call, kind, message] of cases) {
    expect(call, message).toThrow(kind);
    expect(call, message).toThrow(message);
  }
}

describe('options', () => {
  const x = tensor([1, 2, 3, 4], [2, 2]);
  const m = tensor(new Uint8Array([1, 1, 1, 0]), [2, 2]);
  const logits = tensor([0.5, 1, -1, 2], [2, 2]);

  it('refuse misspelt keys on every op, naming the keys they take', () => {
    expectThrows([
      [() => tokenLogProbs(logits, [0, 1], { temprature: 2 } as never), RangeError,
        'tokenLogProbs: options expected keys among temperature, ignoreIndex, entropy, got "temprature"'],
      [() => tokenLogProbsBackward(logits, [0, 1], { lse: x } as never, { in_place: true } as never), RangeError,
        'tokenLogProbsBackward: options expected keys among temperature, ignoreIndex, inPlace, got "in_place"'],
      [() => tokenLogProbsBackward(logits, [0, 1], { lse: tensor([1, 1]), grad_logprobs: tensor([1, 1]) } as never), RangeError,
        'tokenLogProbsBackward: grads expected keys among lse, gradLogprobs, entropy, gradEntropy, logprobs, got "grad_logprobs"'],
      [() => gae(x, x, { gamma: 1, lambda: 1, gama: 0.9 } as never), RangeError,
        'gae: options expected keys among gamma, lambda, mask, dones, truncated, truncatedValues, lastValues, got "gama"'],
      [() => whiten(x, { shift_mean: false } as never), RangeError, 'whiten: options expected keys among mask, shiftMean, eps, got "shift_mean"'],
      [() => groupAdvantages([1, 2], { groupSize: 2, estimator: 'grpo', std: true } as never), RangeError,
        'groupAdvantages: options expected keys among groupSize, estimator, eps, got "std"'],
      [() => pairwiseLoss([1], [0], { label_smoothing: 0.1 } as never), RangeError,
        'pairwiseLoss: options expected keys among margin, beta, labelSmoothing, kind, centerCoef, normalizer, got "label_smoothing"'],
      [() => dpoLoss([1], [0], [0], [0], { centerCoef: 0.1 } as never), RangeError,
        'dpoLoss: options expected keys among beta, labelSmoothing, kind, normalizer, got "centerCoef"'],
      [() => sequenceLogProbs(x, m, { reduction: 'mean' } as never), RangeError, 'sequenceLogProbs: options expected keys among reduce, got "reduction"'],
      [() => sequenceLogProbsBackward([1, 1], m, { reduction: 'mean' } as never), RangeError,
        'sequenceLogProbsBackward: options expected keys among reduce, got "reduction"'],
      [() => ppoValueLoss(x, x, x, { clipLow: 0.2 } as never), RangeError,
        'ppoValueLoss: options expected keys among mask, clip, aggregation, normalizer, got "clipLow"'],
      [() => tensor([1], [1], { dype: 'float32' } as never), RangeError, 'tensor: opts expected keys among dtype, device, copy, got "dype"'],
    ]);
  });

  it('take the forward\'s result spread into the backward\'s grads', () => {
    const forward = tokenLogProbs(logits, [0, 1], { entropy: true });
    const g = tokenLogProbsBackward(logits, [0, 1], { ...forward, gradLogprobs: tensor([1, 1]) });
    expect(g.shape).toEqual([2, 2]);
  });

  it('of the backward default to the forward\'s temperature and ignoreIndex, and refuse others', () => {
    const temperature = 0.7, gradLogprobs = tensor([1, -0.5]);
    const forward = tokenLogProbs(logits, [0, 1], { temperature, ignoreIndex: 1 });
    const given = tokenLogProbsBackward(logits, [0, 1], { lse: forward.lse, gradLogprobs }, { temperature, ignoreIndex: 1 }).toArray();
    expect(tokenLogProbsBackward(logits, [0, 1], { lse: forward.lse, gradLogprobs }).toArray()).toEqual(given);
    expectThrows([
      [() => tokenLogProbsBackward(logits, [0, 1], { lse: forward.lse, gradLogprobs }, { temperature: 1 }), RangeError,
        "tokenLogProbsBackward: temperature expected the forward's 0.7 (grads.lse came from it), got 1"],
      [() => tokenLogProbsBackward(logits, [0, 1], { lse: forward.lse, gradLogprobs }, { ignoreIndex: -100 }), RangeError,
        "tokenLogProbsBackward: ignoreIndex expected the forward's 1 (grads.lse came from it), got -100"],
    ]);
    // An lse from elsewhere (here a copy) carries nothing: the options are taken as given.
    expect(() => tokenLogProbsBackward(logits, [0, 1], { lse: tensor(forward.lse.toArray()), gradLogprobs }, { temperature: 1 })).not.toThrow();
  });

  it('refuse numbers that float32 turns into 0, infinity or a bound', () => {
    expectThrows([
      [() => whiten(x, { eps: 1e-50 }), RangeError, 'whiten: eps expected a finite number > 0 as a float32, got 1e-50 (0 as a float32)'],
      [() => groupAdvantages([1, 1], { groupSize: 2, estimator: 'grpo', eps: 1e-50 }), RangeError,
        'groupAdvantages: eps expected a finite number > 0 as a float32, got 1e-50 (0 as a float32)'],
      [() => ppoPolicyLoss(x, x, x, { normalizer: 1e-50 }), RangeError,
        'ppoPolicyLoss: normalizer expected a finite number > 0 as a float32, got 1e-50 (0 as a float32)'],
      [() => ppoPolicyLoss(x, x, x, { clipHigh: 1e300 }), RangeError,
        'ppoPolicyLoss: clipHigh expected a finite number >= 0 as a float32, got 1e+300 (Infinity as a float32)'],
      [() => pairwiseLoss([1], [0], { labelSmoothing: 0.4999999999 }), RangeError,
        'pairwiseLoss: labelSmoothing expected a finite number >= 0 < 0.5 as a float32, got 0.4999999999 (0.5 as a float32)'],
      [() => pairwiseLoss([1], [0], { centerCoef: 1e39 }), RangeError,
        'pairwiseLoss: centerCoef expected a finite number >= 0 as a float32, got 1e+39 (Infinity as a float32)'],
    ]);
    // Integers are not float32 values: an ignoreIndex past 2^24 stays exact.
    expect(() => tokenLogProbs(logits, [0, 1], { ignoreIndex: 2 ** 30 + 1 })).not.toThrow();
  });

  it('give a TypeError for a choice that is not a string, a RangeError for an unknown string', () => {
    expectThrows([
      [() => ppoPolicyLoss(x, x, x, { aggregation: 3 as never }), TypeError,
        "ppoPolicyLoss: aggregation expected one of 'token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm', got 3"],
      [() => groupAdvantages([1, 2], { groupSize: 2, estimator: null as never }), TypeError,
        "groupAdvantages: estimator expected one of 'grpo', 'dr-grpo', 'rloo', got null"],
      [() => sequenceLogProbs(x, m, { reduce: 'max' as never }), RangeError, "sequenceLogProbs: reduce expected one of 'sum', 'mean', got \"max\""],
    ]);
  });
});

describe('inputs', () => {
  it('require every input but the optional ones', () => {
    const c = new Float32Array([0.5, -1]);
    expectThrows([
      [() => dpoLoss(c, c, undefined as never, undefined as never), TypeError,
        'dpoLoss: refChosen expected a float32 Tensor or a typed array, got undefined'],
      [() => dpoLoss(c, c, c, undefined as never), TypeError, 'dpoLoss: refRejected expected a float32 Tensor or a typed array, got undefined'],
      [() => pairwiseLoss(undefined as never, c), TypeError, 'pairwiseLoss: chosen expected a float32 Tensor or a typed array, got undefined'],
    ]);
  });

  it('name the op and argument when a plain array does not convert', () => {
    const logits = tensor([0.5, 1, -1, 2], [2, 2]);
    expectThrows([
      [() => tokenLogProbs(logits, [0, 1.5]), RangeError, 'tokenLogProbs: targets[1] expected an int32, got 1.5'],
      [() => gae(tensor([1, 2], [2, 1]), tensor([1, 2], [2, 1]), { gamma: 1, lambda: 1, lastValues: ['a', 2] as never }), TypeError,
        'gae: lastValues[0] expected a number, got "a"'],
    ]);
  });

  for (const device of DEVICES)
    it(`${device}: copies of plain arrays live for one call only`, async () => {
      const used = () => memory().find((u) => u.device === (device === 'cpu' ? 'cpu' : 'cuda:0'))!.inUse;
      const host = new Float32Array(4096).map((_, i) => Math.sin(i));
      const logits = tensor(new Float32Array(4 * 8), [4, 8], { device });
      const x = tensor(host.subarray(0, 8), [2, 4], { device });
      const mask = tensor(new Uint8Array(8), [2, 4], { device });
      const calls = () => {
        // Plain arrays go to the default device: here, the device under test.
        whiten(host).dispose();
        groupAdvantages(host, { groupSize: 8, estimator: 'rloo' }).dispose();
        for (const t of Object.values(tokenLogProbs(logits, new Int32Array(4)))) t.dispose();
        for (const t of Object.values(pairwiseLoss(host, host))) t.dispose();
        sequenceLogProbsBackward(new Float32Array(2), mask).dispose();
        for (const t of Object.values(gae(x, x, { gamma: 1, lambda: 1, lastValues: [1, 2] }))) t.dispose();
      };
      const previous = defaultDevice();
      setDefaultDevice(device);
      try {
        calls();
        await synchronize();
        const before = used();
        for (let i = 0; i < 20; i++) calls();
        await synchronize();
        // On cpu small JS arrays are the garbage collector's; on cuda every byte is counted.
        if (device !== 'cpu') expect(used()).toBe(before);
      } finally {
        setDefaultDevice(previous);
      }
    });
});

describe('OpScope', () => {
  it('disposes the outputs of a call that fails, and its copies of plain arrays either way', () => {
    let output: Tensor | undefined, copy: Tensor | undefined;
    expect(() => OpScope.run((scope) => {
      copy = scope.vector('op', 'x', [1, 2], 'float32', 'cpu');
      output = scope.output([2], 'float32', 'cpu');
      throw new RangeError('op: refused');
    })).toThrow('op: refused');
    expect([output!.disposed, copy!.disposed]).toEqual([true, true]);
    const kept = OpScope.run((scope) => {
      copy = scope.vector('op', 'x', [1, 2], 'float32', 'cpu');
      return scope.output([2], 'float32', 'cpu');
    });
    expect([kept.disposed, copy!.disposed]).toEqual([false, true]);
  });
});

describe('storage that queued work reads', () => {
  // Node 20 copies a buffer marked untransferable; Node 21+ throws DataCloneError.
  const tryTransfer = (buffer: ArrayBufferLike) => {
    try {
      structuredClone(buffer, { transfer: [buffer as ArrayBuffer] });
    } catch (e) {
      expect((e as Error).name).toBe('DataCloneError');
    }
  };

  it('cannot be transferred away: a transfer copies it or throws', async () => {
    const t = tensor(new Float32Array([1, 2, 3]));
    const view = t.toArray();
    tryTransfer(view.buffer);
    expect(view.byteLength).toBe(12);
    const out = whiten(t);
    const big = new Float32Array(1 << 15).fill(2);
    const own = tensor(big, undefined, { copy: false });
    tryTransfer(big.buffer);
    expect(big.length, 'a copy: false buffer is pinned').toBe(1 << 15);
    expect(Array.from(await out.read())).toEqual(Array.from(whiten([1, 2, 3]).toArray()));
    expect(sequenceLogProbs(tensor(big, [1, 1 << 15]), tensor(new Uint8Array(1 << 15).fill(1), [1, 1 << 15])).item()).toBe(2 ** 16);
    own.dispose();
  });

  it('is refused over a SharedArrayBuffer without a copy, and copied from one otherwise', () => {
    const shared = new Float32Array(new SharedArrayBuffer(12)).fill(1.5);
    expect(() => tensor(shared, undefined, { copy: false })).toThrow(new TypeError(
      'tensor: copy: false needs data over an ArrayBuffer, got a Float32Array of length 3 over a SharedArrayBuffer'));
    for (const device of DEVICES) expect(Array.from(tensor(shared, undefined, { device }).toArray())).toEqual([1.5, 1.5, 1.5]);
  });
});

describe('tensor() and the conversions', () => {
  it('refuse what is not an array of numbers, with a TypeError', () => {
    const detached = new Float32Array(4);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expectThrows([
      [() => tensor(new DataView(new ArrayBuffer(8)) as never), TypeError,
        'tensor: data expected a TypedArray of numbers or a number[], got a DataView of 8 bytes'],
      [() => tensor(new BigInt64Array(2) as never), TypeError,
        'tensor: data expected a TypedArray of numbers or a number[], got a BigInt64Array of length 2'],
      [() => tensor(detached), TypeError,
        'tensor: data expected a TypedArray of numbers or a number[], got a Float32Array over a detached ArrayBuffer'],
      [() => tensor([1], [1], { copy: 'no' as never }), TypeError, 'tensor: copy expected a boolean, got "no"'],
      [() => fromBFloat16(new Float32Array([1]) as never), TypeError,
        'fromBFloat16: bits expected a Uint16Array of half-precision bit patterns, got a Float32Array of length 1'],
      [() => fromFloat16([1] as never), TypeError, 'fromFloat16: bits expected a Uint16Array of half-precision bit patterns, got an array of length 1'],
      [() => toBFloat16('abc' as never), TypeError, 'toBFloat16: data expected a TypedArray of numbers or a number[], got "abc"'],
      [() => toFloat16(null as never), TypeError, 'toFloat16: data expected a TypedArray of numbers or a number[], got null'],
    ]);
  });
});

describe('shapes', () => {
  it('refuse dimensions past 2^53; an output past the typed-array limit is a RangeError, one too large for host memory EOOM', () => {
    expectThrows([
      [() => tensor([], [2 ** 60, 0]), RangeError, 'tensor: shape expected non-negative integers below 2^53, got [1152921504606847000, 0]'],
      [() => tensor([1], ['1'] as never), TypeError, 'tensor: shape expected an array of integers, got ["1"]'],
    ]);
    // 2^40 float32 outputs: past Node 20's 2^32-element typed arrays; where they may be that long, 4 TB of memory.
    const empty = tensor(new Float32Array(0), [2 ** 40, 0]);
    const call = () => sequenceLogProbs(empty, tensor(new Uint8Array(0), [2 ** 40, 0]));
    if (bufferConstants.MAX_LENGTH < 2 ** 40) expect(call).toThrow(new RangeError(
      `cpu: a tensor of ${2 ** 40} float32 elements is past this Node.js's typed-array length limit (${bufferConstants.MAX_LENGTH})`));
    else expect(call).toThrow(expect.objectContaining({ code: 'EOOM' }));
  });
});
