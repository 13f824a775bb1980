// GAE on eight rows at once with AVX2 (included by advantages.cpp in its
// AVX2 and AVX-512 builds, inside the ISA region). A block of 16 steps of the
// 8 rows is loaded row by row, transposed so that each vector holds one step
// of every row, run through gaeStep lane by lane (the same selects and
// multiply-adds as kernels/common/advantages.cuh), and transposed back.
#pragma once

namespace rk::cpu::RK_ISA_NS {
namespace {

// In place: r[i] lane j becomes r[j] lane i.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Steps [t0, t0 + 16) of each row of the group (a 64-byte line per row,
// read at once), transposed: out[k] = step t0 + k of the 8 rows.
inline void loadSteps(const float* base, int64_t stride, __m256 out[16]) {
  for (int j = 0; j < 8; ++j) {
    out[j] = _mm256_loadu_ps(base + j * stride);
    out[8 + j] = _mm256_loadu_ps(base + j * stride + 8);
  }
  transpose8(out);
  transpose8(out + 8);
}

// kStream: non-temporal stores (base 32-byte aligned, stride a multiple of 8).
template <bool kStream>
inline void storeSteps(float* base, int64_t stride, __m256 in[16]) {
  transpose8(in);
  transpose8(in + 8);
  for (int j = 0; j < 8; ++j) {
    if constexpr (kStream) {
      _mm256_stream_ps(base + j * stride, in[j]);
      _mm256_stream_ps(base + j * stride + 8, in[8 + j]);
    } else {
      _mm256_storeu_ps(base + j * stride, in[j]);
      _mm256_storeu_ps(base + j * stride + 8, in[8 + j]);
    }
  }
}

// One byte per step: kGae* flags where the byte of mask / dones / truncated is nonzero.
inline __m128i flagBytes(const GaeParams& p, int64_t i) {
  const __m128i zero = _mm_setzero_si128();
  const auto nonzero = [&](const uint8_t* a, uint32_t bit) {  // bit where a[i + k] != 0 (cmpeq gives 0xff at zeros)
    return _mm_andnot_si128(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i)), zero),
                            _mm_set1_epi8(static_cast<char>(bit)));
  };
  __m128i f = p.mask ? nonzero(p.mask, kGaeValid) : _mm_set1_epi8(static_cast<char>(kGaeValid));
  if (p.dones) f = _mm_or_si128(f, nonzero(p.dones, kGaeDone));
  if (p.truncated) f = _mm_or_si128(f, nonzero(p.truncated, kGaeTruncated));
  return f;
}

// The flags of 16 steps of 8 rows, transposed like loadSteps (as int32 lanes).
inline void loadFlags(const GaeParams& p, int64_t i0, int64_t stride, __m256 out[16]) {
  for (int j = 0; j < 8; ++j) {
    const __m128i f = flagBytes(p, i0 + j * stride);
    out[j] = _mm256_castsi256_ps(_mm256_cvtepu8_epi32(f));
    out[8 + j] = _mm256_castsi256_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(f, 8)));
  }
  transpose8(out);
  transpose8(out + 8);
}

// Software prefetch of the lines a later block reads: with eight rows and up
// to seven arrays, the streams outnumber what the hardware prefetcher tracks.
constexpr int64_t kPrefetchSteps = 64;  // 4 blocks ahead

inline void prefetchBlock(const GaeParams& p, int64_t i, int64_t stride) {
  for (int j = 0; j < 8; ++j, i += stride) {
    _mm_prefetch(reinterpret_cast<const char*>(p.rewards + i), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p.values + i), _MM_HINT_T0);
    if (p.mask) _mm_prefetch(reinterpret_cast<const char*>(p.mask + i), _MM_HINT_T0);
    if (p.dones) _mm_prefetch(reinterpret_cast<const char*>(p.dones + i), _MM_HINT_T0);
    if (p.truncated) {
      _mm_prefetch(reinterpret_cast<const char*>(p.truncated + i), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p.truncatedValues + i), _MM_HINT_T0);
    }
  }
}

