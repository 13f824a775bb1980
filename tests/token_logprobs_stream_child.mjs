// Child process of token_logprobs.test.ts, run with RLHF_KERNELS_ISA set and
// RLHF_KERNELS_HOST_POOL_POISON=1 (every pool block handed out filled with
// 0xff bytes, a NaN pattern no kernel computes). Gradients of 32 MiB and
// more leave the cpu backward through non-temporal stores, after a head up
// to the first aligned element (V = 50257: each row starts at another
// alignment); in place never streams. Both paths compute the same numbers,
// so they must agree bit for bit. Prints JSON { isa, results: { dtype:
// { differ, unwritten } } }.
import * as rk from '../dist/lib/index.js';

const V = 50257;
const results = {};
for (const dtype of ['float32', 'bfloat16', 'float16']) {
  const bytes = dtype === 'float32' ? 4 : 2;
  const rows = Math.ceil((33 << 20) / (V * bytes));
  const n = rows * V;
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = i % 997 === 0 ? -Infinity : (s / 2 ** 32) * 8 - 4;
  }
  const data = dtype === 'float32' ? x : dtype === 'bfloat16' ? rk.toBFloat16(x) : rk.toFloat16(x);
  const logits = rk.tensor(data, [rows, V], { dtype });
  const copy = rk.tensor(data, [rows, V], { dtype });
  const targets = Int32Array.from({ length: rows }, (_, i) => (i === 3 ? -100 : (i * 7919) % V));
  const fwd = rk.tokenLogProbs(logits, targets, { entropy: true });
  const grads = {
    lse: fwd.lse, entropy: fwd.entropy,
    gradLogprobs: rk.tensor(Float32Array.from({ length: rows }, (_, i) => Math.sin(i + 1))),
    gradEntropy: rk.tensor(Float32Array.from({ length: rows }, (_, i) => Math.cos(i))),
  };
  const streamed = rk.tokenLogProbsBackward(logits, targets, grads).toArray();
  const cached = rk.tokenLogProbsBackward(copy, targets, grads, { inPlace: true }).toArray();
  const a = bytes === 4 ? new Uint32Array(streamed.buffer, streamed.byteOffset, n) : streamed;
  const b = bytes === 4 ? new Uint32Array(cached.buffer, cached.byteOffset, n) : cached;
  const poison = bytes === 4 ? 0xffffffff : 0xffff;
  let differ = 0, unwritten = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) differ++;
    if (a[i] === poison) unwritten++;
  }
  results[dtype] = { differ, unwritten };
}
console.log(JSON.stringify({ isa: rk.info().cpu.isa, results }));
