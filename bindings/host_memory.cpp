// Storage for cpu tensors from the process's HostPool, handed to JS as
// external ArrayBuffers: a block goes back to the pool when the garbage
// collector has dropped every view of it (the finalizer below), or at once
// when lib/ disposes a tensor whose storage no JS code outside it has seen
// (hostFree, which detaches the buffer first). Either way it goes back in
// cpu stream order, after the work queued on this environment, which may
// still write into it: at a worker's teardown Node runs the finalizers of
// live buffers while its stream may still be busy.
//
// V8 counts an external ArrayBuffer's byteLength in its external memory like
// any other ArrayBuffer's (BackingStore::PerIsolateAccountingLength), so GC
// pressure is right without AdjustExternalMemory, which would count it twice.
#include <atomic>
#include <unordered_map>

#include "../native/core/host_pool.h"
#include "common.h"

namespace rk::bind {

struct HostLease;

// Per environment, on its JS thread only: the blocks its live buffers hold.
struct HostLedger {
  std::shared_ptr<CpuStream> stream;
  std::unordered_map<void*, HostLease*> live;  // by block address

  void giveBack(void* data, size_t capacity) {
    if (stream->completed() >= stream->submitted()) {
      HostPool::global().release(data, capacity);
      return;
    }
    stream->enqueue([data, capacity] { HostPool::global().release(data, capacity); });
  }
};

struct HostLease {
  size_t capacity;
  std::shared_ptr<HostLedger> ledger;  // outlives the EnvState if a finalizer runs late
};

namespace {

// Set once creating an external buffer fails (a V8 sandbox, as in Electron,
// forbids them): from then on lib/ allocates every buffer itself.
std::atomic<bool> refused{false};

// On the environment's JS thread, when the buffer was collected or its
// environment is torn down. A lease that hostFree already settled is no
// longer in `live` (its block may even be live again, under another lease).
void finalize(napi_env, void* data, void* hint) {
  auto* lease = static_cast<HostLease*>(hint);
  HostLedger& ledger = *lease->ledger;
  auto it = ledger.live.find(data);
  if (it != ledger.live.end() && it->second == lease) {
    ledger.live.erase(it);
    ledger.giveBack(data, lease->capacity);
  }
  delete lease;
}

// hostAlloc(bytes): an ArrayBuffer of `bytes` bytes from the pool, contents
// undefined; undefined when the pool cannot serve it.
Napi::Value hostAlloc(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const double bytes = cb[0].IsNumber() ? cb[0].As<Napi::Number>().DoubleValue() : 0;
  if (!(bytes >= 1 && bytes <= 9.0e15) || refused.load()) return env.Undefined();
  size_t capacity = 0;
  void* data = HostPool::global().acquire(static_cast<size_t>(bytes), &capacity);
  if (!data) return env.Undefined();
  EnvState& s = state(env);
  if (!s.host) s.host = std::make_shared<HostLedger>(HostLedger{s.cpuStreamShared(), {}});
  auto* lease = new HostLease{capacity, s.host};
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, data, static_cast<size_t>(bytes), finalize, lease, &buffer) != napi_ok) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    refused.store(true);
    delete lease;
    HostPool::global().release(data, capacity);
    return env.Undefined();
  }
  s.host->live[data] = lease;
  return Napi::Value(env, buffer);
}

// hostFree(buffer): true if `buffer` held a block of this environment, now
// detached (every view of it reads as empty) and going back to the pool.
Napi::Value hostFree(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  EnvState& s = state(env);
  if (!cb[0].IsArrayBuffer() || !s.host) return Napi::Boolean::New(env, false);
  napi_value buffer = cb[0];
  void* data = cb[0].As<Napi::ArrayBuffer>().Data();
  auto it = s.host->live.find(data);
  if (!data || it == s.host->live.end()) return Napi::Boolean::New(env, false);
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) return Napi::Boolean::New(env, false);
  const size_t capacity = it->second->capacity;
  s.host->live.erase(it);
  s.host->giveBack(data, capacity);
  return Napi::Boolean::New(env, true);
}

// hostPool(): { inUse, idle, limit, minBytes, hugeFrom, poison }: the process's pool.
Napi::Value hostPool(const Napi::CallbackInfo& cb) {
  Napi::Env env = cb.Env();
  const HostPool::Stats st = HostPool::global().stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("inUse", static_cast<double>(st.inUse));
  out.Set("idle", static_cast<double>(st.idle));
  out.Set("limit", refused.load() ? 0.0 : static_cast<double>(st.limit));
  out.Set("minBytes", static_cast<double>(st.minBytes));
  out.Set("hugeFrom", static_cast<double>(st.hugeFrom));
  out.Set("poison", st.poison);
  return out;
}

Napi::Value hostPoolTrim(const Napi::CallbackInfo& cb) {
  HostPool::global().trim();
  return cb.Env().Undefined();
}

}  // namespace

void registerHostMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("hostAlloc", Napi::Function::New(env, guarded<hostAlloc>, "hostAlloc"));
  exports.Set("hostFree", Napi::Function::New(env, guarded<hostFree>, "hostFree"));
  exports.Set("hostPool", Napi::Function::New(env, guarded<hostPool>, "hostPool"));
  exports.Set("hostPoolTrim", Napi::Function::New(env, guarded<hostPoolTrim>, "hostPoolTrim"));
}

}  // namespace rk::bind
