/**
 * reshape (a view sharing storage), slice and concat (stream-ordered copies
 * along the first dimension) on cpu. tests/gpu/tensor_layout.test.ts runs
 * the same on cuda.
 */
import { describe, expect, it } from 'vitest';
import { addon } from '../lib/addon.js';
import { KernelError, type Tensor, concat, gae, memory, synchronize, tensor, tokenLogProbs, tokenLogProbsBackward } from '../lib/index.js';
import { Rng } from './helpers/random.js';

const rng = new Rng();

/** Rows [lo, hi) of a row-major array with `inner` elements a row. */
function rows(data: ArrayLike<number>, inner: number, lo: number, hi: number): number[] {
  return Array.from(data).slice(lo * inner, hi * inner);
}

describe('Tensor.reshape', () => {
  it('gives the same elements in the new shape, -1 inferred, sharing the storage', () => {
    const data = rng.normals(2 * 3 * 5);
    const t = tensor(data, [2, 3, 5]);
    const r = t.reshape([6, -1]);
    expect(r.shape).toEqual([6, 5]);
    expect(r.dtype).toBe('float32');
    expect(Array.from(r.toArray())).toEqual(Array.from(data));
    expect(t.reshape([-1]).shape).toEqual([30]);
    expect(t.reshape([0 + 30, 1]).shape).toEqual([30, 1]);
    expect(tensor(new Float32Array(0), [0, 4]).reshape([-1, 2]).shape).toEqual([0, 2]);
  });

  it('shares writes: an in-place backward into one shows in the other', () => {
    const V = 7, N = 6;
    const logits = tensor(rng.normals(N * V), [2, 3, V]);
    const flat = logits.reshape([N, V]);
    const targets = tensor(Int32Array.from({ length: N }, () => rng.int(0, V)), [2, 3]);
    const { lse } = tokenLogProbs(logits, targets);
    const grad = tensor(rng.normals(N), [2, 3]);
    const expected = tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: grad }).toArray();
    const out = tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: grad }, { inPlace: true });
    expect(out).toBe(logits);
    expect(Array.from(flat.toArray())).toEqual(Array.from(expected));
  });

  it('keeps the storage until every holder is disposed', () => {
    const src = rng.normals(1 << 18);
    const t = tensor(src, [512, 512]);  // large: pooled host storage, never handed out by toArray()
    const data = Array.from(src.subarray(0, 8));
    const r = t.reshape([-1]);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(Array.from(r.toArray().subarray(0, 8))).toEqual(data);
    const again = tensor(rng.normals(1 << 18), [512, 512]);  // would reuse a block given back too early
    expect(Array.from(r.toArray().subarray(0, 8))).toEqual(data);
    r.dispose();
    again.dispose();
  });

  it('rejects bad shapes with a RangeError or TypeError naming the counts', () => {
    const t = tensor(new Float32Array(12), [3, 4]);
    expect(() => t.reshape([5, 3])).toThrow(new RangeError('Tensor.reshape: shape [5, 3] holds 15 elements, the tensor has 12'));
    expect(() => t.reshape([-1, -1])).toThrow(new RangeError('Tensor.reshape: shape expected at most one -1, got [-1, -1]'));
    expect(() => t.reshape([5, -1])).toThrow(new RangeError("Tensor.reshape: shape [5, -1] cannot hold the tensor's 12 elements"));
    expect(() => t.reshape([0, -1])).toThrow(RangeError);
    expect(() => t.reshape([2.5, 2])).toThrow(RangeError);
    expect(() => t.reshape([-2, -6])).toThrow(RangeError);
    // The shape as written, not with its -1 replaced
    expect(() => t.reshape([-1, -2])).toThrow(new RangeError('Tensor.reshape: shape expected non-negative integers and at most one -1, got [-1, -2]'));
    expect(() => t.reshape([-1, 2.5])).toThrow(/got \[-1, 2\.5\]$/);
    expect(() => t.reshape([-1, '2'] as never)).toThrow(new TypeError('Tensor.reshape: shape expected non-negative integers and at most one -1, got [-1, "2"]'));
    expect(() => t.reshape('12' as never)).toThrow(TypeError);
    t.dispose();
    expect(() => t.reshape([12])).toThrow(KernelError);
  });
});

