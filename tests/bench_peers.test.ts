// The benchmark peers (bench/peers/) compute the right numbers: each is
// checked on small seeded inputs against a float64 evaluation of the formula,
// within the tolerance rule (4x the error of the same formula in float32).
import { describe, expect, it } from 'vitest';
import { pairData, ppoData, tokenLogProbsData, uniforms } from '../bench/peers/data.js';
import { onnxTokenLogProbs } from '../bench/peers/onnx.js';
import { tfjsPairwiseLoss, tfjsPpoPolicyLoss, tfjsTokenLogProbs } from '../bench/peers/tfjs.js';
import type { BenchProvider, Prepared } from '../bench/types.js';
import { Rng } from './helpers/random.js';
import { EPS, type Round, derivedTolerance, errorStats, f32, f64 } from './helpers/tolerance.js';

async function prepared(p: BenchProvider): Promise<Prepared> {
  const r = await p.prepare();
  if (typeof r === 'string') throw new Error(`${p.name} cannot run: ${r}`);
  return r;
}

/** Within 4x the naive float32 error, plus two float32 roundings of the largest value. */
function expectClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>): void {
  const largest = Math.max(...Array.from(exact, Math.abs));
  const tol = derivedTolerance(naive, exact, 4, 2 * EPS.float32 * largest);
  const stats = errorStats(out, exact);
  expect(stats.mismatchedNonFinite).toBe(0);
  expect(stats.maxAbs).toBeLessThanOrEqual(tol);
}

function logprobs(logits: Float32Array, targets: Int32Array, N: number, V: number, round: Round): number[] {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const row = logits.subarray(i * V, (i + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum = round(sum + round(Math.exp(round(x - max))));
    out.push(round(round(row[targets[i]!]! - max) - round(Math.log(sum))));
  }
  return out;
}

function ppo(d: ReturnType<typeof ppoData>, clip: number, round: Round): { loss: number; grad: number[] } {
  const n = d.B * d.T;
  let count = 0;
  let total = 0;
  const active: number[] = [];
  for (let i = 0; i < n; i++) {
    const ratio = round(Math.exp(round(d.logprobs[i]! - d.oldLogprobs[i]!)));
    const unclipped = round(-d.advantages[i]! * ratio);
    const clipped = round(-d.advantages[i]! * Math.min(Math.max(ratio, round(1 - clip)), round(1 + clip)));
    count += d.mask[i]!;
    if (d.mask[i]) total = round(total + Math.max(unclipped, clipped));
    active.push(d.mask[i] && unclipped >= clipped ? unclipped : 0);
  }
  return { loss: round(total / count), grad: active.map((a) => round(a / count)) };
}

function pairwise(d: ReturnType<typeof pairData>, beta: number, round: Round) {
  let total = 0;
  const gradChosen: number[] = [];
  for (let i = 0; i < d.B; i++) {
    const x = round(beta * round(d.chosen[i]! - d.rejected[i]!));
    // softplus(-x) = log(1 + e^-x), written stably for either sign of x.
    total = round(total + round(Math.max(-x, 0) + Math.log1p(Math.exp(-Math.abs(x)))));
    gradChosen.push(round((-beta * round(1 / (1 + Math.exp(x)))) / d.B));
  }
  return { loss: round(total / d.B), gradChosen, gradRejected: gradChosen.map((g) => -g) };
}

describe('benchmark inputs', () => {
  it('repeat one random block past 4 M values, filling every element', () => {
    const period = 4_194_301;
    const n = 2 * period + 1000;
    const x = uniforms(new Rng(3), n, -4, 4);
    for (const i of [period, period + 1, 2 * period - 1, n - 1]) expect(x[i]).toBe(x[i % period]);
    expect(x.subarray(n - 1000).every((v) => v >= -4 && v < 4 && v !== 0)).toBe(true);
    expect(new Set(x.subarray(0, 1000)).size).toBe(1000);
  });
});

describe('tfjs-wasm peers', () => {
  // V = 1000: not a multiple of any SIMD width; V = 32000: a real vocabulary.
  it.each([
    [7, 1000],
    [3, 32000],
  ])('token log-probs N=%i V=%i', async (N, V) => {
    const p = await prepared(tfjsTokenLogProbs({ N, V, dtype: 'float32' }, 11));
    const d = tokenLogProbsData(N, V, 11);
    const out = (await p.run()) as Float32Array;
    expect(out.length).toBe(N);
    expectClose(out, logprobs(d.logits, d.targets, N, V, f64), logprobs(d.logits, d.targets, N, V, f32));
    await p.dispose?.();
  });

  it('says why it cannot run bfloat16 log-probs', async () => {
    expect(await tfjsTokenLogProbs({ N: 2, V: 8, dtype: 'bfloat16' }).prepare()).toBe('tfjs has no bfloat16 dtype');
  });

  it('PPO clipped policy loss and its gradient', async () => {
    const d = ppoData(4, 33, 5);
    const p = await prepared(tfjsPpoPolicyLoss({ B: 4, T: 33 }, 0.2, 5));
    const out = (await p.run()) as { loss: number; grad: Float32Array };
    const exact = ppo(d, 0.2, f64);
    const naive = ppo(d, 0.2, f32);
    // The data put some ratios beyond the clip range, so both branches are checked.
    expect(exact.grad.some((g, i) => g === 0 && d.mask[i])).toBe(true);
    expectClose([out.loss], [exact.loss], [naive.loss]);
    expectClose(out.grad, exact.grad, naive.grad);
    await p.dispose?.();
  });

  it('pairwise sigmoid loss and its gradients', async () => {
    const d = pairData(257, 9);
    const p = await prepared(tfjsPairwiseLoss({ B: 257 }, 0.5, 9));
    const out = (await p.run()) as { loss: number; gradChosen: Float32Array; gradRejected: Float32Array };
    const exact = pairwise(d, 0.5, f64);
    const naive = pairwise(d, 0.5, f32);
    expectClose([out.loss], [exact.loss], [naive.loss]);
    expectClose(out.gradChosen, exact.gradChosen, naive.gradChosen);
    expectClose(out.gradRejected, exact.gradRejected, naive.gradRejected);
    await p.dispose?.();
  });
});

describe('onnxruntime peer', () => {
  it.each([
    [7, 1000],
    [3, 32000],
  ])('token log-probs N=%i V=%i', async (N, V) => {
    const p = await prepared(onnxTokenLogProbs({ N, V, dtype: 'float32' }, 13));
    const d = tokenLogProbsData(N, V, 13);
    const out = (await p.run()) as Float32Array;
    expect(out.length).toBe(N);
    expectClose(out, logprobs(d.logits, d.targets, N, V, f64), logprobs(d.logits, d.targets, N, V, f32));
    await p.dispose?.();
  });

  it('says why it cannot run bfloat16 log-probs', async () => {
    const why = await onnxTokenLogProbs({ N: 2, V: 8, dtype: 'bfloat16' }).prepare();
    expect(why).toMatch(/bfloat16/);
    expect(typeof why).toBe('string');
  });
});