inline __m256 hasFlag(__m256 flags, uint32_t bit) {
  const __m256i b = _mm256_set1_epi32(static_cast<int>(bit));
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(flags), b), b));
}

// Steps [0, end) of all 8 rows (end a multiple of 16), backward, in blocks of 16.
template <bool kFlags, bool kStream>
void gaeSimdBlocks(GaeRowGroup& g, int64_t end) {
  const GaeParams& p = g.p;
  const int64_t T = p.steps;
  const __m256 gamma = _mm256_set1_ps(g.gamma), gammaLambda = _mm256_set1_ps(g.gammaLambda);
  alignas(32) float nv[8], na[8];
  for (int l = 0; l < 8; ++l) {
    nv[l] = g.carry[l].value;
    na[l] = g.carry[l].adv;
  }
  __m256 nextValue = _mm256_load_ps(nv), nextAdv = _mm256_load_ps(na);
  __m256 r[16], v[16], tv[16], f[16];
  for (int64_t t0 = end - 16; t0 >= 0; t0 -= 16) {
    const int64_t i0 = g.row0 * T + t0;
    if (t0 >= kPrefetchSteps) prefetchBlock(p, i0 - kPrefetchSteps, T);
    loadSteps(p.rewards + i0, T, r);
    loadSteps(p.values + i0, T, v);
    if (kFlags) {
      loadFlags(p, i0, T, f);
      if (p.truncatedValues) loadSteps(p.truncatedValues + i0, T, tv);
    }
    for (int k = 15; k >= 0; --k) {
      if (!kFlags) {
        // Every step valid, no flag: gaeStep with bootstrap = next value, carry = next adv.
        const __m256 a = _mm256_fmadd_ps(gammaLambda, nextAdv, _mm256_sub_ps(_mm256_fmadd_ps(gamma, nextValue, r[k]), v[k]));
        nextValue = v[k];
        nextAdv = a;
        r[k] = a;
        v[k] = _mm256_add_ps(a, v[k]);
        continue;
      }
      const __m256 valid = hasFlag(f[k], kGaeValid), done = hasFlag(f[k], kGaeDone);
      const __m256 cut = _mm256_andnot_ps(done, hasFlag(f[k], kGaeTruncated));
      __m256 bootstrap = p.truncatedValues ? _mm256_blendv_ps(nextValue, tv[k], cut) : nextValue;
      bootstrap = _mm256_andnot_ps(done, bootstrap);
      const __m256 carry = _mm256_andnot_ps(_mm256_or_ps(done, cut), nextAdv);
      const __m256 a = _mm256_fmadd_ps(gammaLambda, carry, _mm256_sub_ps(_mm256_fmadd_ps(gamma, bootstrap, r[k]), v[k]));
      nextValue = _mm256_blendv_ps(bootstrap, v[k], valid);
      nextAdv = _mm256_blendv_ps(carry, a, valid);
      r[k] = _mm256_and_ps(valid, a);
      v[k] = _mm256_and_ps(valid, _mm256_add_ps(a, v[k]));
    }
    storeSteps<kStream>(p.advantages + i0, T, r);
    storeSteps<kStream>(p.returns + i0, T, v);
  }
  if constexpr (kStream) simd::streamFence();  // the streams land before the pool reports this group done
}

void gaeSimdSteps(GaeRowGroup& g, int64_t end, bool stream) {
  if (end <= 0) return;
  const bool flags = g.p.mask || g.p.dones || g.p.truncated;
  if (stream) flags ? gaeSimdBlocks<true, true>(g, end) : gaeSimdBlocks<false, true>(g, end);
  else flags ? gaeSimdBlocks<true, false>(g, end) : gaeSimdBlocks<false, false>(g, end);
}

}  // namespace
}  // namespace rk::cpu::RK_ISA_NS
