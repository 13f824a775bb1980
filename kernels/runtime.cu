// The probe kernel: launching it on a device tells whether this binary holds
// machine code or PTX that the device can run.
#include <cuda_runtime.h>

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

}  // namespace rk::cudaops
