// The launch shapes the GPU run may vary, with the values every build ships.
//
// A GPU session is short, and a machine handed back is gone: to compare
// shapes, scripts/gpu/prepare.sh builds one extra addon per variant
// (RK_GPU_VARIANTS: -D RK_<KNOB>=<value> through RLHF_KERNELS_CUDA_DEFINES)
// and scripts/gpu/run.sh times each beside the shipped build in the same
// call. A knob that wins moves its default here; release builds never set
// them. The CUDA emulator builds take the same defines, so a variant's
// correctness is checked on the CPU first (RLHF_KERNELS_CUDA=emu).
#pragma once

// GAE (kernels/advantages.cu): consecutive steps per thread (a multiple of
// 4, at most 32), threads per block, and the blocks per multiprocessor the
// registers must allow (__launch_bounds__).
#ifndef RK_GAE_ITEMS
#define RK_GAE_ITEMS 8
#endif
#ifndef RK_GAE_THREADS
#define RK_GAE_THREADS 512
#endif
#ifndef RK_GAE_MIN_BLOCKS
#define RK_GAE_MIN_BLOCKS 2
#endif
// The same two for rows longer than one tile of the above (RK_GAE_THREADS *
// RK_GAE_ITEMS steps) when there are enough rows to fill the GPU with these
// blocks (kernels/advantages.cu): the same bits, other speed. LONG for the
// most rows, MID for fewer. On an H200 at 2048 x 8192, 128 x 8 took 99.2 us
// against 113.5 for 256 x 4 (bench/results/gpu/2026-11-28-h200.md), and 64 x
// 15 93.5 against 99.1 for 128 x 8 (2026-11-28-h200-session14.md).
#ifndef RK_GAE_LONG_THREADS
#define RK_GAE_LONG_THREADS 64
#endif
#ifndef RK_GAE_LONG_MIN_BLOCKS
#define RK_GAE_LONG_MIN_BLOCKS 15
#endif
#ifndef RK_GAE_MID_THREADS
#define RK_GAE_MID_THREADS 256
#endif
#ifndef RK_GAE_MID_MIN_BLOCKS
#define RK_GAE_MID_MIN_BLOCKS 4
#endif
// 1: in the blocks for long rows (RK_GAE_LONG_*), a thread loads its steps
// of the row's next tile before it scans this one: two tiles' inputs live in
// registers (about 90: RK_GAE_LONG_MIN_BLOCKS 2 holds them without spills).
#ifndef RK_GAE_PIPELINE
#define RK_GAE_PIPELINE 0
#endif
// 1: GAE's loads and stores are marked streaming (__ldcs, __stcs: evict
// first) rather than read-only loads and plain stores.
#ifndef RK_GAE_STREAMING
#define RK_GAE_STREAMING 0
#endif

// PPO (kernels/ppo_tiles.cuh): threads per block, tokens per tile (a
// multiple of the threads), and the blocks per multiprocessor the registers
// must allow. The tile also fixes the order of the loss's sums.
#ifndef RK_PPO_THREADS
#define RK_PPO_THREADS 256
#endif
#ifndef RK_PPO_TILE
#define RK_PPO_TILE 1024
#endif
#ifndef RK_PPO_MIN_BLOCKS
#define RK_PPO_MIN_BLOCKS 4
#endif
// When a PPO tile's inputs are loaded: 0, each token's just before its math
// (one memory round trip per token and thread, in a row: the gradient's
// store may alias the next token's inputs as far as the compiler knows, so
// the PTX orders them); 1, all of the tile's first (one round trip per
// tile, 4 tokens' loads in flight per thread; at most 64 registers. ptxas
// -warn-spills, 2026-11-28: none on sm_90, the one timed; on sm_75 to
// sm_89 one 4-byte value in one to four masked policy instantiations,
// stored once before the tile loop and reloaded only where a packed tile
// weighs its rows; 4 to 12 bytes in four policy instantiations without a
// mask on sm_100; 4 to 16 in twelve on sm_120, 12 stored and 28 loaded in
// the masked plain one); 2, as 1, and the block's first tile before phase
// 1, in flight across the count and the grid barrier. Only the loads move:
// the arithmetic, and so the bits, are the same. (Copying the next tile into
// shared memory with cp.async while this one is computed took 0.87x on an
// H200, 0.79x at 5 blocks per SM: the kernel is bound by instruction
// issue, not memory; 2026-11-28-h200-session14.md.)
#ifndef RK_PPO_LOADS
#define RK_PPO_LOADS 1
#endif
// 1: when the counts phase 2 needs are one integer (token-mean's sum(M), or
// B' of whole-row tiles), each block adds its count and its arrival to one
// 64-bit tally, and the grid barrier's last poll reads the total: no per-tile
// counts written, read back by every block and summed (kernels/ppo.cu). The
// same integers, so the same bits.
#ifndef RK_PPO_TALLY
#define RK_PPO_TALLY 0
#endif
// 1: a launch that needs no grid barrier (a normalizer given or counted at
// the mask's upload, or no mask) is an ordinary one with a block per tile,
// not a cooperative one capped at the co-resident blocks that loop over the
// tiles: blocks start as others finish. Tiles and their order are the
// same, so the bits are.
#ifndef RK_PPO_PLAIN_GRID
#define RK_PPO_PLAIN_GRID 0
#endif

// Token log-probs backward on float32 logits (kernels/token_logprobs.cu):
// the blocks per SM its registers must allow. At 4 (64 registers a thread)
// its 32 logits a thread spill 16 to 36 bytes on sm_75 to sm_89 and 44 to
// 52 on sm_90 (ptxas -v); at 3 (80 registers) 0 to 8, with a quarter fewer
// warps resident: on an H200, 322.4 us against 359.5 at N=1024 V=151936.
// Half types take half the registers and stay at 4.
#ifndef RK_TLP_GRAD_F32_MIN_BLOCKS
#define RK_TLP_GRAD_F32_MIN_BLOCKS 3
#endif

// Preference loss (kernels/preference.cu): threads per block and pairs per
// thread. On an H200 at 16 K pairs, 128 x 1 with the warp combine below took
// 5.0 / 4.9 us (pairwise / DPO) against 5.3 / 5.4 for 256 x 2 with the block
// combine (2026-11-28-h200-session14.md).
#ifndef RK_PREF_THREADS
#define RK_PREF_THREADS 128
#endif
#ifndef RK_PREF_PAIRS_PER_THREAD
#define RK_PREF_PAIRS_PER_THREAD 1
#endif
// 1: the last block combines up to 128 blocks' partials in its first warp
// alone (no barrier); 0, in all its threads and then across warps (also
// what 1 does past 128 blocks).
#ifndef RK_PREF_WARP_COMBINE
#define RK_PREF_WARP_COMBINE 1
#endif

// How blocks publish partials to the last block and pass a grid barrier
// (kernels/arrival.cuh): 0, __threadfence around an atomic count; 1, an
// acquire-release count and acquire polls. Results are the same bits. On an
// H200, 1 took the preference loss from 5.5 to 5.3 us (pairwise) and 5.7 to
// 5.2 (DPO) at 16 K pairs, PPO from 0 to 3 % less.
#ifndef RK_ARRIVE_ACQ_REL
#define RK_ARRIVE_ACQ_REL 1
#endif
