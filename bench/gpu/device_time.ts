/**
 * Device time of each op at its goal shape, for `ncu` (Nsight Compute) to
 * read kernel by kernel on the GPU machine (scripts/gpu/run.sh):
 *
 *   ncu --clock-control none --metrics gpu__time_duration.sum --csv node dist/bench/gpu/device_time.js
 *
 * Each op runs once before its marker (a build that cannot run it, an
 * older one as a base, leaves the case out there), then once to warm up and
 * RUNS times, synchronized between runs, then twice QUEUED times back to
 * back: CALLS_PER_CASE calls after the marker. It
 * prints, per op, the wall time of the last QUEUED calls and one synchronize
 * (host work included): where that is far above the kernels' sum, the op is
 * bound by the host (validation, allocation, launch), not the GPU.
 *
 * Before each case it launches a marker, readBandwidth on a small buffer
 * (kernels chunkSums and finalSum, used by no case): bench/gpu/ncu_cases.ts
 * cuts the profile at the markers to give each case's device time per call.
 * RK_DEVICE_TIME_CASES (a regex) runs only the cases whose names match (and
 * makes only their inputs: the variant builds' runs time a few cases each).
 */
import {
  Tensor, dpoLoss, gae, groupAdvantages, pairwiseLoss, ppoPolicyLoss, ppoValueLoss, sequenceLogProbs,
  sequenceLogProbsBackward, synchronizeSync, tensor, tokenLogProbs, tokenLogProbsBackward, whiten,
} from '../../lib/index.js';
import { readBandwidth } from '../../lib/ops/calibration.js';

const RUNS = 3;
const QUEUED = 20;
export const CALLS_PER_CASE = RUNS + 1 + 2 * QUEUED;

/** Deterministic pseudo-random floats in [lo, hi): a 1 Mi block repeated (fast for GB-sized inputs). */
function floats(n: number, lo: number, hi: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  const head = Math.min(n, 1 << 20);
  for (let i = 0; i < head; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = lo + ((x >>> 0) / 2 ** 32) * (hi - lo);
  }
  for (let filled = head; filled < n; filled *= 2) out.copyWithin(filled, 0, Math.min(filled, n - filled));
  return out;
}

function cuda(data: Float32Array | Int32Array | Uint8Array, shape: number[], dtype?: 'bfloat16'): Tensor {
  return tensor(data, shape, { device: 'cuda', ...(dtype ? { dtype } : {}) });
}

interface Case {
  name: string;
  /** Its inputs, made before its marker (their uploads, and the forward a backward needs, are not its time). */
  needs: (() => unknown)[];
  run: () => unknown;
}

/** A value made on first use: a run restricted by RK_DEVICE_TIME_CASES builds only its cases' inputs. */
function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