describe('Tensor.slice', () => {
  it('copies rows [start, end) of the first dimension; negative from the end; clamped', () => {
    const B = 9, T = 5;
    const data = rng.normals(B * T);
    const t = tensor(data, [B, T]);
    const cases: [number, number | undefined, number, number][] = [
      [2, 5, 2, 5], [0, undefined, 0, B], [-3, undefined, B - 3, B], [1, -1, 1, B - 1], [7, 3, 7, 7], [-100, 100, 0, B], [B, B + 2, B, B],
    ];
    for (const [start, end, lo, hi] of cases) {
      const s = t.slice(start, end);
      expect(s.shape, `slice(${start}, ${end})`).toEqual([hi - lo, T]);
      expect(Array.from(s.toArray())).toEqual(rows(data, T, lo, hi));
    }
    const bytes = tensor(Uint8Array.from({ length: 33 }, (_, i) => i), [11, 3]);  // 3-byte rows
    expect(Array.from(bytes.slice(3, 8).toArray())).toEqual(Array.from({ length: 15 }, (_, i) => 9 + i));
    expect(Array.from(tensor([1, 2, 3]).slice(1).toArray())).toEqual([2, 3]);  // 1-d: elements
  });

  it('is a copy in stream order: sees the op queued before it, not the in-place op after', async () => {
    const B = 4, T = 33;
    const rewards = tensor(rng.normals(B * T), [B, T]);
    const values = tensor(rng.normals(B * T), [B, T]);
    const { advantages } = gae(rewards, values, { gamma: 0.99, lambda: 0.95 });
    const part = advantages.slice(1, 3);  // queued after gae: its outputs
    expect(Array.from(await part.read())).toEqual(rows(advantages.toArray(), T, 1, 3));

    const V = 5;
    const logits = tensor(rng.normals(B * V), [B, V]);
    const before = Array.from(logits.toArray());
    const targets = tensor(Int32Array.from([0, 1, 2, 3]), [B]);
    const { lse } = tokenLogProbs(logits, targets);
    const kept = logits.slice(0);
    tokenLogProbsBackward(logits, targets, { lse, gradLogprobs: tensor(rng.normals(B), [B]) }, { inPlace: true });
    expect(Array.from(await kept.read())).toEqual(before);
    expect(Array.from(logits.toArray())).not.toEqual(before);
    await synchronize();
  });

  it('rejects bad indices and 0-d tensors', () => {
    const t = tensor(new Float32Array(6), [3, 2]);
    expect(() => t.slice(1.5)).toThrow(new RangeError('Tensor.slice: start expected an integer, got 1.5'));
    expect(() => t.slice(0, NaN)).toThrow(new RangeError('Tensor.slice: end expected an integer, got NaN'));
    expect(() => t.slice(Infinity)).toThrow(RangeError);
    expect(() => t.slice('1' as never)).toThrow(TypeError);
    expect(() => tensor([5], []).slice(0)).toThrow(new RangeError('Tensor.slice: expected a tensor with at least one dimension, got shape []'));
    t.dispose();
    expect(() => t.slice(0)).toThrow(KernelError);
  });
});

describe('slice and concat outputs as op inputs on cpu', () => {
  it('checks targets a queued slice or concat writes only once written: valid ids never throw, a bad one is reported at the next wait', async () => {
    // Pooled blocks come back holding old data (here the bits of log-probs):
    // a check at the call would read them instead of the ids.
    const N = 65536, V = 32, MB = 16384;
    const logits = tensor(new Float32Array(N * V).map((_, i) => Math.sin(i)), [N, V]);
    const ids = Int32Array.from({ length: N }, (_, i) => i % V);
    const targets = tensor(ids);
    for (let round = 0; round < 10; round++)
      for (let s = 0; s < N; s += MB) {
        const l = logits.slice(s, s + MB);
        const t = s === 0 ? concat([targets.slice(0, MB / 2), targets.slice(MB / 2, MB)]) : targets.slice(s, s + MB);
        const out = tokenLogProbs(l, t);
        t.dispose();
        l.dispose();
        expect((await out.logprobs.read())[1]).toBeLessThan(0);
        out.lse.dispose();
        out.logprobs.dispose();
      }
    ids[7] = V + 1;
    const bad = tensor(ids).slice(0, MB);
    const run = async () => tokenLogProbs(logits.slice(0, MB), bad).logprobs.read();  // refused at once, or at the next wait
    await expect(run()).rejects.toThrow(`tokenLogProbs: targets[7] is ${V + 1}, expected a token id in [0, ${V}) or ignoreIndex (-100)`);
    await expect(run()).rejects.toThrow(RangeError);
  });
});

describe('read() on cpu and an in-place op queued while it is in flight', () => {
  it('gives what the tensor held at the call: the in-place backward waits for a copy, never tears it', async () => {
    const R = 1024, V = 2048;
    const busy = tensor(new Float32Array(2048 * 4096), [2048, 4096]);
    const busyTargets = tensor(new Int32Array(2048));
    for (let it = 0; it < 20; it++) {
      const logits = tensor(new Float32Array(R * V).fill(1), [R, V]);
      const y = tensor(new Int32Array(R));
      const { lse } = tokenLogProbs(logits, y);
      tokenLogProbs(busy, busyTargets);  // the read below stays in flight
      const before = logits.read();
      const alsoBefore = logits.reshape([R * V]).read();  // a view's read: the same storage
      tokenLogProbsBackward(logits, y, { lse, gradLogprobs: tensor(new Float32Array(R).fill(1)) }, { inPlace: true });
      for (const p of [before, alsoBefore]) expect((await p).every((v) => v === 1)).toBe(true);
      const after = await logits.read();
      expect(after[0]).not.toBe(1);
    }
  });
});

