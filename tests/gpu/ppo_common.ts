/**
 * What the PPO GPU suites share (ppo.test.ts, ppo_options.test.ts): the ops
 * run on cuda, compared with the float64 reference and with cpu, and the
 * shapes both use. Two files so that `node --test` runs them side by side:
 * the float64 references of each take about a minute of CPU (the longest
 * file sets how long a GPU machine runs the suite).
 */
import assert from 'node:assert/strict';
import { addon } from '../../lib/addon.js';
import { type Device, Tensor, ppoPolicyLoss, ppoValueLoss, tensor } from '../../lib/index.js';
import { runOp } from '../../lib/stream.js';
import { EPS, derivedTolerance, errorStats, f32, maxAbs } from '../helpers/tolerance.js';
import {
  type PolicyInputs, type PolicyResult, type ValueInputs, ppoPolicyLossReference, ppoValueLossReference,
} from '../reference/ppo.js';
import { AGGREGATIONS } from '../reference/ppo_inputs.js';

export const GPU: Device = 'cuda:0';

export interface Outputs {
  loss: number;
  clipFraction: number;
  clipFractionLower: number;
  approxKl: number;
  kl?: number;
  gradLogprobs: Float32Array;
  gradEntropy?: Float32Array;
}

function on(data: ArrayLike<number>, x: { B: number; T: number }, device: Device, mask = false) {
  return tensor(mask ? Uint8Array.from(data) : Float32Array.from(data), [x.B, x.T], { device });
}

/**
 * x's mask on `device`. `counted` false: without the row counts its upload
 * took (Tensor._rowCounts), so that the kernel counts the mask itself.
 */
function maskOn(x: { B: number; T: number; mask?: ArrayLike<number> }, device: Device, counted = true): Tensor | undefined {
  if (!x.mask) return undefined;
  const t = on(x.mask, x, device, true);
  if (!counted) t._rowCounts = undefined;
  return t;
}

/** `advantages`: in place of x's (e.g. one per row, [B]). */
export function runPolicy(x: PolicyInputs, device: Device, advantages?: Tensor, counted = true): Outputs {
  const r = ppoPolicyLoss(on(x.logprobs, x, device), on(x.oldLogprobs, x, device), advantages ?? on(x.advantages, x, device), {
    mask: maskOn(x, device, counted), clipLow: x.clipLow, clipHigh: x.clipHigh, dualClip: x.dualClip,
    aggregation: x.aggregation, refLogprobs: x.refLogprobs && on(x.refLogprobs, x, device), klCoef: x.klCoef,
    klEstimator: x.klEstimator, entropy: x.entropy && on(x.entropy, x, device), entropyCoef: x.entropyCoef,
    normalizer: x.normalizer, importanceSampling: x.importanceSampling,
  });
  const out: Outputs = {
    loss: r.loss.item(), clipFraction: r.clipFraction.item(), clipFractionLower: r.clipFractionLower.item(),
    approxKl: r.approxKl.item(), gradLogprobs: r.gradLogprobs.toArray(),
  };
  if (r.kl) out.kl = r.kl.item();
  if (r.gradEntropy) out.gradEntropy = r.gradEntropy.toArray();
  return out;
}

export function runValue(x: ValueInputs, device: Device, counted = true) {
  const r = ppoValueLoss(on(x.values, x, device), on(x.oldValues, x, device), on(x.returns, x, device), {
    mask: maskOn(x, device, counted), clip: x.clip, aggregation: x.aggregation, normalizer: x.normalizer,
  });
  return { loss: r.loss.item(), clipFraction: r.clipFraction.item(), gradValues: r.gradValues.toArray() };
}

/**
 * 4 × the naive float32 run's error, plus 8 ulps at the values' scale (see
 * tests/ppo_util.ts). With `other` set, compares out with other (cpu)
 * instead of the reference: each may be off by the rule, so twice it.
 */
