// The emulator's scheduler (fibers.h): blocks on OS threads, CUDA threads as
// fibers that switch at barriers.
#include "fibers.h"

#include <sched.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace rk_emu {
namespace {

constexpr size_t kStackBytes = 64 << 10;
constexpr unsigned kWarpSize = 32;
constexpr size_t kSlotBytes = 16;
constexpr int kLaunchFailure = 719;        // cudaErrorLaunchFailure
constexpr int kInvalidConfiguration = 9;   // cudaErrorInvalidConfiguration
constexpr int kCooperativeTooLarge = 720;  // cudaErrorCooperativeLaunchTooLarge
constexpr int kInvalidValue = 1;           // cudaErrorInvalidValue
// Dynamic shared memory a launch gets without opting in (cudaFuncSetAttribute,
// which no kernel here calls); a GPU refuses more with cudaErrorInvalidValue.
constexpr size_t kDefaultDynamicShared = 48u << 10;

// Every __shared__ variable is a thread_local of this module, laid out at a
// fixed offset from this one in every thread's TLS block: that offset maps an
// address in one block's shared memory to the same variable in another's.
thread_local char tlsAnchor;

// ------------------------------------------------------- context switches

// On x86-64 a switch saves the callee-saved registers on the old stack and
// pops them from the new one: no system call (glibc's swapcontext makes one
// per switch, for the signal mask, and the emulator switches at every
// barrier of every thread). Elsewhere, ucontext.
#if defined(__x86_64__)
extern "C" void rk_emu_switch(void** save, void* load);
asm(R"(
  .text
  .globl rk_emu_switch
  .hidden rk_emu_switch
  .type rk_emu_switch, @function
rk_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rk_emu_switch, .-rk_emu_switch
)");

struct Context {
  void* sp = nullptr;
};
void switchContext(Context& from, Context& to) { rk_emu_switch(&from.sp, to.sp); }
// A fresh context whose first switch "returns" into entry (which never
// returns), with the default floating-point control words.
void makeContext(Context& c, char* stack, size_t bytes, void (*entry)()) {
  auto* top = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(stack + bytes)) & ~uintptr_t{15});
  top[-1] = 0;                                     // entry's return address: none
  top[-2] = reinterpret_cast<uint64_t>(entry);     // popped by ret
  for (int r = 3; r <= 8; ++r) top[-r] = 0;        // rbp rbx r12 r13 r14 r15
  top[-9] = 0x1f80u | (uint64_t{0x037fu} << 32);  // mxcsr, x87 control word
  c.sp = top - 9;
}
#else
struct Context {
  ucontext_t uc;
};
void switchContext(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
void makeContext(Context& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

// ------------------------------------------------------------------ blocks

enum class Wait { None, Block, Warp, Cluster, Done };

struct Block;
struct Fiber {
  Context context;
  Wait wait = Wait::None;
  unsigned linear = 0;
  ThreadIds ids;
};

struct Warp {
  unsigned live = 0, arrived = 0;
  unsigned liveMask = 0;  // lanes that have not returned
  uint64_t generation = 0;
  alignas(16) unsigned char slots[2][kWarpSize][kSlotBytes];
};

// The OS-level rendezvous of a cluster's blocks (cluster.sync after each
// block's own threads have all arrived).
struct Cluster {
  std::mutex mutex;
  std::condition_variable changed;
  unsigned expected = 0, arrived = 0;
  uint64_t generation = 0;
  std::vector<char*> anchors;

  void releaseIfComplete() {
    if (arrived > 0 && arrived == expected) {
      arrived = 0;
      ++generation;
      changed.notify_all();
    }
  }
  void arriveAndWait() {
    std::unique_lock<std::mutex> lock(mutex);
    const uint64_t g = generation;
    ++arrived;
    releaseIfComplete();
    changed.wait(lock, [&] { return generation != g; });
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mutex);
    --expected;
    releaseIfComplete();
  }
};

struct Block {
  const Grid* grid = nullptr;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Context scheduler;
  Fiber* current = nullptr;
  unsigned live = 0, arrived = 0, clusterArrived = 0;
  uint64_t generation = 0;
  int orSlots[2] = {0, 0};
  Cluster* cluster = nullptr;
  unsigned clusterRank = 0;
  std::vector<unsigned char> dynamicShared;
  std::string failure;
};

thread_local Block* tBlock = nullptr;

// ---------------------------------------------------------------- settings

enum class Order { Forward, Reverse, Random };

Order order() {
  static const Order o = [] {
    const char* v = std::getenv("RK_EMU_ORDER");
    if (v && !std::strcmp(v, "reverse")) return Order::Reverse;
    if (v && !std::strcmp(v, "random")) return Order::Random;
    return Order::Forward;
  }();
  return o;
}

// -------------------------------------------------------------- fiber stacks

// Stacks for one block's fibers, reused across launches (creating them costs
// page faults). No guard pages: a grid of 128 blocks of 256 threads would
// need 64 Ki mappings, the kernel's limit; each stack's lowest word holds a
// canary instead, checked when the block ends.
struct Arena {
  char* base = nullptr;
  size_t fibers = 0;
};
std::mutex arenaMutex;
std::vector<Arena> idleArenas;

constexpr uint64_t kCanary = 0x726b5f656d755f21ull;  // "rk_emu_!"

Arena takeArena(size_t fibers) {
  {
    std::lock_guard<std::mutex> lock(arenaMutex);
    for (size_t i = 0; i < idleArenas.size(); ++i)
      if (idleArenas[i].fibers >= fibers) {
        Arena a = idleArenas[i];
        idleArenas.erase(idleArenas.begin() + static_cast<std::ptrdiff_t>(i));
        return a;
      }
  }
  void* p = mmap(nullptr, kStackBytes * fibers, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::perror("rk_emu: mmap of fiber stacks");
    std::abort();
  }
  return Arena{static_cast<char*>(p), fibers};
}

void giveArena(Arena a) {
  std::lock_guard<std::mutex> lock(arenaMutex);
  idleArenas.push_back(a);
}

// ---------------------------------------------------------------- barriers

Block& block() {
  if (!tBlock || !tBlock->current) {
    std::fprintf(stderr, "rk_emu: a device intrinsic was called outside a kernel\n");
    std::abort();
  }
  return *tBlock;
}

void yield(Block& b) { switchContext(b.current->context, b.scheduler); }

void fail(Block& b, const std::string& why) {
  if (b.failure.empty()) b.failure = why;
}

void releaseBlock(Block& b) {
  for (Fiber& f : b.fibers)
    if (f.wait == Wait::Block) f.wait = Wait::None;
  b.arrived = 0;
  ++b.generation;
  b.orSlots[b.generation & 1] = 0;
}

void releaseWarp(Block& b, unsigned w) {
  Warp& warp = b.warps[w];
  const unsigned end = std::min<unsigned>((w + 1) * kWarpSize, static_cast<unsigned>(b.fibers.size()));
  for (unsigned i = w * kWarpSize; i < end; ++i)
    if (b.fibers[i].wait == Wait::Warp) b.fibers[i].wait = Wait::None;
  warp.arrived = 0;
  ++warp.generation;
}

void fiberMain() {
  Block& b = *tBlock;
  b.grid->body();
  Fiber& f = *b.current;
  f.wait = Wait::Done;
  --b.live;
  const unsigned w = f.linear / kWarpSize;
  Warp& warp = b.warps[w];
  --warp.live;
  warp.liveMask &= ~(1u << (f.linear % kWarpSize));
  if (warp.arrived > 0 && warp.arrived == warp.live) releaseWarp(b, w);
  if (b.arrived > 0 && b.arrived == b.live) releaseBlock(b);
  yield(b);  // never resumed
}

std::string describeStall(const Block& b) {
  unsigned atBlock = 0, atWarp = 0, atCluster = 0;
  for (const Fiber& f : b.fibers) {
    atBlock += f.wait == Wait::Block;
    atWarp += f.wait == Wait::Warp;
    atCluster += f.wait == Wait::Cluster;
  }
  return "barrier deadlock: " + std::to_string(atBlock) + " thread(s) wait at __syncthreads, " +
         std::to_string(atWarp) + " at a warp intrinsic, " + std::to_string(atCluster) +
         " at cluster.sync, " + std::to_string(b.live) + " live";
}

// Runs every fiber of one block until all have returned.
void runBlock(Block& b, const Dim3& blockIdx, Arena& arena) {
  const Grid& g = *b.grid;
  const unsigned threads = g.block.x * g.block.y * g.block.z;
  b.fibers.assign(threads, Fiber{});
  b.warps.assign((threads + kWarpSize - 1) / kWarpSize, Warp{});
  b.live = threads;
  b.arrived = b.clusterArrived = 0;
  b.generation = 0;
  b.orSlots[0] = b.orSlots[1] = 0;
  b.dynamicShared.assign(g.dynamicShared, 0xff);  // uninitialised on a GPU: poisoned here
  for (unsigned i = 0; i < threads; ++i) {
    Fiber& f = b.fibers[i];
    f.linear = i;
    f.ids.threadIdx = Dim3{i % g.block.x, (i / g.block.x) % g.block.y, i / (g.block.x * g.block.y)};
    f.ids.blockIdx = blockIdx;
    f.ids.blockDim = g.block;
    f.ids.gridDim = g.grid;
    ++b.warps[i / kWarpSize].live;
    b.warps[i / kWarpSize].liveMask |= 1u << (i % kWarpSize);
    char* stack = arena.base + i * kStackBytes;
    std::memcpy(stack, &kCanary, sizeof kCanary);
    makeContext(f.context, stack, kStackBytes, fiberMain);
  }

  std::vector<unsigned> sequence(threads);
  for (unsigned i = 0; i < threads; ++i) sequence[i] = order() == Order::Reverse ? threads - 1 - i : i;
  std::minstd_rand random(blockIdx.x * 7919u + blockIdx.y * 104729u + blockIdx.z + 1u);
  while (b.live > 0 && b.failure.empty()) {
    if (order() == Order::Random) std::shuffle(sequence.begin(), sequence.end(), random);
    bool ran = false;
    for (unsigned i : sequence) {
      Fiber& f = b.fibers[i];
      if (f.wait != Wait::None) continue;
      b.current = &f;
      switchContext(b.scheduler, f.context);
      b.current = nullptr;
      ran = true;
      if (!b.failure.empty()) break;
    }
    if (ran || b.live == 0 || !b.failure.empty()) continue;
    if (b.cluster && b.clusterArrived == b.live) {
      b.cluster->arriveAndWait();
      for (Fiber& f : b.fibers)
        if (f.wait == Wait::Cluster) f.wait = Wait::None;
      b.clusterArrived = 0;
      continue;
    }
    fail(b, describeStall(b));
  }
  for (unsigned i = 0; i < threads; ++i)
    if (std::memcmp(arena.base + i * kStackBytes, &kCanary, sizeof kCanary) != 0)
      fail(b, "thread " + std::to_string(i) + " overflowed its " + std::to_string(kStackBytes >> 10) + " KiB stack");
}

}  // namespace

