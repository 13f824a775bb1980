// The CUDA emulator's execution model: kernels compiled by the host compiler
// (native/cuda_emu/README.md) run on the CPU with CUDA's semantics for what
// this package's kernels use.
//
// - A block runs on one OS thread; each of its CUDA threads is a fiber with
//   its own stack. Fibers switch only at barriers (__syncthreads, warp
//   shuffles and votes, cluster.sync), so a barrier is a real
//   rendezvous: a thread that reads what another wrote before the barrier
//   sees it, and one that reads without a barrier sees whatever the fiber
//   order gives (RK_EMU_ORDER=reverse runs them last to first, which turns
//   a missing __syncthreads into a wrong result).
// - __shared__ is thread_local: one copy per OS thread, that is per block.
// - Blocks run concurrently on OS threads: a cooperative or cluster launch
//   gets one thread per block (they must be co-resident: grid barriers and
//   cluster barriers rendezvous for real), a plain launch a worker per
//   resident block slot.
// - A barrier that cannot complete (threads waiting at different barriers,
//   a __syncthreads in divergent code) fails the launch with
//   cudaErrorLaunchFailure and a message on stderr, where a GPU would hang
//   or misbehave.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace rk_emu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// What a launch asks for: the kernel with its arguments bound, the shape, and
// how blocks must be scheduled.
struct Grid {
  Dim3 grid, block;
  size_t dynamicShared = 0;
  enum class Mode { Plain, Cooperative, Cluster } mode = Mode::Plain;
  unsigned clusterBlocks = 1;  // blocks per cluster (grid.x a multiple)
  std::function<void()> body;
};

// Runs a grid to completion; returns a cudaError_t value.
int run(const Grid& g);

// Blocks of `threads` threads resident per emulated multiprocessor.
int blocksPerMultiprocessor(int threads, size_t dynamicShared);
// Emulated multiprocessors (RK_EMU_SMS, default 4).
int multiprocessors();

// --- what device code calls (intrinsics.h) --------------------------------
struct ThreadIds {
  Dim3 threadIdx, blockIdx, blockDim, gridDim;
};
const ThreadIds& ids();
void syncThreads();
int syncThreadsOr(int predicate);
// Every live lane of the calling thread's warp deposits `bytes` bytes and
// gets back a pointer to the 32 deposits (lane order; lanes that exited hold
// stale bytes) valid until the warp's next exchange.
const unsigned char* warpExchange(const void* value, size_t bytes);
unsigned liveLaneMask();
// Fails the block: a warp intrinsic's mask names lanes that are not live.
void reportMaskMismatch(unsigned mask, unsigned live);
void* dynamicShared();

// Clusters (sm_90): the calling block's rank, the cluster's size, a barrier
// over every thread of the cluster, and another block's copy of a
// __shared__ variable.
unsigned clusterRank();
unsigned clusterSize();
void clusterSync();
void* mapSharedRank(void* sharedAddress, unsigned rank);

}  // namespace rk_emu
