// The cuda device of a build without a CUDA toolkit: every entry links, and
// says why it cannot run. Asking for cuda gives KernelError ENODEVICE.
#include "cuda/device.h"

namespace rk::cuda {

static const char* kReason =
    "built without CUDA (no nvcc found when the addon was built, or RLHF_KERNELS_CUDA=0); "
    "rebuild with a CUDA toolkit or install the prebuilt binary";

const Availability& probe() {
  static const Availability a = [] {
    Availability v;
    v.reason = kReason;
    return v;
  }();
  return a;
}

std::string errorString(int e) { return "CUDA error " + std::to_string(e); }

struct Context::Impl {};

std::shared_ptr<Context> Context::create(int) {
  throw KernelFailure(ErrorCode::NoDevice, std::string("cuda is unavailable: ") + kReason);
}
Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;
int Context::ordinal() const { return 0; }
void* Context::alloc(size_t) { return nullptr; }
void Context::free(void*, size_t) {}
void Context::copyToDevice(void*, const void*, size_t) {}
void Context::copyToHost(void*, const void*, size_t) {}
void Context::copyOnDevice(void*, const void*, size_t) {}
void Context::fill(void*, int, size_t) {}
void Context::synchronize() {}
bool Context::settleSoon() { return true; }
ErrorSlot Context::takeSlot() { return ErrorSlot{}; }
Context::SlotTake Context::queueTake(bool) { return {}; }
ErrorSlot Context::finishTake(SlotTake) { return ErrorSlot{}; }
ErrorSlot* Context::slot() { return nullptr; }
void Context::armSlot() {}
CudaLaunch Context::launch() { return CudaLaunch{}; }
void Context::check(int, const char*) {}
uint64_t Context::bytesInUse() const { return 0; }
uint64_t Context::bytesPooled() const { return 0; }

}  // namespace rk::cuda

namespace rk::cudaops {
// Unreachable: no Context exists in this build, so no op is dispatched here.
#define RK_OP(name, P) \
  int name(const P&, const CudaLaunch&) { return 35; /* cudaErrorInsufficientDriver */ }
#include "ops.def"
#undef RK_OP
int probeKernelImage(int) { return 35; }
int takeErrorSlot(ErrorSlot*, ErrorSlot*, void*) { return 35; }
}  // namespace rk::cudaops
