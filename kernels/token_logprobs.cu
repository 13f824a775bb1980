// CUDA backend of the token log-prob family: tokenLogProbs and its backward.
//
// Work is cut into items = (row, chunk). A chunk is a fixed run of 8192
// logits of one row: kBlock threads x kSlots 16-byte slots of E elements
// (4 fp32 or 8 bf16/fp16), thread i owning slots i, i + kBlock, ...
//
// Forward (one read of the logits): a block reduces a chunk to an
// LsePartial (the chunk max, then a sum of 2^t against it up a fixed tree;
// see chunkPartial) and writes it to scratch; a
// second kernel folds each row's partials left to right and writes
// lse / logprob / entropy. Batch invariance: the chunk grid, the tree inside
// a chunk and the fold order are functions of V and the dtype alone. The
// number of rows only changes which block picks which item, so a row gives
// the same bits in any batch, and when rows are few their chunks still
// spread over the whole GPU (the "split over V" is always on, with a split
// that depends on V only). The partials cost 16 bytes per 8192 logits
// (m, s, w, mLo).
//
// Alignment: a row starts on a 16-byte boundary only when V * sizeof(T) is a
// multiple of 16. A scalar head would shift which elements each thread sums,
// so the sums would depend on the row's address, i.e. on its position in the
// batch. Instead the element -> thread map is always the logical one above;
// aligned rows fetch a slot with one 16-byte load, other rows (and the last,
// partial slot of a row) fetch the same elements with scalar loads.
//
// Backward (one read, one write): the same items; each thread reads its
// slots, computes p (a + b t) (+ the target term) and writes the same
// slots, so in place every element is read before it is written, by the
// thread that writes it.
#include <cuda_runtime.h>

#include <cstdint>

#include "../native/cuda/device.h"
#include "common/token_logprobs.cuh"
#include "slots.cuh"
#include "tuning.cuh"

namespace rk::cudaops {
namespace {

namespace tlp = rk::tlp;

constexpr int kBlock = 256;
constexpr int kWarps = kBlock / 32;
// Each thread holds 32 logits of a chunk in registers: 8 slots of fp32 or 4
// of bf16/fp16 (8 or 4 16-byte loads in flight per thread).
constexpr int kPerThread = 32;
// At least 4 resident blocks per SM (<= 64 registers a thread): while some
// blocks reduce or compute, the others keep their loads in flight.
constexpr int kMinBlocks = 4;

template <class E>
constexpr int kSlots = kPerThread / E::kPerSlot;
// Elements of a chunk: 8192 for every dtype.
constexpr int64_t kChunk = int64_t{kBlock} * kPerThread;

// Slot s of this thread: its first element in the chunk, and how many of
// its elements lie in a chunk of n (0..E).
__device__ __forceinline__ int64_t slotFirst(int s, int perSlot) {
  return (static_cast<int64_t>(s) * kBlock + threadIdx.x) * perSlot;
}
__device__ __forceinline__ int slotValid(int64_t n, int s, int perSlot) {
  int64_t v = n - slotFirst(s, perSlot);
  return v <= 0 ? 0 : (v >= perSlot ? perSlot : static_cast<int>(v));
}

// ---------------------------------------------------------------- forward

// Per-warp slots in shared memory for the chunk reduction.
struct ChunkShared {
  float max[kWarps];
  float sum[kWarps];
  float w[kWarps];
};

// The chunk's LsePartial, valid in thread 0. Two cheap block reductions
// instead of one that rescales at every step: first the chunk max (max is
// exact, so any tree gives the same bits), then every thread sums 2^t
// against that max in its element order, and the sums go up a fixed tree
// (shuffle-down within a warp, then warps 0..7 in order by thread 0).
// fmaxf ignores NaN: an all -inf chunk is checked for a NaN; otherwise a
// NaN reaches the sum through 2^NaN. Two barriers per chunk; `sh` is free
// again once every thread has passed the second one.
template <class E, bool kEntropy>
__device__ __forceinline__ tlp::LsePartial chunkPartial(const uint4 (&raw)[kSlots<E>], float c, ChunkShared& sh) {
  constexpr int kE = E::kPerSlot;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float xmax = -INFINITY;
#pragma unroll
  for (int s = 0; s < kSlots<E>; ++s)
#pragma unroll
    for (int j = 0; j < kE; ++j) xmax = fmaxf(xmax, elem<E>(raw[s], j));
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) xmax = fmaxf(xmax, __shfl_xor_sync(0xffffffffu, xmax, offset));
  if (lane == 0) sh.max[warp] = xmax;
  __syncthreads();
  xmax = sh.max[0];
#pragma unroll
  for (int k = 1; k < kWarps; ++k) xmax = fmaxf(xmax, sh.max[k]);

