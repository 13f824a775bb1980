// The emulator's cooperative groups: thread block clusters (sm_90), as the
// preference kernels use them.
#pragma once
#include "cuda_runtime.h"

namespace cooperative_groups {

class cluster_group {
 public:
  void sync() const { rk_emu::clusterSync(); }
  unsigned block_rank() const { return rk_emu::clusterRank(); }
  unsigned num_blocks() const { return rk_emu::clusterSize(); }
  // The same __shared__ variable in the block of rank `rank`.
  template <class T>
  T* map_shared_rank(T* address, unsigned rank) const {
    return static_cast<T*>(rk_emu::mapSharedRank(const_cast<void*>(static_cast<const void*>(address)), rank));
  }
};

inline cluster_group this_cluster() { return cluster_group{}; }

}  // namespace cooperative_groups
