// Element types shared by every layer. The numeric values are part of the
// binding contract: lib/dtype.ts passes them as integers.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rk {

enum class DType : int32_t {
  Float32 = 0,
  Float16 = 1,
  BFloat16 = 2,
  Int32 = 3,
  Uint8 = 4,
};

inline size_t dtypeSize(DType t) {
  switch (t) {
    case DType::Float32: case DType::Int32: return 4;
    case DType::Float16: case DType::BFloat16: return 2;
    case DType::Uint8: return 1;
  }
  return 0;
}

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Int32: return "int32";
    case DType::Uint8: return "uint8";
  }
  return "unknown";
}

}  // namespace rk
