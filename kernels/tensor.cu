// CUDA backend of the tensor family: copyRegion, a device-to-device copy on
// the op stream (the copy engine; no kernel).
#include <cuda_runtime.h>

#include "../native/cuda/device.h"

namespace rk::cudaops {

int copyRegion(const CopyRegionParams& p, const CudaLaunch& launch) {
  if (p.bytes == 0) return cudaSuccess;
  return cudaMemcpyAsync(p.dst, p.src, static_cast<size_t>(p.bytes), cudaMemcpyDeviceToDevice,
                         static_cast<cudaStream_t>(launch.stream));
}

}  // namespace rk::cudaops
