/**
 * tokenLogProbs on cuda: against the float64 reference and the cpu backend.
 * node:test + node:assert only (compiled to dist/tests/gpu/, run with
 * `node --test dist/tests/gpu/` on a GPU machine); skips without cuda.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KernelError, type Tensor, fromBFloat16, fromFloat16, synchronize, tensor, toBFloat16, toFloat16, tokenLogProbs,
  tokenLogProbsBackward,
} from '../../lib/index.js';
import { WIDE_OFFSETS, wideLogits, wideScale } from '../helpers/extremes.js';
import { Rng } from '../helpers/random.js';
import { EPS, errorStats, f32 } from '../helpers/tolerance.js';
import { tokenLogProbsBackwardRef, tokenLogProbsRef } from '../reference/token_logprobs.js';
import { maxAbs, skip } from './common.js';

type LogitDType = 'float32' | 'bfloat16' | 'float16';
const DTYPES: LogitDType[] = ['float32', 'bfloat16', 'float16'];


function encode(dtype: LogitDType, v: Float32Array): Float32Array | Uint16Array {
  return dtype === 'bfloat16' ? toBFloat16(v) : dtype === 'float16' ? toFloat16(v) : v;
}
function decode(dtype: LogitDType, v: ArrayLike<number>): Float32Array {
  return dtype === 'bfloat16' ? fromBFloat16(v as Uint16Array) : dtype === 'float16' ? fromFloat16(v as Uint16Array) : Float32Array.from(v);
}
function host(t: Tensor): Float32Array {
  return decode(t.dtype as LogitDType, t.toArray());
}

/**
 * The tolerance rule of tests/helpers/tolerance.ts: 4 x the naive float32
 * error + a floor of 16 float32 ulps (2 ulps of a half output) of the largest |ref|.
 */