// ------------------------------------------------------------------ launch

int multiprocessors() {
  static const int n = [] {
    const char* v = std::getenv("RK_EMU_SMS");
    const int k = v ? std::atoi(v) : 0;
    return k > 0 ? k : 4;
  }();
  return n;
}

int blocksPerMultiprocessor(int threads, size_t dynamicShared) {
  if (threads <= 0 || threads > 1024) return 0;
  const int byThreads = 2048 / threads;
  const int byShared = dynamicShared ? static_cast<int>((228u << 10) / dynamicShared) : 32;
  return std::max(0, std::min({byThreads, byShared, 32}));
}

int run(const Grid& g) {
  const unsigned threads = g.block.x * g.block.y * g.block.z;
  const uint64_t total = uint64_t{g.grid.x} * g.grid.y * g.grid.z;
  if (threads == 0 || threads > 1024 || total == 0) return kInvalidConfiguration;
  if (g.dynamicShared > kDefaultDynamicShared) return kInvalidValue;
  const uint64_t resident =
      uint64_t(blocksPerMultiprocessor(static_cast<int>(threads), g.dynamicShared)) * multiprocessors();
  if (g.mode == Grid::Mode::Cooperative && total > resident) return kCooperativeTooLarge;
  const unsigned perCluster = g.mode == Grid::Mode::Cluster ? g.clusterBlocks : 1;
  if (perCluster == 0 || perCluster > 8 || g.grid.x % perCluster != 0) return kInvalidConfiguration;
  // Co-resident blocks: all of them when they may wait for each other;
  // otherwise a few workers (the blocks of a plain launch never wait).
  const uint64_t plainWorkers = std::max<uint64_t>(2, std::thread::hardware_concurrency());
  const uint64_t workers = g.mode == Grid::Mode::Plain ? std::min({total, std::max<uint64_t>(resident, 1), plainWorkers}) : total;

  std::vector<std::unique_ptr<Cluster>> clusters(g.mode == Grid::Mode::Cluster ? total / perCluster : 0);
  for (auto& c : clusters) {
    c = std::make_unique<Cluster>();
    c->expected = perCluster;
    c->anchors.assign(perCluster, nullptr);
  }
  std::atomic<uint64_t> next{0};
  std::mutex failureMutex;
  std::string failure;

  auto worker = [&] {
    Arena arena = takeArena(threads);
    Block b;
    b.grid = &g;
    tBlock = &b;
    for (uint64_t i; (i = next.fetch_add(1)) < total;) {
      const Dim3 idx{static_cast<unsigned>(i % g.grid.x), static_cast<unsigned>((i / g.grid.x) % g.grid.y),
                     static_cast<unsigned>(i / (uint64_t{g.grid.x} * g.grid.y))};
      b.cluster = clusters.empty() ? nullptr : clusters[i / perCluster].get();
      b.clusterRank = static_cast<unsigned>(i % perCluster);
      if (b.cluster) {
        std::lock_guard<std::mutex> lock(b.cluster->mutex);
        b.cluster->anchors[b.clusterRank] = &tlsAnchor;
      }
      b.failure.clear();
      runBlock(b, idx, arena);
      if (b.cluster) b.cluster->leave();
      if (!b.failure.empty()) {
        std::lock_guard<std::mutex> lock(failureMutex);
        if (failure.empty())
          failure = "block (" + std::to_string(idx.x) + "," + std::to_string(idx.y) + "," + std::to_string(idx.z) +
                    ") of grid (" + std::to_string(g.grid.x) + "," + std::to_string(g.grid.y) + "," +
                    std::to_string(g.grid.z) + ") x " + std::to_string(threads) + " threads: " + b.failure;
        next.store(total);  // the launch has failed: start no more blocks
        break;
      }
    }
    tBlock = nullptr;
    giveArena(arena);
  };
  std::vector<std::thread> pool;
  pool.reserve(workers);
  for (uint64_t w = 0; w < workers; ++w) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  if (failure.empty()) return 0;
  std::fprintf(stderr, "rk_emu: kernel failed: %s\n", failure.c_str());
  return kLaunchFailure;
}