function assertClose(out: ArrayLike<number>, exact: ArrayLike<number>, naive: ArrayLike<number>, scale: number, what: string, other?: ArrayLike<number>): void {
  const k = other ? 2 : 1;
  const tol = derivedTolerance(naive, exact, 4 * k, 8 * k * EPS.float32 * scale);
  const against = other ?? exact;
  const e = errorStats(out, against);
  assert.equal(e.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${e.worst}`);
  assert.ok(e.maxAbs <= tol, `${what}: error ${e.maxAbs} at ${e.worst} (${out[e.worst]} vs ${against[e.worst]}) > tolerance ${tol}`);
}

function comparePolicy(out: Outputs, ref: PolicyResult, naive: PolicyResult, what: string, cpu?: Outputs): void {
  assertClose([out.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`, cpu && [cpu.loss]);
  assertClose(out.gradLogprobs, ref.gradLogprobs, naive.gradLogprobs, ref.gradMagnitude, `${what} gradLogprobs`, cpu?.gradLogprobs);
  for (const key of ['clipFraction', 'clipFractionLower', 'approxKl'] as const)
    assertClose([out[key]], [ref[key]], [naive[key]], Math.abs(ref[key]), `${what} ${key}`, cpu && [cpu[key]]);
  assert.equal(out.gradEntropy === undefined, ref.gradEntropy === undefined, `${what} gradEntropy presence`);
  if (ref.gradEntropy)
    assertClose(out.gradEntropy!, ref.gradEntropy, naive.gradEntropy!, maxAbs(ref.gradEntropy), `${what} gradEntropy`, cpu?.gradEntropy);
  assert.equal(out.kl === undefined, ref.kl === undefined, `${what} kl presence`);
  if (ref.kl !== undefined) assertClose([out.kl!], [ref.kl], [naive.kl!], ref.klMagnitude!, `${what} kl`, cpu && [cpu.kl!]);
}

/** cuda against the reference, and against cpu. */
export function checkPolicy(x: PolicyInputs, what: string): Outputs {
  const ref = ppoPolicyLossReference(x);
  const naive = ppoPolicyLossReference(x, f32);
  const gpu = runPolicy(x, GPU);
  comparePolicy(gpu, ref, naive, `${what} cuda`);
  comparePolicy(gpu, ref, naive, `${what} cuda vs cpu`, runPolicy(x, 'cpu'));
  return gpu;
}

export function checkValue(x: ValueInputs, what: string): void {
  const ref = ppoValueLossReference(x);
  const naive = ppoValueLossReference(x, f32);
  const gpu = runValue(x, GPU);
  assertClose([gpu.loss], [ref.loss], [naive.loss], ref.lossMagnitude, `${what} loss`);
  assertClose(gpu.gradValues, ref.gradValues, naive.gradValues, maxAbs(ref.gradValues), `${what} gradValues`);
  assertClose([gpu.clipFraction], [ref.clipFraction], [naive.clipFraction], ref.clipFraction, `${what} clipFraction`);
}

/**
 * ppoPolicyLoss straight through the addon into outputs filled with NaN
 * bits first (x must have a mask, refLogprobs and entropy): an element the
 * kernel fails to write stays NaN.
 */
