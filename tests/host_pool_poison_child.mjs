// Child process of host_pool.test.ts, run with RLHF_KERNELS_HOST_POOL_POISON=1
// (every cpu tensor's storage comes from the host pool filled with 0xff
// bytes) and RLHF_KERNELS_ISA set: runs every op family on edge cases and
// prints JSON { isa, checked, poisoned: [names of outputs with an unwritten
// element] }. A float32 0xffffffff or a half 0xffff is a NaN no kernel
// computes (their NaNs are 0x7fc00000 / 0xffc00000 and the halves of these).
import * as rk from '../dist/lib/index.js';
import { readBandwidth } from '../dist/lib/ops/calibration.js';
import { Tensor } from '../dist/lib/tensor.js';

const poisoned = [];
let checked = 0;

function hasPoison(t) {
  const a = t.toArray();
  const words = a.BYTES_PER_ELEMENT === 4 ? new Uint32Array(a.buffer, a.byteOffset, a.length) : a;
  const bad = a.BYTES_PER_ELEMENT === 4 ? 0xffffffff : a.BYTES_PER_ELEMENT === 2 ? 0xffff : -1;
  return words.some((w) => w === bad);
}

/** Checks every tensor in `out` (a Tensor or an object of them); `expectError`: the run reports one. */
function check(name, run, expectError = false) {
  let out;
  try {
    out = run();
    rk.synchronizeSync('cpu');
    if (expectError) poisoned.push(`${name}: expected an error`);
  } catch (e) {
    if (!expectError || !(e instanceof RangeError)) throw e;
  }
  if (!out) return;
  for (const [key, t] of out instanceof Tensor ? [['', out]] : Object.entries(out)) {
    checked++;
    if (hasPoison(t)) poisoned.push(`${name}${key ? `.${key}` : ''}`);
  }
}

let seed = 12345;
const rand = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
const floats = (n, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const f32 = (shape, scale) => rk.tensor(floats(shape.reduce((a, b) => a * b, 1), scale), shape);
const bytes = (shape, p) => rk.tensor(Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rand() < p ? 1 : 0)), shape);

// The poison is there to be found: an output no kernel writes keeps it.
const probe = Tensor.empty([3], 'float32', 'cpu');
if (!hasPoison(probe)) throw new Error('the pool does not poison: is RLHF_KERNELS_HOST_POOL_POISON=1 set?');

// ------------------------------------------------------------ token log-probs
for (const dtype of ['float32', 'bfloat16', 'float16'])
  for (const [rows, V] of [[0, 5], [1, 1], [7, 33], [3, 20000], [40, 1000], [2, 40000]]) {
    const data = floats(rows * V, 4);
    for (let i = 0; i < rows * V; i += 7) if (rand() < 0.3) data[i] = -Infinity;
    if (rows > 2) data.fill(-Infinity, V, 2 * V); // a row of only -inf
    const logits = dtype === 'float32' ? rk.tensor(data, [rows, V])
      : rk.tensor(dtype === 'bfloat16' ? rk.toBFloat16(data) : rk.toFloat16(data), [rows, V], { dtype });
    const y = Int32Array.from({ length: rows }, (_, i) => (i % 3 === 0 ? -100 : (i * 7) % V));
    const targets = rk.tensor(y, [rows]);
    const name = `tokenLogProbs ${dtype} [${rows}, ${V}]`;
    let fwd;
    check(name, () => (fwd = rk.tokenLogProbs(logits, targets, { entropy: true, temperature: 0.7 })));
    check(`${name} no entropy`, () => rk.tokenLogProbs(logits, targets));
    const g = { lse: fwd.lse, gradLogprobs: f32([rows]), entropy: fwd.entropy, gradEntropy: f32([rows]) };
    check(`${name} backward`, () => rk.tokenLogProbsBackward(logits, targets, g, { temperature: 0.7 }));
    check(`${name} backward lp only`, () => rk.tokenLogProbsBackward(logits, targets, { lse: fwd.lse, gradLogprobs: g.gradLogprobs }));
    check(`${name} backward entropy only`, () =>
      rk.tokenLogProbsBackward(logits, targets, { lse: fwd.lse, entropy: fwd.entropy, gradEntropy: g.gradEntropy }));
    check(`${name} all ignored`, () => rk.tokenLogProbs(logits, rk.tensor(new Int32Array(rows).fill(-100), [rows]), { entropy: true }));
    if (rows > 0) {
      const bad = rk.tensor(Int32Array.from(y, (v, i) => (i === rows - 1 ? V + 3 : v)), [rows]);
      check(`${name} bad target`, () => rk.tokenLogProbs(logits, bad, { entropy: true }), true);
      check(`${name} backward bad target`, () => rk.tokenLogProbsBackward(logits, bad, g), true);
    }
  }