// ------------------------------------------------------ device intrinsics

const ThreadIds& ids() { return block().current->ids; }

void syncThreads() {
  Block& b = block();
  b.current->wait = Wait::Block;
  if (++b.arrived == b.live) releaseBlock(b);
  yield(b);
}

int syncThreadsOr(int predicate) {
  Block& b = block();
  const uint64_t g = b.generation;
  if (predicate) b.orSlots[g & 1] = 1;
  syncThreads();
  return b.orSlots[g & 1];
}

const unsigned char* warpExchange(const void* value, size_t bytes) {
  Block& b = block();
  Fiber& f = *b.current;
  const unsigned w = f.linear / kWarpSize;
  Warp& warp = b.warps[w];
  const uint64_t g = warp.generation;
  std::memcpy(warp.slots[g & 1][f.linear % kWarpSize], value, std::min(bytes, kSlotBytes));
  f.wait = Wait::Warp;
  if (++warp.arrived == warp.live) releaseWarp(b, w);
  yield(b);
  return &warp.slots[g & 1][0][0];
}

unsigned liveLaneMask() {
  Block& b = block();
  return b.warps[b.current->linear / kWarpSize].liveMask;
}

void reportMaskMismatch(unsigned mask, unsigned live) {
  char text[128];
  std::snprintf(text, sizeof text, "a warp intrinsic names lanes 0x%08x, but the live lanes are 0x%08x", mask, live);
  Block& b = block();
  fail(b, text);
  yield(b);  // the scheduler stops the block
}

void* dynamicShared() {
  Block& b = block();
  return b.dynamicShared.empty() ? nullptr : b.dynamicShared.data();
}

unsigned clusterRank() { return block().clusterRank; }

unsigned clusterSize() { return block().grid->mode == Grid::Mode::Cluster ? block().grid->clusterBlocks : 1; }

void clusterSync() {
  Block& b = block();
  if (!b.cluster) return syncThreads();
  b.current->wait = Wait::Cluster;
  ++b.clusterArrived;
  yield(b);
}

void* mapSharedRank(void* sharedAddress, unsigned rank) {
  Block& b = block();
  if (!b.cluster || rank >= b.cluster->anchors.size()) {
    fail(b, "map_shared_rank: rank " + std::to_string(rank) + " is not in the cluster");
    yield(b);
  }
  const std::ptrdiff_t offset = static_cast<char*>(sharedAddress) - &tlsAnchor;
  return b.cluster->anchors[rank] + offset;
}

}  // namespace rk_emu