function cases(): Case[] {
  const B = 512, T = 4096, n = B * T;
  const lp = lazy(() => cuda(floats(n, -3, 0, 1), [B, T]));
  const old = lazy(() => cuda(floats(n, -3, 0, 2), [B, T]));
  const adv = lazy(() => cuda(floats(n, -1, 1, 3), [B, T]));
  const rowAdv = lazy(() => cuda(floats(B, -1, 1, 21), [B]));
  const ref = lazy(() => cuda(floats(n, -3, 0, 4), [B, T]));
  const ent = lazy(() => cuda(floats(n, 0, 2, 5), [B, T]));
  const mask = lazy(() => cuda(Uint8Array.from(floats(n, 0, 1, 6), (v) => (v < 0.9 ? 1 : 0)), [B, T]));
  const bareMask = lazy(() => {
    const t = cuda(Uint8Array.from(floats(n, 0, 1, 6), (v) => (v < 0.9 ? 1 : 0)), [B, T]);
    t._rowCounts = undefined;  // (builds before the upload counted masks: the field is ignored)
    return t;
  });
  const values = lazy(() => cuda(floats(n, -1, 1, 7), [B, T]));
  const P = 16384;
  const c = lazy(() => cuda(floats(P, -3, 3, 8), [P])), r = lazy(() => cuda(floats(P, -3, 3, 9), [P]));
  const rc = lazy(() => cuda(floats(P, -300, -100, 10), [P])), rr = lazy(() => cuda(floats(P, -300, -100, 11), [P]));
  const N = 4096, V = 151936;
  const logits = lazy(() => cuda(floats(N * V, -4, 4, 12), [N, V], 'bfloat16'));
  const targets = lazy(() => cuda(Int32Array.from(floats(N, 0, V, 13), Math.floor), [N]));
  const gLp = lazy(() => cuda(floats(N, -1, 1, 14), [N]));
  const fwd = lazy(() => tokenLogProbs(logits(), targets()));
  // float32 logits (trainers that upcast them): the backward's registers differ (RK_TLP_GRAD_F32_MIN_BLOCKS)
  const N32 = 1024;
  const logits32 = lazy(() => cuda(floats(N32 * V, -4, 4, 22), [N32, V]));
  const targets32 = lazy(() => cuda(Int32Array.from(floats(N32, 0, V, 23), Math.floor), [N32]));
  const gLp32 = lazy(() => cuda(floats(N32, -1, 1, 24), [N32]));
  const fwd32 = lazy(() => tokenLogProbs(logits32(), targets32()));
  const scores = lazy(() => cuda(floats(65536, -1, 1, 15), [65536]));
  const big = 2048 * 8192;
  const bigRewards = lazy(() => cuda(floats(big, -1, 1, 16), [2048, 8192]));
  const bigValues = lazy(() => cuda(floats(big, -1, 1, 17), [2048, 8192]));
  const bigMask = lazy(() => cuda(Uint8Array.from(floats(big, 0, 1, 18), (v) => (v < 0.9 ? 1 : 0)), [2048, 8192]));
  const seqGrad = lazy(() => cuda(floats(2048, -1, 1, 19), [2048]));
  return [
    { name: `tokenLogProbs N=${N} V=${V} bf16`, needs: [logits, targets], run: () => tokenLogProbs(logits(), targets()) },
    { name: `tokenLogProbsBackward N=${N} V=${V} bf16`, needs: [logits, targets, fwd, gLp], run: () => tokenLogProbsBackward(logits(), targets(), { lse: fwd().lse, gradLogprobs: gLp() }) },
    { name: `tokenLogProbsBackward N=${N32} V=${V} f32`, needs: [logits32, targets32, fwd32, gLp32], run: () => tokenLogProbsBackward(logits32(), targets32(), { lse: fwd32().lse, gradLogprobs: gLp32() }) },
    { name: `ppoPolicyLoss B=${B} T=${T} mask`, needs: [lp, old, adv, mask], run: () => ppoPolicyLoss(lp(), old(), adv(), { mask: mask() }) },
    // The mask without the count its upload took: the kernel counts it (phase 1 and a grid barrier).
    { name: `ppoPolicyLoss B=${B} T=${T} mask device-counted`, needs: [lp, old, adv, bareMask], run: () => ppoPolicyLoss(lp(), old(), adv(), { mask: bareMask() }) },
    // A given normalizer (a global batch's token count): no count phase, no grid barrier.
    { name: `ppoPolicyLoss B=${B} T=${T} mask normalizer`, needs: [lp, old, adv, mask], run: () => ppoPolicyLoss(lp(), old(), adv(), { mask: mask(), normalizer: 4 * n }) },
    // GRPO: one advantage per row ([B]), 4 bytes a token less to read.
    { name: `ppoPolicyLoss B=${B} T=${T} mask row-advantages`, needs: [lp, old, rowAdv, mask], run: () => ppoPolicyLoss(lp(), old(), rowAdv(), { mask: mask(), aggregation: 'seq-mean-token-mean' }) },
    { name: `ppoPolicyLoss B=${B} T=${T} mask gspo row-advantages`, needs: [lp, old, rowAdv, mask], run: () => ppoPolicyLoss(lp(), old(), rowAdv(), { mask: mask(), aggregation: 'seq-mean-token-mean', importanceSampling: 'sequence' }) },
    { name: `ppoPolicyLoss B=${B} T=${T} mask kl+entropy`, needs: [lp, old, adv, mask, ref, ent], run: () => ppoPolicyLoss(lp(), old(), adv(), { mask: mask(), refLogprobs: ref(), klCoef: 0.05, entropy: ent(), entropyCoef: 0.01 }) },
    { name: `ppoValueLoss B=${B} T=${T} mask`, needs: [values, old, adv, mask], run: () => ppoValueLoss(values(), old(), adv(), { mask: mask(), clip: 0.2 }) },
    { name: `gae B=${B} T=${T} mask`, needs: [adv, values, mask], run: () => gae(adv(), values(), { gamma: 0.99, lambda: 0.95, mask: mask() }) },
    // The bandwidth goal's shape (>= 8 M elements).
    { name: `gae B=2048 T=8192 mask`, needs: [bigRewards, bigValues, bigMask], run: () => gae(bigRewards(), bigValues(), { gamma: 0.99, lambda: 0.95, mask: bigMask() }) },
    { name: `whiten B=${B} T=${T} mask`, needs: [adv, mask], run: () => whiten(adv(), { mask: mask() }) },
    { name: `whiten B=2048 T=8192 mask`, needs: [bigRewards, bigMask], run: () => whiten(bigRewards(), { mask: bigMask() }) },
    { name: `groupAdvantages G=4096 K=16`, needs: [scores], run: () => groupAdvantages(scores(), { groupSize: 16, estimator: 'grpo' }) },
    { name: `pairwiseLoss B=${P}`, needs: [c, r], run: () => pairwiseLoss(c(), r()) },
    { name: `dpoLoss B=${P}`, needs: [rc, rr, c, r], run: () => dpoLoss(rc(), rr(), c(), r()) },
    { name: `sequenceLogProbs B=${B} T=${T}`, needs: [lp, mask], run: () => sequenceLogProbs(lp(), mask()) },
    { name: `sequenceLogProbs B=2048 T=8192`, needs: [bigRewards, bigMask], run: () => sequenceLogProbs(bigRewards(), bigMask()) },
    { name: `sequenceLogProbsBackward B=2048 T=8192 mean`, needs: [seqGrad, bigMask], run: () => sequenceLogProbsBackward(seqGrad(), bigMask(), { reduce: 'mean' }) },
  ];
}

