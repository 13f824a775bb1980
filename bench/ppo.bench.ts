/**
 * The PPO family's suite: ppoPolicyLoss (plain, and with a k3 KL term and an
 * entropy bonus) and ppoValueLoss, forward + backward in one call, token-mean
 * over a mask. Ours on each device against the plain TypeScript loop a user
 * would write (on cpu, at the shapes where it takes well under a second) and,
 * for the plain policy loss, tfjs-wasm.
 */
import { type Device, type Tensor, ppoPolicyLoss, ppoValueLoss, synchronize, tensor } from '../lib/index.js';
import { Rng } from '../tests/helpers/random.js';
import { type PpoData, ppoData, uniforms } from './peers/data.js';
import { tfjsPpoPolicyLoss } from './peers/tfjs.js';
import { type BatchTimeShape, SHAPES, shapeLabel } from './shapes.js';
import type { BenchCase, BenchProvider, BenchSize, BenchSuite } from './types.js';

/** The ts-loop peer runs up to this many tokens (about a second per call on cpu). */
const TS_LOOP_MAX = 512 * 4096;

interface Inputs extends PpoData {
  refLogprobs: Float32Array;
  entropy: Float32Array;
}

/**
 * ppoData (bench/peers/data.ts, the tfjs peer's inputs too): log-ratios
 * within ±0.3, so some tokens clip at 0.2, and 90% of tokens valid; plus
 * reference log-probs half way back and entropies in [0, 3).
 */
function inputs({ B, T }: BatchTimeShape, seed = 1): Inputs {
  const d = ppoData(B, T, seed);
  return {
    ...d,
    refLogprobs: d.logprobs.map((lp, i) => lp - (d.oldLogprobs[i]! - lp) / 2),
    entropy: uniforms(new Rng(seed + 1), B * T, 0, 3),
  };
}

type Variant = 'policy' | 'policy kl+entropy' | 'policy gspo' | 'value';

function ours(device: Device, shape: BatchTimeShape, variant: Variant): BenchProvider {
  return {
    name: 'rlhf-kernels',
    device,
    ours: true,
    async prepare() {
      const x = inputs(shape);
      const t = (a: Float32Array | Uint8Array): Tensor => tensor(a, [x.B, x.T], { device });
      const [lp, old, adv, mask, ref, ent] = [x.logprobs, x.oldLogprobs, x.advantages, x.mask, x.refLogprobs, x.entropy].map(t);
      const call = (): Tensor[] => {
        if (variant === 'value') return Object.values(ppoValueLoss(lp!, old!, adv!, { mask, clip: 0.2 }));
        const extra = variant === 'policy' ? {}
          : variant === 'policy gspo' ? { importanceSampling: 'sequence' as const }
          : { refLogprobs: ref, klCoef: 0.05, klEstimator: 'k3' as const, entropy: ent, entropyCoef: 0.01 };
        return Object.values(ppoPolicyLoss(lp!, old!, adv!, { mask, ...extra })).filter((v): v is Tensor => v !== undefined);
      };
      return {
        run: async () => {
          const outs = call();
          await synchronize(device);
          for (const o of outs) o.dispose();
        },
        dispose: () => {
          for (const a of [lp, old, adv, mask, ref, ent]) a!.dispose();
        },
      };
    },
  };
}

/**
 * What a TypeScript programmer writes: one loop for the loss terms, then the
 * gradient scaled by the valid count (token-mean), like verl's formulas.
 */