  if (xmax == -INFINITY) {  // the same in every thread: the barrier below is uniform
    bool nan = false;
#pragma unroll
    for (int s = 0; s < kSlots<E>; ++s)
#pragma unroll
      for (int j = 0; j < kE; ++j) nan |= isnan(elem<E>(raw[s], j));
    return __syncthreads_or(nan) ? tlp::lseNaN() : tlp::lseEmpty();
  }
  // The shift, m + mLo (mLo: 0 unless the chunk is wide, see
  // kernels/common/token_logprobs.cuh): the same in every thread.
  const float m = __fmul_rn(xmax, c);
  const float mLo = tlp::wideShift(m) ? __fmaf_rn(xmax, c, -m) : 0.0f;
  float sum = 0.0f, w = 0.0f;
#pragma unroll
  for (int s = 0; s < kSlots<E>; ++s)
#pragma unroll
    for (int j = 0; j < kE; ++j) {
      float t = __fadd_rn(__fmaf_rn(elem<E>(raw[s], j), c, -m), -mLo);  // x c - m, exact in the FFMA; - 0 but in wide chunks
      float e = ex2(t);
      sum = __fadd_rn(sum, e);
      if (kEntropy) w = __fmaf_rn(e, fmaxf(t, tlp::kMinExp), w);  // 0 * -inf -> 0 * -127
    }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    sum = __fadd_rn(sum, __shfl_down_sync(0xffffffffu, sum, offset));
    if (kEntropy) w = __fadd_rn(w, __shfl_down_sync(0xffffffffu, w, offset));
  }
  if (lane == 0) {
    sh.sum[warp] = sum;
    sh.w[warp] = w;
  }
  __syncthreads();
  if (threadIdx.x == 0)
    for (int k = 1; k < kWarps; ++k) {
      sum = __fadd_rn(sum, sh.sum[k]);
      w = __fadd_rn(w, sh.w[k]);
    }
  return {m, sum, kEntropy ? w : 0.0f, mLo};
}

template <class E>
struct ForwardArgs {
  const typename E::Raw* logits;  // [rows, vocab]
  int64_t rows, vocab, chunks;
  float c;                        // log2(e) / T
  float4* partials;               // [rows * chunks] out: (m, s, w, -)
};

template <class E, bool kEntropy>
__global__ void __launch_bounds__(kBlock, kMinBlocks) lseChunks(ForwardArgs<E> a) {
  __shared__ ChunkShared shared;
  constexpr int kE = E::kPerSlot;
  const int64_t items = a.rows * a.chunks;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t row = item / a.chunks, lo = (item - row * a.chunks) * kChunk;
    const int64_t n = a.vocab - lo < kChunk ? a.vocab - lo : kChunk;
    const typename E::Raw* x = a.logits + row * a.vocab + lo;
    const bool aligned = aligned16(x);
    uint4 raw[kSlots<E>];
#pragma unroll
    for (int s = 0; s < kSlots<E>; ++s) {
      int valid = slotValid(n, s, kE);
      raw[s] = valid > 0 ? loadSlot<E, true>(x + slotFirst(s, kE), valid, aligned) : splatSlot<E>(E::kNegInf);
    }
    tlp::LsePartial p = chunkPartial<E, kEntropy>(raw, a.c, shared);
    if (threadIdx.x == 0) a.partials[item] = make_float4(p.m, p.s, p.w, p.mLo);
  }
}

