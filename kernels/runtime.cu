// The probe kernel: launching it on a device tells whether this binary holds
// machine code or PTX that the device can run. And the error slot's take.
#include <cuda_runtime.h>

#include "../native/core/errors.h"

namespace rk::cudaops {

__global__ void probeKernel(int* out) {
  if (out) *out = 1;
}

int probeKernelImage(int ordinal) {
  cudaError_t e = cudaSetDevice(ordinal);
  if (e != cudaSuccess) return e;
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, probeKernel);
  if (e != cudaSuccess) return e;
  probeKernel<<<1, 1>>>(nullptr);
  e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  return cudaDeviceSynchronize();
}

// Moves the slot's report to `taken` and clears the slot, in stream order:
// a kernel queued before this one has written its report (read by this
// take), one queued after it reports into a clear slot (read by the next).
// Copying and then clearing with two stream calls would let another
// thread's launch fall between them and its report be wiped.
__global__ void takeSlotKernel(ErrorSlot* slot, ErrorSlot* taken) {
  *taken = *slot;
  *slot = ErrorSlot{};
}

int takeErrorSlot(ErrorSlot* slot, ErrorSlot* taken, void* stream) {
  takeSlotKernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(slot, taken);
  return cudaGetLastError();
}

}  // namespace rk::cudaops
