/**
 * onnxruntime-node peers on its CPU execution provider, with models built in
 * memory (bench/peers/onnx_proto.ts). Threads: as many as our CPU kernels
 * use (intraOpNumThreads), so both sides get the same cores.
 */
import { info, tensor } from '../../lib/index.js';
import type { TokenLogProbsShape } from '../shapes.js';
import type { BenchProvider } from '../types.js';
import { tokenLogProbsData } from './data.js';
import { OnnxType, onnxModel } from './onnx_proto.js';

type Ort = typeof import('onnxruntime-node');

async function ortOrReason(): Promise<Ort | string> {
  try {
    return await import('onnxruntime-node');
  } catch (e) {
    return `onnxruntime-node unavailable: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** LogSoftmax(axis=-1) then GatherElements(axis=1) with targets [N, 1]: logprobs [N, 1]. */
export function tokenLogProbsModel(N: number, V: number, dtype: TokenLogProbsShape['dtype']): Uint8Array {
  const type = dtype === 'bfloat16' ? OnnxType.bfloat16 : OnnxType.float;
  return onnxModel({
    opset: 21,
    inputs: [
      { name: 'logits', type, shape: [N, V] },
      { name: 'targets', type: OnnxType.int64, shape: [N, 1] },
    ],
    outputs: [{ name: 'logprobs', type, shape: [N, 1] }],
    nodes: [
      { op: 'LogSoftmax', inputs: ['logits'], outputs: ['logsoftmax'], attributes: { axis: -1 } },
      { op: 'GatherElements', inputs: ['logsoftmax', 'targets'], outputs: ['logprobs'], attributes: { axis: 1 } },
    ],
  });
}

/**
 * Token log-probs in onnxruntime: log-softmax over the vocabulary, then a
 * gather of each row's target. run() gives the [N] log-probs. bfloat16 does
 * not run: prepare() says why (what the CPU EP answers to the bfloat16
 * model, or else that onnxruntime-node's JS Tensor has no bfloat16 type).
 */
export function onnxTokenLogProbs(shape: TokenLogProbsShape, seed = 1): BenchProvider {
  return {
    name: 'onnxruntime',
    device: 'cpu',
    async prepare() {
      const ort = await ortOrReason();
      if (typeof ort === 'string') return ort;
      let session: import('onnxruntime-node').InferenceSession;
      try {
        session = await ort.InferenceSession.create(tokenLogProbsModel(shape.N, shape.V, shape.dtype), {
          executionProviders: ['cpu'],
          intraOpNumThreads: info().cpu.threads,
          interOpNumThreads: 1,
        });
      } catch (e) {
        const why = (e as Error).message.split('\n')[0]!.replace(/^.*?(Could not find an implementation)/, '$1');
        return `onnxruntime ${ort.env.versions.node ?? ''} CPU EP cannot run this model in ${shape.dtype}: ${why}`;
      }
      if (shape.dtype !== 'float32') {
        await session.release();
        return `onnxruntime-node has no ${shape.dtype} tensors in its JS API`;
      }
      const { N, V, logits, targets } = tokenLogProbsData(shape.N, shape.V, seed);
      // The logits live where ours do (a host-pool block, huge pages where
      // the OS gives them), so that the memory's page size is not part of
      // the comparison. On a 2-core Xeon VM this changed onnxruntime's time
      // by 3% (31.2 against 32.1 ms at N=2048 V=32000).
      const pooled = tensor(logits, [N, V]);
      const feeds = {
        logits: new ort.Tensor('float32', pooled.toArray(), [N, V]),
        targets: new ort.Tensor('int64', BigInt64Array.from(targets, (t) => BigInt(t)), [N, 1]),
      };
      return {
        run: async () => (await session.run(feeds)).logprobs!.data as Float32Array,
        dispose: async () => {
          await session.release();
          pooled.dispose();
        },
      };
    },
  };
}