template <class E>
__global__ void lseFold(ForwardArgs<E> a, TokenLogProbsParams p) {
  const int32_t opId = static_cast<int32_t>(OpId::tokenLogProbs);
  for (int64_t row = blockIdx.x * static_cast<int64_t>(kBlock) + threadIdx.x; row < a.rows;
       row += static_cast<int64_t>(gridDim.x) * kBlock) {
    const float4* parts = a.partials + row * a.chunks;
    tlp::LsePartial acc = {parts[0].x, parts[0].y, parts[0].z, parts[0].w};
    for (int64_t k = 1; k < a.chunks; ++k) acc = tlp::lseCombine(acc, {parts[k].x, parts[k].y, parts[k].z, parts[k].w});
    const int32_t y = p.targets[row];
    const bool ignored = y == p.ignoreIndex, valid = tlp::targetInVocab(y, a.vocab);
    float tTarget = NAN;
    if (!ignored && valid) tTarget = tlp::targetExponent(E::value(a.logits[row * a.vocab + y]), a.c, acc);
    tlp::RowResult r = tlp::lseFinish(acc, tTarget, ignored);
    if (!ignored && !valid) {
      tlp::reportBadTarget(p.error, opId, row, y, a.vocab, p.targetsShape);
      r.logprob = NAN;
    }
    p.logprobs[row] = r.logprob;
    p.lse[row] = r.lse;
    if (p.entropy) p.entropy[row] = r.entropy;
  }
}

// --------------------------------------------------------------- backward

// The backward's blocks per SM: float32's 32 logits a thread take twice the
// registers of half types' (kernels/tuning.cuh: RK_TLP_GRAD_F32_MIN_BLOCKS).
template <class E>
constexpr int kGradMinBlocks = E::kPerSlot == 4 ? RK_TLP_GRAD_F32_MIN_BLOCKS : kMinBlocks;

template <class E, bool kEntropyTerm>
__global__ void __launch_bounds__(kBlock, kGradMinBlocks<E>) gradChunks(TokenLogProbsBackwardParams p, int64_t chunks, float c,
                                                     tlp::LseScale lseScale) {
  constexpr int kE = E::kPerSlot;
  using Raw = typename E::Raw;
  const int64_t items = p.rows * chunks, vocab = p.vocab;
  for (int64_t item = blockIdx.x; item < items; item += gridDim.x) {
    const int64_t row = item / chunks, lo = (item - row * chunks) * kChunk;
    const int64_t n = vocab - lo < kChunk ? vocab - lo : kChunk;
    const Raw* x = static_cast<const Raw*>(p.logits) + row * vocab + lo;
    Raw* g = static_cast<Raw*>(p.gradLogits) + row * vocab + lo;
    const bool aligned = aligned16(x) && aligned16(g);
    const int32_t y = p.targets[row];
    const bool ignored = y == p.ignoreIndex, valid = tlp::targetInVocab(y, vocab);
    const float lse = p.lse[row];

    const bool bad = !ignored && !valid;
    if (bad || ignored || lse == -INFINITY) {
      // A bad target: NaN, reported. Ignored rows and rows of only -inf
      // logits (every p is 0): gradient 0.
      if (bad && threadIdx.x == 0)
        tlp::reportBadTarget(p.error, static_cast<int32_t>(OpId::tokenLogProbsBackward), row, y, vocab, p.targetsShape);
      const uint4 fill = splatSlot<E>(E::bits(bad ? NAN : 0.0f));
#pragma unroll
      for (int s = 0; s < kSlots<E>; ++s) {
        int cnt = slotValid(n, s, kE);
        if (cnt > 0) storeSlot<E>(g + slotFirst(s, kE), fill, cnt, aligned);
      }
      continue;
    }

    const float gLp = p.gradLogprobs ? p.gradLogprobs[row] : 0.0f;
    const float gH = kEntropyTerm ? p.gradEntropy[row] : 0.0f;
    const float h = kEntropyTerm ? p.entropy[row] : 0.0f;
    const tlp::GradRow r = tlp::gradRow(lse, gLp, h, gH, p.invTemperature, lseScale);
    const int64_t target = static_cast<int64_t>(y) - lo;  // in this chunk when 0 <= target < n

    uint4 raw[kSlots<E>];
#pragma unroll
    for (int s = 0; s < kSlots<E>; ++s) {
      int cnt = slotValid(n, s, kE);
      raw[s] = cnt > 0 ? loadSlot<E, false>(x + slotFirst(s, kE), cnt, aligned) : splatSlot<E>(E::kNegInf);
    }
#pragma unroll
    for (int s = 0; s < kSlots<E>; ++s) {
      const int64_t rel = target - slotFirst(s, kE);
      const int targetAt = rel >= 0 && rel < kE ? static_cast<int>(rel) : -1;  // in this slot
#pragma unroll
      for (int j = 0; j < kE; ++j) {
        float v = elem<E>(raw[s], j);
        float t = __fadd_rn(__fmaf_rn(v, c, -r.shift), -r.shiftLo);
        float e = ex2(t);
        float tc = fmaxf(t, tlp::kMinExp);  // e = 0 there; keeps 0 * t finite
        float gv = kEntropyTerm ? e * __fmaf_rn(r.b, tc, r.a) : e * r.a;
        if (j == targetAt) gv = tlp::gradTarget(r, v, tc, e);
        rawSet<E>(raw[s], j, E::bits(gv));
      }
    }
#pragma unroll
    for (int s = 0; s < kSlots<E>; ++s) {
      int cnt = slotValid(n, s, kE);
      if (cnt > 0) storeSlot<E>(g + slotFirst(s, kE), raw[s], cnt, aligned);
    }
  }
}