describe('concat', () => {
  it('joins along the first dimension, every dtype, empty parts included', () => {
    const T = 3;
    const parts = [2, 0, 5, 1].map((b) => rng.normals(b * T));
    const out = concat(parts.map((d) => tensor(d, [d.length / T, T])));
    expect(out.shape).toEqual([8, T]);
    expect(Array.from(out.toArray())).toEqual(parts.flatMap((d) => Array.from(d)));
    const ints = concat([tensor(Int32Array.from([1, -2]), [2]), tensor(Int32Array.from([3]), [1])]);
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.toArray())).toEqual([1, -2, 3]);
    const halves = concat([tensor([1, 2], [2], { dtype: 'bfloat16' }), tensor([3], [1], { dtype: 'bfloat16' })]);
    expect(halves.dtype).toBe('bfloat16');
    expect([0, 1, 2].map((i) => halves.slice(i, i + 1).item())).toEqual([1, 2, 3]);
  });

  it('round-trips slices: concat of a batch cut into micro-batches is the batch', () => {
    const B = 37, T = 11;
    const data = rng.normals(B * T);
    const t = tensor(data, [B, T]);
    const cuts = [0, 8, 16, 24, 32, B];
    const micro: Tensor[] = cuts.slice(1).map((hi, k) => t.slice(cuts[k]!, hi));
    expect(Array.from(concat(micro).toArray())).toEqual(Array.from(data));
  });

  it('rejects mismatched parts naming the index', () => {
    const a = tensor(new Float32Array(6), [2, 3]);
    expect(() => concat([])).toThrow(new RangeError('concat: tensors expected at least one tensor, got []'));
    expect(() => concat('x' as never)).toThrow(TypeError);
    expect(() => concat([a, 1 as never])).toThrow(new TypeError('concat: tensors[1] expected a Tensor, got 1'));
    expect(() => concat([a, tensor(new Float32Array(8), [2, 4])])).toThrow(
      new RangeError('concat: tensors[1] expected shape [*, 3] like tensors[0], got [2, 4]'));
    expect(() => concat([a, tensor(new Float32Array(6), [6])])).toThrow(RangeError);
    expect(() => concat([a, tensor(new Int32Array(3), [1, 3]) as never])).toThrow(
      new TypeError('concat: tensors[1] expected dtype float32 like tensors[0], got int32'));
    expect(() => concat([tensor([1], [])])).toThrow(RangeError);
    expect(() => concat([tensor([1, 2]), tensor([3], [])])).toThrow(
      new RangeError('concat: tensors[1] expected shape [*] like tensors[0], got []'));
    // Holes are named, and refused before the output exists
    const before = memory().host;
    expect(() => concat([a, , a] as never)).toThrow(new TypeError('concat: tensors[1] expected a Tensor, got undefined'));
    expect(() => concat([, a] as never)).toThrow(new TypeError('concat: tensors[0] expected a Tensor, got undefined'));
    expect(memory().host).toBe(before);
    const gone = tensor([1, 2, 3], [1, 3]);
    gone.dispose();
    expect(() => concat([a, gone])).toThrow(KernelError);
  });
});

describe('maskRowCounts (what a uint8 tensor going to a GPU counts)', () => {
  it('counts each row\'s nonzero bytes, any nonzero value, odd lengths included', () => {
    for (const [rows, len] of [[1, 1], [3, 31], [2, 33], [5, 1025], [4, 0], [0, 7]] as const) {
      const data = Uint8Array.from({ length: rows * len }, () => (rng.uniform() < 0.4 ? 0 : rng.int(1, 256)));
      const expected = Array.from({ length: rows }, (_, r) => data.subarray(r * len, (r + 1) * len).filter((v) => v !== 0).length);
      expect(Array.from(addon().maskRowCounts(data, rows, len)), `${rows}x${len}`).toEqual(expected);
    }
  });

  it('refuses a shape that is not the array\'s, and more rows than an Int32Array holds', () => {
    expect(() => addon().maskRowCounts(new Uint8Array(6), 4, 2)).toThrow(RangeError);
    expect(() => addon().maskRowCounts(new Uint8Array(0), 2 ** 40, 0)).toThrow(RangeError);
    expect(() => addon().maskRowCounts(new Int32Array(6) as never, 3, 2)).toThrow(TypeError);
  });
});
