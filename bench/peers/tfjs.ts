/**
 * TensorFlow.js peers on its WebAssembly backend (@tensorflow/tfjs-core +
 * @tensorflow/tfjs-backend-wasm; SIMD, one thread in Node.js). Each is the
 * formulation a tfjs user would write from the formula. Every run() reads
 * its results back, so the time includes finishing the work.
 */
import type { BatchTimeShape, PairShape, TokenLogProbsShape } from '../shapes.js';
import type { BenchProvider, Prepared } from '../types.js';
import { pairData, ppoData, tokenLogProbsData } from './data.js';

type Tf = typeof import('@tensorflow/tfjs-core');

let loading: Promise<Tf> | undefined;

/** tfjs-core with the wasm backend active; rejects with why it cannot be. */
export function loadTfjs(): Promise<Tf> {
  return (loading ??= (async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-wasm');
    if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend failed to initialize');
    await tf.ready();
    return tf;
  })());
}

const NAME = 'tfjs-wasm';

/**
 * A tfjs-wasm provider: `setup` builds the iteration with tfjs loaded; the
 * provider is skipped, saying why, when tfjs cannot load.
 */
function tfjsProvider(setup: (tf: Tf) => Prepared): BenchProvider {
  return {
    name: NAME,
    device: 'cpu',
    async prepare() {
      let tf: Tf;
      try {
        tf = await loadTfjs();
      } catch (e) {
        return `tfjs-wasm unavailable: ${(e as Error).message.split('\n')[0]}`;
      }
      return setup(tf);
    },
  };
}

/** Token log-probs as log_softmax(logits)[i, y_i]: log-softmax, then a gather. run() gives the [N] log-probs. */
export function tfjsTokenLogProbs(shape: TokenLogProbsShape, seed = 1): BenchProvider {
  if (shape.dtype !== 'float32') {
    const reason = `tfjs has no ${shape.dtype} dtype`;
    return { name: NAME, device: 'cpu', prepare: async () => reason };
  }
  return tfjsProvider((tf) => {
    const { N, V, logits, targets } = tokenLogProbsData(shape.N, shape.V, seed);
    const x = tf.tensor2d(logits, [N, V]);
    const pairs = new Int32Array(2 * N);
    for (let i = 0; i < N; i++) {
      pairs[2 * i] = i;
      pairs[2 * i + 1] = targets[i]!;
    }
    const index = tf.tensor2d(pairs, [N, 2], 'int32');
    return {
      run: async () => {
        const out = tf.tidy(() => tf.gatherND(tf.logSoftmax(x), index));
        const values = (await out.data()) as Float32Array;
        out.dispose();
        return values;
      },
      dispose: () => tf.dispose([x, index]),
    };
  });
}

/**
 * PPO clipped policy loss with token-mean aggregation over the mask, and its
 * gradient written out elementwise (tfjs-core's npm build ships no gradient
 * registrations, so tf.grad is not an option): the unclipped term's
 * derivative -A * ratio where it is the larger, else 0.
 * run() gives { loss, grad } ([B*T] gradient wrt the log-probs).
 */
export function tfjsPpoPolicyLoss(shape: BatchTimeShape, clip = 0.2, seed = 1): BenchProvider {
  return tfjsProvider((tf) => {
    const d = ppoData(shape.B, shape.T, seed);
    const lp = tf.tensor1d(d.logprobs);
    const old = tf.tensor1d(d.oldLogprobs);
    const adv = tf.tensor1d(d.advantages);
    const mask = tf.tensor1d(Float32Array.from(d.mask));
    return {
      run: async () => {
        const [loss, grad] = tf.tidy(() => {
          const ratio = tf.exp(tf.sub(lp, old));
          const negAdv = tf.neg(adv);
          const unclipped = tf.mul(negAdv, ratio);
          const clipped = tf.mul(negAdv, tf.clipByValue(ratio, 1 - clip, 1 + clip));
          const count = tf.sum(mask);
          const perToken = tf.mul(mask, tf.maximum(unclipped, clipped));
          const active = tf.where(tf.greaterEqual(unclipped, clipped), unclipped, tf.zerosLike(unclipped));
          return [tf.div(tf.sum(perToken), count), tf.div(tf.mul(mask, active), count)];
        });
        const out = { loss: (await loss.data())[0]!, grad: (await grad.data()) as Float32Array };
        tf.dispose([loss, grad]);
        return out;
      },
      dispose: () => tf.dispose([lp, old, adv, mask]),
    };
  });
}

/**
 * Pairwise sigmoid (Bradley–Terry) loss mean(softplus(-beta (c - r))) and
 * its gradients -beta sigmoid(-x) / B wrt the chosen, the opposite wrt the
 * rejected. run() gives { loss, gradChosen, gradRejected }.
 */
export function tfjsPairwiseLoss(shape: PairShape, beta = 1, seed = 1): BenchProvider {
  return tfjsProvider((tf) => {
    const d = pairData(shape.B, seed);
    const c = tf.tensor1d(d.chosen);
    const r = tf.tensor1d(d.rejected);
    return {
      run: async () => {
        const [loss, gradChosen, gradRejected] = tf.tidy(() => {
          const x = tf.mul(tf.sub(c, r), beta);
          const g = tf.mul(tf.sigmoid(tf.neg(x)), -beta / shape.B);
          return [tf.mean(tf.softplus(tf.neg(x))), g, tf.neg(g)];
        });
        const out = {
          loss: (await loss.data())[0]!,
          gradChosen: (await gradChosen.data()) as Float32Array,
          gradRejected: (await gradRejected.data()) as Float32Array,
        };
        tf.dispose([loss, gradChosen, gradRejected]);
        return out;
      },
      dispose: () => tf.dispose([c, r]),
    };
  });
}