// ------------------------------------------------------------------ launch

template <class Kernel>
unsigned gridFor(Kernel kernel, const CudaLaunch& launch, int64_t work) {
  int perSm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, kBlock, 0) != cudaSuccess || perSm < 1) {
    cudaGetLastError();
    perSm = 1;
  }
  int64_t full = static_cast<int64_t>(launch.multiprocessors > 0 ? launch.multiprocessors : 1) * perSm;
  return static_cast<unsigned>(work < full ? work : full);
}

template <class E, bool kEntropy>
int forward(const TokenLogProbsParams& p, const CudaLaunch& launch) {
  if (p.rows == 0) return cudaSuccess;
  auto stream = static_cast<cudaStream_t>(launch.stream);
  ForwardArgs<E> a;
  a.logits = static_cast<const typename E::Raw*>(p.logits);
  a.rows = p.rows;
  a.vocab = p.vocab;
  a.chunks = (p.vocab + kChunk - 1) / kChunk;
  a.c = tlp::log2Scale(p.invTemperature);
  const int64_t items = a.rows * a.chunks;
  a.partials = static_cast<float4*>(launch.scratch(launch.owner, static_cast<size_t>(items) * sizeof(float4)));
  if (!a.partials) {
    cudaError_t e = cudaGetLastError();
    return e != cudaSuccess ? e : cudaErrorMemoryAllocation;
  }
  auto chunksKernel = lseChunks<E, kEntropy>;
  chunksKernel<<<gridFor(chunksKernel, launch, items), kBlock, 0, stream>>>(a);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  auto finishKernel = lseFold<E>;
  finishKernel<<<gridFor(finishKernel, launch, (a.rows + kBlock - 1) / kBlock), kBlock, 0, stream>>>(a, p);
  return cudaGetLastError();
}

template <class E, bool kEntropyTerm>
int backward(const TokenLogProbsBackwardParams& p, const CudaLaunch& launch) {
  if (p.rows == 0) return cudaSuccess;
  const int64_t chunks = (p.vocab + kChunk - 1) / kChunk;
  auto kernel = gradChunks<E, kEntropyTerm>;
  kernel<<<gridFor(kernel, launch, p.rows * chunks), kBlock, 0, static_cast<cudaStream_t>(launch.stream)>>>(
      p, chunks, tlp::log2Scale(p.invTemperature), tlp::lseScale(p.invTemperature));
  return cudaGetLastError();
}

template <bool kEntropy>
int forwardTyped(const TokenLogProbsParams& p, const CudaLaunch& launch) {
  switch (p.dtype) {
    case DType::Float32: return forward<F32, kEntropy>(p, launch);
    case DType::BFloat16: return forward<BF16, kEntropy>(p, launch);
    case DType::Float16: return forward<F16, kEntropy>(p, launch);
    default: return cudaErrorInvalidValue;
  }
}

template <bool kEntropyTerm>
int backwardTyped(const TokenLogProbsBackwardParams& p, const CudaLaunch& launch) {
  switch (p.dtype) {
    case DType::Float32: return backward<F32, kEntropyTerm>(p, launch);
    case DType::BFloat16: return backward<BF16, kEntropyTerm>(p, launch);
    case DType::Float16: return backward<F16, kEntropyTerm>(p, launch);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace

int tokenLogProbs(const TokenLogProbsParams& params, const CudaLaunch& launch) {
  return params.entropy ? forwardTyped<true>(params, launch) : forwardTyped<false>(params, launch);
}

int tokenLogProbsBackward(const TokenLogProbsBackwardParams& params, const CudaLaunch& launch) {
  return params.gradEntropy ? backwardTyped<true>(params, launch) : backwardTyped<false>(params, launch);
}

}  // namespace rk::cudaops
