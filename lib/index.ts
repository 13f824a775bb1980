/**
 * rlhf-kernels: fused CUDA and SIMD CPU kernels for RLHF in Node.js.
 * See README.md for the op table; each op's TSDoc in lib/ops/*.ts gives its contract.
 */
export { KernelError, type KernelErrorCode } from './errors.js';
export {
  type DType, type HostArray, type HostArrayOf, type HostArrays, toBFloat16, fromBFloat16, toFloat16, fromFloat16,
} from './dtype.js';
export { type Device, defaultDevice, setDefaultDevice } from './device.js';
export { type Float32Tensor, Tensor, concat, tensor, type TensorOptions, type TypedArray } from './tensor.js';
export {
  info, memory, synchronize, synchronizeSync, setNumThreads, type Info, type MemoryUse, type Backend,
} from './runtime.js';
export {
  pairwiseLoss, dpoLoss, sequenceLogProbs, sequenceLogProbsBackward, type PreferenceKind, type SequenceReduce,
  type PairwiseLossOptions, type DpoLossOptions, type PreferenceLossResult, type SequenceLogProbsOptions,
  type VectorInput,
} from './ops/preference.js';
export {
  gae, whiten, groupAdvantages, type GaeOptions, type GaeResult, type WhitenOptions, type GroupEstimator,
  type GroupAdvantagesOptions,
} from './ops/advantages.js';
export {
  ppoPolicyLoss, ppoValueLoss, type Aggregation, type ImportanceSampling, type KlEstimator, type PpoPolicyLossOptions,
  type PpoPolicyLossResult,
  type PpoValueLossOptions, type PpoValueLossResult,
} from './ops/ppo.js';
export {
  tokenLogProbs, tokenLogProbsBackward, type TokenLogProbsOptions, type TokenLogProbsResult, type TokenLogProbsGrads,
  type TokenLogProbsBackwardOptions,
} from './ops/token_logprobs.js';
