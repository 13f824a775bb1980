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
// blocks (kernels/advantages.cu): the same bits, other speed.
#ifndef RK_GAE_LONG_THREADS
#define RK_GAE_LONG_THREADS 256
#endif
#ifndef RK_GAE_LONG_MIN_BLOCKS
#define RK_GAE_LONG_MIN_BLOCKS 4
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

// Preference loss (kernels/preference.cu): threads per block and pairs per
// thread.
#ifndef RK_PREF_THREADS
#define RK_PREF_THREADS 256
#endif
#ifndef RK_PREF_PAIRS_PER_THREAD
#define RK_PREF_PAIRS_PER_THREAD 2
#endif
