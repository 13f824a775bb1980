// Child process of streaming.test.ts, run with RLHF_KERNELS_ISA set and
// RLHF_KERNELS_HOST_POOL_POISON=1 (every pool block handed out filled with
// 0xff bytes, a NaN pattern no kernel computes). Outputs of 32 MiB and more
// leave the cpu kernels through non-temporal stores (AVX2, AVX-512); smaller
// ones and in-place outputs do not. Each check compares the streamed output
// bit for bit with the same numbers computed without streaming, and counts
// elements left unwritten. Prints JSON { isa, results: { name: { differ,
// unwritten } } }.
import * as rk from '../dist/lib/index.js';

const results = {};

/** Pseudo-random floats in [lo, hi) (xorshift), fast for tens of millions. */
function floats(n, lo, hi, seed) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 2 ** 32) * (hi - lo);
  }
  return out;
}

/** Elements of `a` and `b` (typed arrays of one kind) that differ, and elements of `a` still poisoned. */
function compare(a, b, offset = 0) {
  const bits = (x) => (x.BYTES_PER_ELEMENT === 4 ? new Uint32Array(x.buffer, x.byteOffset, x.length) : x);
  const poison = a.BYTES_PER_ELEMENT === 4 ? 0xffffffff : 0xffff;
  const p = bits(a), q = bits(b);
  let differ = 0, unwritten = 0;
  for (let i = 0; i < q.length; i++) if (p[offset + i] !== q[i]) differ++;
  for (let i = 0; i < p.length; i++) if (p[i] === poison) unwritten++;
  return { differ, unwritten };
}

// Token log-prob gradients, out of place (streamed) against in place (never
// streamed). V = 50257: each row starts at another alignment, so the head
// before the first aligned line is exercised.
const V = 50257;
for (const dtype of ['float32', 'bfloat16', 'float16']) {
  const bytes = dtype === 'float32' ? 4 : 2;
  const rows = Math.ceil((33 << 20) / (V * bytes));
  const x = floats(rows * V, -4, 4, 7);
  for (let i = 0; i < x.length; i += 997) x[i] = -Infinity;
  const data = dtype === 'float32' ? x : dtype === 'bfloat16' ? rk.toBFloat16(x) : rk.toFloat16(x);
  const logits = rk.tensor(data, [rows, V], { dtype });
  const copy = rk.tensor(data, [rows, V], { dtype });
  const targets = Int32Array.from({ length: rows }, (_, i) => (i === 3 ? -100 : (i * 7919) % V));
  const fwd = rk.tokenLogProbs(logits, targets, { entropy: true });
  const grads = {
    lse: fwd.lse, entropy: fwd.entropy,
    gradLogprobs: rk.tensor(floats(rows, -1, 1, 8)), gradEntropy: rk.tensor(floats(rows, -1, 1, 9)),
  };
  const streamed = rk.tokenLogProbsBackward(logits, targets, grads).toArray();
  const cached = rk.tokenLogProbsBackward(copy, targets, grads, { inPlace: true }).toArray();
  results[`tokenLogProbsBackward ${dtype}`] = compare(streamed, cached);
}

// GAE outputs: the whole batch (streamed) against its first and last groups
// of eight rows alone (small: not streamed; rows are independent).
{
  const B = 1032, T = 8200, n = B * T;
  const rewards = floats(n, -1, 1, 10), values = floats(n, -1, 1, 11);
  const u = floats(n, 0, 1, 12);
  const mask = Uint8Array.from(u, (v) => (v < 0.9 ? 1 : 0));
  const dones = Uint8Array.from(u, (v) => (v > 0.999 ? 1 : 0));
  const all = rk.gae(rk.tensor(rewards, [B, T]), rk.tensor(values, [B, T]), {
    gamma: 0.99, lambda: 0.95, mask: rk.tensor(mask, [B, T]), dones: rk.tensor(dones, [B, T]),
  });
  const adv = all.advantages.toArray(), ret = all.returns.toArray();
  for (const row0 of [0, B - 8]) {
    const part = (a) => a.subarray(row0 * T, (row0 + 8) * T);
    const alone = rk.gae(rk.tensor(part(rewards), [8, T]), rk.tensor(part(values), [8, T]), {
      gamma: 0.99, lambda: 0.95, mask: rk.tensor(part(mask), [8, T]), dones: rk.tensor(part(dones), [8, T]),
    });
    results[`gae advantages rows ${row0}+8`] = compare(adv, alone.advantages.toArray(), row0 * T);
    results[`gae returns rows ${row0}+8`] = compare(ret, alone.returns.toArray(), row0 * T);
  }
}

console.log(JSON.stringify({ isa: rk.info().cpu.isa, results }));