// ----------------------------------------------------------------- advantages
for (const [B, T] of [[1, 1], [3, 5], [8, 16], [9, 37], [17, 100], [16, 4096], [4, 0]]) {
  const shape = [B, T];
  const r = f32(shape), v = f32(shape);
  for (const [label, opts] of [
    ['plain', {}],
    ['mask', { mask: bytes(shape, 0.7), lastValues: f32([B]) }],
    ['all masked', { mask: bytes(shape, 0) }],
    ['flags', { mask: bytes(shape, 0.8), dones: bytes(shape, 0.05), truncated: bytes(shape, 0.05), truncatedValues: f32(shape) }],
    ['dones only', { dones: bytes(shape, 0.1) }],
  ])
    check(`gae [${B}, ${T}] ${label}`, () => rk.gae(r, v, { gamma: 0.99, lambda: 0.95, ...opts }));
}
for (const n of [0, 1, 2, 1000, 40000]) {
  const x = f32([n], 3);
  check(`whiten [${n}]`, () => rk.whiten(x));
  check(`whiten [${n}] masked, no shift`, () => rk.whiten(x, { mask: bytes([n], 0.5), shiftMean: false }));
  check(`whiten [${n}] all masked`, () => rk.whiten(x, { mask: bytes([n], 0) }));
  check(`whiten [${n}] one valid`, () => rk.whiten(x, { mask: rk.tensor(Uint8Array.from({ length: n }, (_, i) => +(i === 0)), [n]) }));
}
for (const estimator of ['grpo', 'dr-grpo', 'rloo'])
  for (const [groups, k] of [[0, 4], [5, 1], [7, 8], [3000, 16]])
    check(`groupAdvantages ${estimator} ${groups}x${k}`, () => rk.groupAdvantages(f32([groups * k]), { groupSize: k, estimator }));

// ------------------------------------------------------------------------ PPO
for (const [B, T] of [[1, 1], [3, 7], [5, 37], [64, 1000], [0, 4], [4, 0]]) {
  const shape = [B, T];
  const lp = f32(shape), old = f32(shape), adv = f32(shape), ref = f32(shape), ent = f32(shape);
  for (const aggregation of ['token-mean', 'seq-mean-token-sum', 'seq-mean-token-mean', 'seq-mean-token-sum-norm'])
    for (const [label, mask] of [['', undefined], [' mask', bytes(shape, 0.6)], [' all masked', bytes(shape, 0)]]) {
      const name = `[${B}, ${T}] ${aggregation}${label}`;
      for (const klEstimator of ['k1', 'k2', 'k3'])
        check(`ppoPolicyLoss ${name} ${klEstimator}`, () => rk.ppoPolicyLoss(lp, old, adv, {
          mask, aggregation, refLogprobs: ref, klCoef: 0.1, klEstimator, entropy: ent, entropyCoef: 0.01, dualClip: 3,
        }));
      check(`ppoPolicyLoss ${name} bare`, () => rk.ppoPolicyLoss(lp, old, adv, { mask, aggregation }));
      check(`ppoValueLoss ${name}`, () => rk.ppoValueLoss(lp, old, adv, { mask, aggregation, clip: 0.2 }));
      check(`ppoValueLoss ${name} no clip`, () => rk.ppoValueLoss(lp, old, adv, { mask, aggregation }));
    }
}

// ----------------------------------------------------------------- preference
for (const B of [1, 5, 4097, 20000]) {
  const c = f32([B]), r = f32([B]), rc = f32([B]), rr = f32([B]);
  for (const kind of ['sigmoid', 'hinge', 'ipo']) {
    check(`pairwiseLoss ${kind} [${B}]`, () => rk.pairwiseLoss(c, r, { kind, margin: f32([B]), centerCoef: 0.1, labelSmoothing: kind === 'sigmoid' ? 0.1 : 0 }));
    check(`pairwiseLoss ${kind} [${B}] bare`, () => rk.pairwiseLoss(c, r, { kind }));
    check(`dpoLoss ${kind} [${B}]`, () => rk.dpoLoss(c, r, rc, rr, { kind }));
  }
}
for (const [B, T] of [[1, 1], [6, 0], [0, 5], [7, 33], [70, 2000]]) {
  const lp = f32([B, T]);
  for (const [label, mask] of [['', bytes([B, T], 0.5)], [' empty', bytes([B, T], 0)]])
    for (const reduce of ['sum', 'mean']) {
      check(`sequenceLogProbs [${B}, ${T}] ${reduce}${label}`, () => rk.sequenceLogProbs(lp, mask, { reduce }));
      check(`sequenceLogProbsBackward [${B}, ${T}] ${reduce}${label}`, () => rk.sequenceLogProbsBackward(f32([B]), mask, { reduce }));
    }
}

// ---------------------------------------------------------------- calibration
for (const n of [1, 100000]) check(`readBandwidth [${n}]`, () => readBandwidth(f32([n])));

// ------------------------------------------------------------------- tensor
for (const [B, T] of [[1, 1], [7, 33], [70, 2000]]) {
  const x = f32([B, T]);
  check(`slice [${B}, ${T}]`, () => x.slice(B > 1 ? 1 : 0));
  check(`concat [${B}, ${T}] x3`, () => rk.concat([x, x.slice(0, 1), x]));
}

console.log(JSON.stringify({ isa: rk.info().cpu.isa, checked, poisoned }));