function tsLoop(shape: BatchTimeShape, variant: Variant): BenchProvider {
  return {
    name: 'ts-loop',
    device: 'cpu',
    async prepare() {
      const x = inputs(shape);
      const n = x.B * x.T;
      const grad = new Float32Array(n);
      const gradEntropy = new Float32Array(n);
      const withTerms = variant === 'policy kl+entropy';
      const rowLogRatio = new Float64Array(x.B);
      return {
        run: () => {
          if (variant === 'policy gspo')
            for (let b = 0; b < x.B; b++) {
              // GSPO: the row's mean log-ratio over its valid tokens.
              let sum = 0, valid = 0;
              for (let i = b * x.T; i < (b + 1) * x.T; i++)
                if (x.mask[i]) sum += x.logprobs[i]! - x.oldLogprobs[i]!, valid++;
              rowLogRatio[b] = valid ? sum / valid : 0;
            }
          let count = 0, loss = 0, clipped = 0, approxKl = 0, kl = 0;
          for (let i = 0; i < n; i++) {
            if (!x.mask[i]) {
              grad[i] = 0;
              continue;
            }
            count++;
            if (variant === 'value') {
              const v = x.logprobs[i]!, vOld = x.oldLogprobs[i]!, R = x.advantages[i]!;
              const vc = Math.min(Math.max(v, vOld - 0.2), vOld + 0.2);
              const l1 = (v - R) ** 2, l2 = (vc - R) ** 2;
              loss += 0.5 * Math.max(l1, l2);
              grad[i] = l1 >= l2 || vc === v ? v - R : 0;
              clipped += l2 > l1 ? 1 : 0;
              continue;
            }
            const lr = Math.min(Math.max(x.logprobs[i]! - x.oldLogprobs[i]!, -20), 20);
            const seq = variant === 'policy gspo' ? Math.min(Math.max(rowLogRatio[Math.floor(i / x.T)]!, -20), 20) : lr;
            const r = Math.exp(seq), A = x.advantages[i]!;
            const u = -A * r, c = -A * Math.min(Math.max(r, 0.8), 1.2);
            loss += Math.max(u, c);
            grad[i] = u >= c ? -A * r : 0;
            clipped += c > u ? 1 : 0;
            approxKl += Math.exp(-lr) + lr - 1;
            if (withTerms) {
              const d = x.logprobs[i]! - x.refLogprobs[i]!;
              const k = Math.exp(-d) + d - 1;
              kl += k;
              loss += 0.05 * k - 0.01 * x.entropy[i]!;
              grad[i]! += 0.05 * (1 - Math.exp(-d));
            }
          }
          for (let i = 0; i < n; i++) {
            grad[i]! /= count;
            if (withTerms) gradEntropy[i] = x.mask[i] ? -0.01 / count : 0;
          }
          return [loss / count, clipped / count, approxKl / count, kl / count];
        },
      };
    },
  };
}

function bytesPerToken(variant: Variant): number {
  // logprobs, old, advantages (4 B each) + mask (1 B) in, gradient (4 B) out;
  // the KL and entropy terms add refLogprobs and entropy in, gradEntropy out;
  // GSPO's first pass reads logprobs, old and mask once more.
  return variant === 'policy kl+entropy' ? 29 : variant === 'policy gspo' ? 26 : 17;
}

export const suite: BenchSuite = {
  family: 'ppo',
  cases(size: BenchSize, devices: Device[]): BenchCase[] {
    const out: BenchCase[] = [];
    for (const shape of SHAPES.ppo[size])
      for (const variant of ['policy', 'policy kl+entropy', 'policy gspo', 'value'] as const) {
        const n = shape.B * shape.T;
        const providers = devices.map((d) => ours(d, shape, variant));
        if (devices.includes('cpu') && n <= TS_LOOP_MAX) providers.push(tsLoop(shape, variant));
        // tfjs-wasm: the plain clipped loss, token-mean over the mask (its elementwise ops).
        if (devices.includes('cpu') && variant === 'policy') providers.push(tfjsPpoPolicyLoss(shape));
        out.push({
          op: variant === 'value' ? 'ppoValueLoss' : 'ppoPolicyLoss',
          direction: 'forward+backward',
          shape: `${shapeLabel(shape)}${variant === 'policy kl+entropy' ? ' kl+entropy' : variant === 'policy gspo' ? ' gspo' : ''}`,
          elements: n,
          bytes: n * bytesPerToken(variant),
          providers,
        });
      }
    return out;
  },
};