/** Gives back the device memory of an op's outputs (a tensor or an object of them). */
function release(out: unknown): void {
  if (out instanceof Tensor) out.dispose();
  else if (out && typeof out === 'object') for (const v of Object.values(out)) if (v instanceof Tensor) v.dispose();
}

function main(): void {
  const marker = cuda(floats(1 << 16, 0, 1, 20), [1 << 16]);
  const only = new RegExp(process.env.RK_DEVICE_TIME_CASES ?? '');
  for (const c of cases().filter((k) => only.test(k.name))) {
    for (const make of c.needs) make();
    // A case this build cannot run (an older one, as a base) is left out
    // before its marker, so the profile's cases still line up with the names.
    try {
      release(c.run());
      synchronizeSync('cuda');
    } catch (e) {
      console.log(`device_time: ${c.name}: not run: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    release(readBandwidth(marker));
    synchronizeSync('cuda');
    for (let i = 0; i <= RUNS; i++) {
      const out = c.run();
      synchronizeSync('cuda');
      release(out);
    }
    // Twice: the first round grows the memory pool to QUEUED sets of outputs.
    let us = 0;
    for (let round = 0; round < 2; round++) {
      const outs: unknown[] = [];
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < QUEUED; i++) outs.push(c.run());
      synchronizeSync('cuda');
      us = Number(process.hrtime.bigint() - t0) / 1e3 / QUEUED;
      outs.forEach(release);
    }
    console.log(`device_time: ${c.name}: ${us.toFixed(1)} us per call, ${QUEUED} queued then one synchronize`);
  }
}

if (process.argv[1]?.endsWith('device_time.js')) main();