export function runPoisoned(x: PolicyInputs, aggregation: string, masked = true, normalizer = 0): Record<string, Float32Array> {
  const poisoned = (shape: number[]) => {
    const t = Tensor.empty(shape, 'float32', GPU);
    addon().fillDevice(t._buffer!, 0xff);
    return t;
  };
  const { B, T } = x;
  const outs = {
    gradLogprobs: poisoned([B, T]), gradEntropy: poisoned([B, T]), loss: poisoned([]), clipFraction: poisoned([]),
    clipFractionLower: poisoned([]), approxKl: poisoned([]), kl: poisoned([]),
  };
  const input = (a: ArrayLike<number>, mask = false) => on(a, x, GPU, mask)._storage();
  runOp('ppoPolicyLoss', 0, {
    rows: B, steps: T, logprobs: input(x.logprobs), oldLogprobs: input(x.oldLogprobs), advantages: input(x.advantages),
    mask: masked ? input(x.mask!, true) : null, refLogprobs: input(x.refLogprobs!), entropy: input(x.entropy!),
    clipLow: 0.2, clipHigh: 0.2, dualClip: 0, klCoef: 0.1, entropyCoef: 0.01, aggregation: AGGREGATIONS.indexOf(aggregation as never),
    klEstimator: 2, normalizer, ...Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, t._storage()])),
  });
  return Object.fromEntries(Object.entries(outs).map(([k, t]) => [k, t.toArray()]));
}

/**
 * Two kernels that run the same operations on the same inputs, compiled
 * apart (the policy loss with per-row inputs and without): the compiler may
 * fuse different multiply-adds, which moves a token's terms by an ulp or so
 * (1 seen under the emulator). Each output within 4 ulps of the float64
 * reference's magnitude; the clip fractions, counts over comparisons made
 * away from the kinks, exactly.
 */
export function sameUpToContraction(a: Outputs, b: Outputs, ref: PolicyResult, what: string): void {
  const near = (x: ArrayLike<number>, y: ArrayLike<number>, scale: number, name: string) => {
    const e = errorStats(x, y);
    assert.equal(e.mismatchedNonFinite, 0, `${what}: ${name} non-finite mismatch at ${e.worst}`);
    assert.ok(e.maxAbs <= 4 * EPS.float32 * scale, `${what}: ${name} differ by ${e.maxAbs} at ${e.worst} (${x[e.worst]} vs ${y[e.worst]})`);
  };
  near(a.gradLogprobs, b.gradLogprobs, ref.gradMagnitude, 'gradLogprobs');
  if (ref.gradEntropy) near(a.gradEntropy!, b.gradEntropy!, maxAbs(ref.gradEntropy), 'gradEntropy');
  near([a.loss], [b.loss], ref.lossMagnitude, 'loss');
  near([a.approxKl], [b.approxKl], Math.abs(ref.approxKl), 'approxKl');
  if (ref.kl !== undefined) near([a.kl!], [b.kl!], ref.klMagnitude!, 'kl');
  for (const key of ['clipFraction', 'clipFractionLower'] as const) assert.ok(Object.is(a[key], b[key]), `${what}: ${key} ${a[key]} vs ${b[key]}`);
}

export function sameBits(a: Outputs, b: Outputs, what: string): void {
  const bytes = (t: Float32Array | undefined) => (t ? Buffer.from(t.buffer, t.byteOffset, t.byteLength) : Buffer.alloc(0));
  assert.ok(bytes(a.gradLogprobs).equals(bytes(b.gradLogprobs)), `${what}: gradLogprobs differ`);
  assert.ok(bytes(a.gradEntropy).equals(bytes(b.gradEntropy)), `${what}: gradEntropy differ`);
  for (const key of ['loss', 'clipFraction', 'clipFractionLower', 'approxKl', 'kl'] as const)
    assert.ok(Object.is(a[key], b[key]), `${what}: ${key} ${a[key]} vs ${b[key]}`);
}

// Shapes and why: tails and tiny grids; packed tiles of many rows; one row
// per tile; row segments (T > 1024, the tile), whole (T a multiple of the
// tile: tile t is tokens [1024 t, 1024 (t + 1)), and every tile full) or
// not; the bench shape; more tiles than co-resident blocks (blocks loop
// over tiles, reusing shared memory).
export const GRID_SHAPES: [number, number][] = [[1, 1], [3, 7], [4, 33], [300, 3], [5, 1000], [9, 2000], [2, 2048], [3, 4100]];
export const LARGE_SHAPES: [number, number][] = [[512, 4096], [8000, 300], [1, 300000]];