function close(what: string, out: ArrayLike<number>, ref: ArrayLike<number>, naive: ArrayLike<number>, unit = EPS.float32): void {
  let top = 1;
  for (let i = 0; i < ref.length; i++) if (Number.isFinite(ref[i]!)) top = Math.max(top, Math.abs(ref[i]!));
  const tol = 4 * errorStats(naive, ref).maxAbs + (unit === EPS.float32 ? 16 : 2) * unit * top;
  const s = errorStats(out, ref);
  assert.equal(s.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${s.worst}: ${out[s.worst]} vs ${ref[s.worst]}`);
  assert.ok(s.maxAbs <= tol, `${what}: max |err| ${s.maxAbs} > ${tol} at ${s.worst}: ${out[s.worst]} vs ${ref[s.worst]}`);
}

/**
 * cuda and cpu float32 results within 1e-5 relative: |gpu - cpu| <= rel (|cpu| + scale),
 * scale = the mean magnitude (as errorStats scales), or `scale` when given. A
 * log-prob is z[y] - lse: where p(y) ~ 1 it is ~0 while its rounding is that of
 * lse, so log-probs and entropies are compared relative to the row's lse.
 */
function agree(what: string, gpu: ArrayLike<number>, cpu: ArrayLike<number>, rel = 1e-5, scale?: number): void {
  const s = errorStats(gpu, cpu);
  assert.equal(s.mismatchedNonFinite, 0, `${what}: non-finite mismatch at ${s.worst}`);
  if (scale === undefined) {
    assert.ok(s.maxRel <= rel, `${what}: cuda vs cpu relative ${s.maxRel} > ${rel} at ${s.worst}: ${gpu[s.worst]} vs ${cpu[s.worst]}`);
    return;
  }
  for (let i = 0; i < gpu.length; i++) {
    const a = gpu[i]!, b = cpu[i]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
    assert.ok(Math.abs(a - b) <= rel * (Math.abs(b) + scale), `${what}: cuda vs cpu ${a} vs ${b} at ${i} (scale ${scale})`);
  }
}

function meanAbs(x: ArrayLike<number>): number {
  let s = 0, n = 0;
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!)) (s += Math.abs(x[i]!)), n++;
  return n ? s / n : 1;
}

function inputs(rng: Rng, rows: number, V: number, dtype: LogitDType, masked = 0) {
  const raw = rng.normals(rows * V, 3);
  for (let i = 0; i < raw.length; i++) if (rng.uniform() < masked) raw[i] = -Infinity;
  const data = encode(dtype, raw);
  const y = rng.ints(rows, 0, V);
  for (let i = 0; i < rows; i += 5) y[i] = -100;
  return { data, values: decode(dtype, data), y };
}

// V: 1 and 33 (tiny rows, mostly idle threads), 1025, 8193 one past the
// 8192-logit chunk, 16383 / 16385 around two chunks, 32000, 50257 (odd: rows
// not 16-byte aligned, scalar loads), 151936 (Qwen2).
const GRID = [1, 33, 1025, 8193, 16383, 16385, 32000, 50257, 151936];

describe('tokenLogProbs on cuda', { skip }, () => {
  it('matches the reference and the cpu backend (forward, backward, every dtype)', async () => {
    const rng = new Rng();
    for (const V of GRID) {
      const rows = Math.max(3, Math.min(40, Math.floor(300_000 / V)));
      const temperature = V % 2 ? 1.7 : 0.5;
      for (const dtype of DTYPES) {
        const { data, values, y } = inputs(rng, rows, V, dtype, 0.02);
        const what = `${dtype} V=${V}`;
        const opts = { temperature, entropy: true };
        const gpu = tokenLogProbs(tensor(data, [rows, V], { dtype, device: 'cuda' }), tensor(y, [rows], { device: 'cuda' }), opts);
        const cpu = tokenLogProbs(tensor(data, [rows, V], { dtype }), y, opts);
        const ref = tokenLogProbsRef(values, y, V, { temperature });
        const naive = tokenLogProbsRef(values, y, V, { temperature }, f32);
        const lseScale = meanAbs(host(cpu.lse));
        for (const k of ['logprobs', 'lse', 'entropy'] as const) {
          close(`${what} ${k}`, host(gpu[k]!), ref[k], naive[k]);
          agree(`${what} ${k}`, host(gpu[k]!), host(cpu[k]!), 1e-5, k === 'lse' ? undefined : lseScale);
        }
        const gLp = rng.normals(rows), gH = rng.normals(rows);
        const grads = (d: 'cpu' | 'cuda', f: typeof gpu) => ({
          lse: f.lse, entropy: f.entropy, gradLogprobs: tensor(gLp, [rows], { device: d }), gradEntropy: tensor(gH, [rows], { device: d }),
        });
        const logitsGpu = tensor(data, [rows, V], { dtype, device: 'cuda' });
        const g = tokenLogProbsBackward(logitsGpu, tensor(y, [rows], { device: 'cuda' }), grads('cuda', gpu), { temperature });
        const gCpu = tokenLogProbsBackward(tensor(data, [rows, V], { dtype }), y, grads('cpu', cpu), { temperature });
        const hostGrads = { lse: host(gpu.lse), entropy: host(gpu.entropy!), gradLogprobs: gLp, gradEntropy: gH };
        const gRef = tokenLogProbsBackwardRef(values, y, V, hostGrads, { temperature });
        const gNaive = decode(dtype, encode(dtype, Float32Array.from(tokenLogProbsBackwardRef(values, y, V, hostGrads, { temperature }, f32))));
        close(`${what} dlogits`, host(g), gRef, gNaive, EPS[dtype]);
        // Norm-wise: |cuda - cpu| within 1e-5 of the gradient's scale, its largest
        // element or the largest an element can be, (|gLp| + |gH| |lse|) / T.
        // Element-wise relative agreement is ill-conditioned for a gradient: an
        // element is p (a + b log p), a difference of terms that cancel where
        // log p ~ -H, and it is exactly 0 when V = 1 (both sides give rounding noise).
        const gradScale = (meanAbs(gLp) + meanAbs(gH) * Math.max(1, meanAbs(host(gpu.lse)))) / temperature;
        if (dtype === 'float32') agree(`${what} dlogits`, host(g), host(gCpu), 1e-5, Math.max(maxAbs(host(gCpu)), gradScale));
        const inPlace = tokenLogProbsBackward(logitsGpu, tensor(y, [rows], { device: 'cuda' }), grads('cuda', gpu), { temperature, inPlace: true });
        assert.equal(inPlace, logitsGpu);
        assert.deepEqual(inPlace.toArray(), g.toArray(), `${what}: in place differs`);
      }
    }
    await synchronize();
  });

  it('stays exact at huge logits and tiny temperatures (wide shifts), 1 and 3 chunks a row', () => {
    const rng = new Rng();
    const temperature = 0.5, rows = WIDE_OFFSETS.length;
    for (const V of [1031, 20000]) {
      const values = wideLogits(rng, WIDE_OFFSETS, V);
      const y = Int32Array.from({ length: rows }, () => rng.int(0, V));
      const out = tokenLogProbs(tensor(values, [rows, V], { device: 'cuda' }), tensor(y, [rows], { device: 'cuda' }), { entropy: true, temperature });
      const ref = tokenLogProbsRef(values, y, V, { temperature });
      for (const k of ['logprobs', 'lse', 'entropy'] as const) {
        const got = host(out[k]!);
        for (let r = 0; r < rows; r++) {
          const err = Math.abs(got[r]! - ref[k][r]!);
          const tol = 16 * EPS.float32 * wideScale(values, r, V, temperature, ref[k][r]!);
          assert.ok(err <= tol, `V=${V} offset ${WIDE_OFFSETS[r]} ${k}: ${got[r]} vs ${ref[k][r]} (tolerance ${tol})`);
        }
      }
    }
  });

  it('keeps masked, NaN and +inf rows to themselves', () => {
    const rng = new Rng();
    const V = 50257, rows = 6;
    const { data, values, y } = inputs(rng, rows, V, 'float32', 0.3);
    y.fill(7);
    y[5] = -100;
    for (let j = 0; j < V; j++) data[2 * V + j] = -Infinity; // row 2: every logit masked
    data[3 * V + 100] = NaN;
    data[4 * V + 40000] = Infinity;
    values.set(data);
    const out = tokenLogProbs(tensor(data, [rows, V], { device: 'cuda' }), tensor(y, [rows], { device: 'cuda' }), { entropy: true });
    const ref = tokenLogProbsRef(values, y, V);
    const naive = tokenLogProbsRef(values, y, V, {}, f32);
    close('lse', host(out.lse), ref.lse, naive.lse);
    close('logprobs', host(out.logprobs), ref.logprobs, naive.logprobs);
    close('entropy', host(out.entropy!), ref.entropy, naive.entropy);
    assert.equal(host(out.lse)[2], -Infinity);
    const g = host(tokenLogProbsBackward(tensor(data, [rows, V], { device: 'cuda' }), tensor(y, [rows], { device: 'cuda' }), {
      lse: out.lse, gradLogprobs: tensor(new Float32Array(rows).fill(1), [rows], { device: 'cuda' }),
    }));
    assert.ok(g.slice(2 * V, 3 * V).every((v) => v === 0), 'all -inf row: gradient 0');
    assert.ok(g.slice(3 * V, 5 * V).every(Number.isNaN), 'NaN / +inf rows: NaN');
    assert.ok(g.slice(0, V).every(Number.isFinite), 'row 0 finite');
  });

  it('gives a row the same bits in any batch size and position', () => {
    const rng = new Rng();
    for (const [V, dtype] of [[50257, 'bfloat16'], [151936, 'float32'], [1025, 'float16']] as [number, LogitDType][]) {
      const row = encode(dtype, rng.normals(V, 3));
      const y = rng.int(0, V);
      const run = (rows: number, at: number) => {
        const data = encode(dtype, rng.normals(rows * V, 3));
        data.set(row, at * V);
        const t = rng.ints(rows, 0, V);
        t[at] = y;
        const out = tokenLogProbs(tensor(data, [rows, V], { dtype, device: 'cuda' }), tensor(t, [rows], { device: 'cuda' }), { entropy: true });
        return [out.logprobs, out.lse, out.entropy!].map((o) => new Uint32Array((o.toArray()).buffer)[at]);
      };
      const alone = run(1, 0);
      // Up to ~75 M logits per batch: drawing normals in JS is the slow part.
      const batches = V > 100_000 ? [[2, 1], [7, 3], [200, 0], [200, 199]] : [[2, 1], [7, 3], [300, 0], [300, 299], [1500, 777]];
      for (const [rows, at] of batches as [number, number][])
        assert.deepEqual(run(rows, at), alone, `V=${V} ${dtype} rows=${rows} at=${at}`);
    }
  });

  it('reports a bad target at the next synchronize, as a RangeError naming the row that is a KernelError too', async () => {
    const V = 1000;
    const y = new Int32Array([3, 5, 1000, 7]);
    const logits = tensor(new Float32Array(4 * V).map((_, i) => Math.sin(i)), [4, V], { device: 'cuda' });
    // Alone, the wait settles on the JS thread (within the spin budget);
    // behind ~1 ms of work it goes to libuv's pool.
    const big = tensor(new Float32Array(4096 * 32000), [4096, 32000], { device: 'cuda' });
    const bigTargets = tensor(new Int32Array(4096), [4096], { device: 'cuda' });
    for (const behind of [false, true]) {
      if (behind) for (let k = 0; k < 4; k++) tokenLogProbs(big, bigTargets);
      const out = tokenLogProbs(logits, tensor(y, [4], { device: 'cuda' }));
      await assert.rejects(synchronize('cuda'), (e: Error) => {
        assert.ok(e instanceof RangeError);
        assert.ok(e instanceof KernelError); // DESIGN's execution model: found while running
        assert.equal((e as KernelError).code, 'EBADINPUT');
        assert.equal(e.message, 'tokenLogProbs: targets[2] is 1000, expected a token id in [0, 1000) or ignoreIndex (-100)');
        return true;
      });
      assert.ok(Number.isNaN(host(out.logprobs)[2]));
      assert.ok(Number.isFinite(host(out.logprobs)[1]));
      await synchronize('cuda'); // the report was consumed
    }
  });

  it('words a bad target as the cpu check does: its index into the targets\' shape, the ignoreIndex', async () => {
    const V = 11;
    const cpuMessage = (run: () => unknown): string => {
      try {
        run();
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('the cpu call did not refuse the target');
    };
    for (const leading of [[], [5], [2, 3], [2, 1, 3, 2], [1, 2, 1, 1, 3]]) {
      const rows = leading.reduce((n, d) => n * d, 1);
      const at = rows - 2 >= 0 ? rows - 2 : 0;
      const y = Int32Array.from({ length: rows }, (_, i) => (i === at ? V + 3 : i % V));
      const logits = new Float32Array(rows * V).map((_, i) => Math.cos(i));
      for (const backward of [false, true]) {
        const call = (device: 'cpu' | 'cuda') => {
          const x = tensor(logits, [...leading, V], { device });
          const t = tensor(y, leading, { device });
          if (!backward) return tokenLogProbs(x, t, { ignoreIndex: -7 });
          const good = tensor(new Int32Array(rows), leading, { device });
          const { lse } = tokenLogProbs(x, good, { ignoreIndex: -7 });
          return tokenLogProbsBackward(x, t, { lse, gradLogprobs: tensor(new Float32Array(rows).fill(1), leading, { device }) }, { ignoreIndex: -7 });
        };
        const expected = cpuMessage(() => call('cpu'));
        call('cuda');
        await assert.rejects(synchronize('cuda'), (e: Error) => {
          assert.ok(e instanceof RangeError);
          // Past 4 leading dimensions the device names the flat row.
          const words = leading.length > 4 ? expected.replace(/targets\[[^\]]*\]/, `targets at row ${at}`) : expected;
          assert.equal(e.message, words, `leading [${leading.join(', ')}]${backward ? ' backward' : ''}`);
          return true;
        });
      }
    }
  });

  it('indexes past 2^31 elements (16384 x 151936 bf16)', () => {
    const V = 151936, rows = 16384;
    const rng = new Rng();
    const data = new Uint16Array(rows * V); // zero rows (closed form) except the checked ones
    const checked = [0, rows - 2, rows - 1];
    const values = new Float32Array(checked.length * V);
    checked.forEach((r, i) => {
      const row = toBFloat16(rng.normals(V, 3));
      data.set(row, r * V);
      values.set(fromBFloat16(row), i * V);
    });
    const y = rng.ints(rows, 0, V);
    const logits = tensor(data, [rows, V], { dtype: 'bfloat16', device: 'cuda' });
    const out = tokenLogProbs(logits, tensor(y, [rows], { device: 'cuda' }), { entropy: true });
    const yc = Int32Array.from(checked, (r) => y[r]!);
    const ref = tokenLogProbsRef(values, yc, V);
    const naive = tokenLogProbsRef(values, yc, V, {}, f32);
    const pick = (t: Tensor) => {
      const h = host(t);
      return Float32Array.from(checked, (r) => h[r]!);
    };
    close('far logprobs', pick(out.logprobs), ref.logprobs, naive.logprobs);
    close('far lse', pick(out.lse), ref.lse, naive.lse);
    assert.ok(Math.abs(host(out.logprobs)[rows >> 1]! + Math.log(V)) < 1e-5);
    const gLp = rng.normals(rows);
    const g = tokenLogProbsBackward(logits, tensor(y, [rows], { device: 'cuda' }), { lse: out.lse, gradLogprobs: tensor(gLp, [rows], { device: 'cuda' }) }, { inPlace: true });
    const last = fromBFloat16((g.toArray() as Uint16Array).slice((rows - 1) * V));
    const grads = { lse: [host(out.lse)[rows - 1]!], gradLogprobs: [gLp[rows - 1]!] };
    const lastValues = values.subarray(2 * V);
    const gRef = tokenLogProbsBackwardRef(lastValues, [y[rows - 1]!], V, grads);
    const gNaive = fromBFloat16(toBFloat16(Float32Array.from(tokenLogProbsBackwardRef(lastValues, [y[rows - 1]!], V, grads, {}, f32))));
    close('far dlogits', last, gRef, gNaive, EPS.bfloat16);
    logits.dispose();
  });
});
