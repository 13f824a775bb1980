/**
 * Type-level tests, checked by `tsc -p tsconfig.json` (npm test's pretest
 * step fails on an error here): what toArray() / read() return follows the
 * tensor's dtype, and op results are float32 tensors. Nothing here runs.
 */
import {
  type DType, type Float32Tensor, type HostArray, type PpoPolicyLossResult, Tensor, dpoLoss, gae, ppoPolicyLoss, tensor, tokenLogProbs,
  tokenLogProbsBackward,
} from '../../lib/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function expectType<A, B>(_: Equal<A, B>): void {}

export function dtypeTypes(dtype: DType): void {
  // tensor() infers the dtype from the data, or takes the one given.
  expectType<typeof f32, Tensor<'float32'>>(true);
  const f32 = tensor(new Float32Array(4));
  expectType<ReturnType<typeof f32.toArray>, Float32Array>(true);
  expectType<ReturnType<typeof f32.read>, Promise<Float32Array>>(true);
  expectType<ReturnType<typeof tensor<'int32'>>, Tensor<'int32'>>(true);
  const i32 = tensor(new Int32Array(4));
  expectType<typeof i32, Tensor<'int32'>>(true);
  expectType<ReturnType<typeof i32.toArray>, Int32Array>(true);
  expectType<typeof mask, Tensor<'uint8'>>(true);
  const mask = tensor(new Uint8Array(4), [2, 2]);
  const fromNumbers = tensor([1, 2, 3]);
  expectType<typeof fromNumbers, Float32Tensor>(true);
  const fromF64 = tensor(new Float64Array(2));
  expectType<typeof fromF64, Float32Tensor>(true);
  const bf16 = tensor(new Uint16Array(4), [2, 2], { dtype: 'bfloat16' });
  expectType<typeof bf16, Tensor<'bfloat16'>>(true);
  expectType<ReturnType<typeof bf16.toArray>, Uint16Array>(true);
  const converted = tensor([1, 2], undefined, { dtype: 'int32', device: 'cpu' });
  expectType<typeof converted, Tensor<'int32'>>(true);
  // A dtype known only at run time gives the untyped Tensor.
  const dynamic = tensor([1, 2], undefined, { dtype });
  expectType<typeof dynamic, Tensor<DType>>(true);
  expectType<ReturnType<typeof dynamic.toArray>, HostArray>(true);
  // A union of dtypes gives the union of their arrays.
  const either = tensor([1, 2], undefined, { dtype: dtype === 'int32' ? 'int32' : 'float32' });
  expectType<ReturnType<typeof either.toArray>, Float32Array | Int32Array>(true);
  expectType<ReturnType<typeof bf16.to>, Tensor<'bfloat16'>>(true);

  // Op results are float32; a typed tensor goes wherever a Tensor is taken.
  const { advantages } = gae(f32, f32, { gamma: 1, lambda: 1 });
  expectType<ReturnType<typeof advantages.toArray>, Float32Array>(true);
  const ppo = ppoPolicyLoss(f32, f32, f32, { mask, entropy: f32 });
  expectType<typeof ppo.gradEntropy, Float32Tensor>(true);
  expectType<typeof ppo.kl, undefined>(true);
  expectType<ReturnType<typeof ppo.loss.item>, number>(true);
  const dpo = dpoLoss(f32, f32, f32, f32);
  expectType<typeof dpo.chosenReward, Float32Tensor>(true);
  const lp = tokenLogProbs(bf16, i32, { entropy: true });
  expectType<typeof lp.entropy, Float32Tensor>(true);
  // The logits' gradient keeps the logits' dtype.
  expectType<ReturnType<typeof tokenLogProbsBackward<'bfloat16'>>, Tensor<'bfloat16'>>(true);
  const grad = tokenLogProbsBackward(bf16, i32, { ...lp, gradLogprobs: lp.logprobs });
  expectType<typeof grad, Tensor<'bfloat16'>>(true);
  const untyped: Tensor = grad;
  void untyped;

  // instanceof narrows to Tensor<DType>: toArray() stays typed (not any).
  const maybe: unknown = f32;
  if (maybe instanceof Tensor) expectType<ReturnType<typeof maybe.toArray>, HostArray>(true);
  // The result types take plain Tensors as their parameters too.
  const anyTensors: PpoPolicyLossResult<Tensor, Tensor> | undefined = undefined;
  void anyTensors;
}
