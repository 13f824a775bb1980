/**
 * The one registry of benchmark shapes: realistic RLHF sizes per size class.
 * Suites take their shapes from here and from nowhere else
 * (`SHAPES.tokenLogProbs.small`, ...; variants of a shape append words to its
 * label), so `--list-shapes` is what runs; the GPU script's PyTorch peers
 * read the same lists from
 * `rlhf-kernels bench --list-shapes --size large --json`; and shapeLabel()
 * names a shape the same way everywhere, so rows of different runs and
 * tools join on (op, direction, label).
 *
 * Size classes:
 * - small:  the default of `npm start`; every family with its peers in about
 *           a minute on a 2-core VM.
 * - medium: a workstation CPU (seconds per case).
 * - large:  production sizes for the GPU run (and a patient CPU).
 */
import type { BenchSize } from './types.js';

/** Token log-probs: N flat tokens by a vocabulary of V. */
export interface TokenLogProbsShape {
  N: number;
  V: number;
  dtype: 'float32' | 'bfloat16';
}

/** [B, T]: GAE, whitening, PPO losses, sequence log-probs. */
export interface BatchTimeShape {
  B: number;
  T: number;
}

/** Group advantages: G groups of K completions of one prompt each. */
export interface GroupShape {
  G: number;
  K: number;
}

/** Pairwise preference losses over B pairs. */
export interface PairShape {
  B: number;
}

/** The calibration family: a float32 buffer of this many MiB. */
export interface BufferShape {
  MiB: number;
}

type PerSize<S> = Readonly<Record<BenchSize, readonly S[]>>;

// Vocabularies: Llama 2 / Mistral (32000), Llama 3 (128256), Qwen 2/2.5/3 (151936).
// [B, T]: a small rollout batch; a typical PPO / GRPO step (2.1 M tokens; for
// sequence log-probs a DPO batch of 256 pairs, both halves); long-context
// reasoning rollouts (16.8 M tokens).
const rollout = { B: 64, T: 512 }, step = { B: 512, T: 4096 }, longContext = { B: 2048, T: 8192 };
const sequences: PerSize<BatchTimeShape> = { small: [rollout], medium: [step], large: [longContext] };

export const SHAPES = {
  tokenLogProbs: {
    small: [
      { N: 256, V: 32000, dtype: 'float32' },
      { N: 256, V: 32000, dtype: 'bfloat16' },
    ],
    medium: [
      { N: 2048, V: 32000, dtype: 'float32' },
      { N: 1024, V: 128256, dtype: 'bfloat16' },
      { N: 1024, V: 151936, dtype: 'bfloat16' },
    ],
    large: [
      { N: 16384, V: 151936, dtype: 'bfloat16' }, // the H100 target of the token_logprobs kernels (5 GB)
      { N: 16384, V: 32000, dtype: 'float32' }, // a 16 K-token micro-batch, Llama 2 vocabulary
      { N: 4096, V: 128256, dtype: 'bfloat16' }, // Llama 3 vocabulary
      { N: 4096, V: 151936, dtype: 'float32' }, // 2.5 GB of fp32 logits
    ],
  } satisfies PerSize<TokenLogProbsShape>,
  gae: sequences,
  whiten: sequences,
  ppo: { small: [rollout, step], medium: [step], large: [step, longContext] } satisfies PerSize<BatchTimeShape>,
  sequenceLogProbs: { small: [step], medium: [step], large: [step, longContext] } satisfies PerSize<BatchTimeShape>,
  groupAdvantages: {
    small: [{ G: 1024, K: 16 }],
    medium: [{ G: 4096, K: 16 }],
    large: [{ G: 16384, K: 64 }], // 1 M scores: large-group GRPO
  } satisfies PerSize<GroupShape>,
  // 16 K pairs is a large DPO / reward-model step; 256 K shows the throughput
  // once launch and enqueue costs are amortized.
  preference: {
    small: [{ B: 16384 }],
    medium: [{ B: 16384 }, { B: 262144 }],
    large: [{ B: 16384 }, { B: 262144 }],
  } satisfies PerSize<PairShape>,
  calibration: {
    small: [{ MiB: 64 }],
    medium: [{ MiB: 256 }],
    large: [{ MiB: 1024 }], // far beyond any L2 / LLC
  } satisfies PerSize<BufferShape>,
} as const;

export type ShapeKind = keyof typeof SHAPES;

/** 'N=4096 V=151936 dtype=bfloat16': the shape's fields in order, as key=value. */
export function shapeLabel(shape: object): string {
  return Object.entries(shape)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ');
}

/** Every kind's shapes of one size, each with its label (what --list-shapes prints). */
export function shapesOf(size: BenchSize): Record<ShapeKind, (Record<string, unknown> & { label: string })[]> {
  const out = {} as Record<ShapeKind, (Record<string, unknown> & { label: string })[]>;
  for (const kind of Object.keys(SHAPES) as ShapeKind[])
    out[kind] = SHAPES[kind][size].map((s) => ({ ...s, label: shapeLabel(s) }));
  return out;
}
