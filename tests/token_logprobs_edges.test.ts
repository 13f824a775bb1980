/**
 * tokenLogProbs edges: batch invariance, NaN / inf rows, every CPU ISA,
 * offsets past 2^31 elements, empty batches, and bad inputs (class + message).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freemem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { addon, loadedFrom } from '../lib/addon.js';
import {
  KernelError, type Tensor, info, setNumThreads, tensor, toBFloat16, tokenLogProbs, tokenLogProbsBackward,
} from '../lib/index.js';
import { Rng } from './helpers/random.js';
import { EPS, f32 } from './helpers/tolerance.js';
import { tokenLogProbsBackwardRef, tokenLogProbsRef } from './reference/token_logprobs.js';
import { type LogitDType, bits, decode, encode, expectClose, randomLogits, randomTargets, roundTo } from './token_logprobs_util.js';

describe('batch invariance (cpu)', () => {
  it('gives a row the same bits in any batch size, position and thread count', () => {
    const rng = new Rng();
    const threads = info().cpu.threads;
    try {
      for (const [V, dtype] of [[50257, 'bfloat16'], [20000, 'float32'], [1025, 'float16']] as [number, LogitDType][]) {
        const row = encode(dtype, rng.normals(V, 3));
        const y = rng.int(0, V);
        const run = (rows: number, at: number) => {
          const data = encode(dtype, rng.normals(rows * V, 3));
          data.set(row, at * V);
          const targets = rng.ints(rows, 0, V);
          targets[at] = y;
          const out = tokenLogProbs(tensor(data, [rows, V], { dtype }), targets, { entropy: true, temperature: 0.7 });
          return [out.logprobs, out.lse, out.entropy!].map((t) => bits(t.toArray())[at]!);
        };
        const alone = run(1, 0);
        for (const [rows, at] of [[2, 1], [3, 0], [5, 2], [64, 0], [64, 37], [64, 63]] as const)
          expect(run(rows, at), `V=${V} ${dtype} rows=${rows} at=${at}`).toEqual(alone);
        for (const n of [1, 3]) {
          setNumThreads(n);
          expect(run(64, 17), `${n} threads`).toEqual(alone);
          expect(run(1, 0), `${n} threads, alone`).toEqual(alone);
        }
        setNumThreads(threads);
      }
    } finally {
      setNumThreads(threads);
    }
  });
});

describe('NaN and inf rows (cpu)', () => {
  it('keep NaN to their row, forward and backward', () => {
    const rng = new Rng();
    const V = 300, rows = 5;
    const { tensor: logits, values } = randomLogits(rng, [rows, V], 'float32');
    const x = logits.toArray();
    x[1 * V + 17] = NaN;
    x[2 * V + 250] = Infinity;
    x[3 * V + 3] = NaN; // row 3 is ignored
    values.set(x);
    const y = randomTargets(rng, rows, V, 0);
    y[3] = -100;
    const out = tokenLogProbs(logits, y, { entropy: true });
    const ref = tokenLogProbsRef(values, y, V);
    for (const r of [1, 2]) {
      for (const t of [out.logprobs, out.lse, out.entropy!]) expect(t.toArray()[r], `row ${r}`).toBeNaN();
    }
    expect(out.lse.toArray()[3]).toBeNaN();
    expect([out.logprobs.toArray()[3], out.entropy!.toArray()[3]]).toEqual([0, 0]);
    expectClose('finite rows', out.logprobs.toArray(), ref.logprobs, tokenLogProbsRef(values, y, V, {}, f32).logprobs);
    const g = tokenLogProbsBackward(logits, y, { lse: out.lse, gradLogprobs: tensor(rng.normals(rows)) }).toArray();
    for (const r of [1, 2]) expect(g.slice(r * V, r * V + V).every(Number.isNaN), `row ${r}`).toBe(true);
    expect(g.slice(3 * V, 4 * V).every((v) => v === 0)).toBe(true);
    for (const r of [0, 4]) expect(g.slice(r * V, r * V + V).every(Number.isFinite), `row ${r}`).toBe(true);
  });
});

describe('every CPU ISA', () => {
  it('agrees with the reference under baseline, avx2, avx512 / neon (child processes)', () => {
    const rng = new Rng();
    const binary = loadedFrom() ?? (info(), loadedFrom());
    expect(binary).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'rk-tlp-'));
    try {
      const cases: { name: string; dtype: number; rows: number; vocab: number; invTemperature: number }[] = [];
      const inputs = new Map<string, { values: Float32Array; y: Int32Array; gLp: Float32Array; gH: Float32Array; dtype: LogitDType }>();
      for (const [dtype, code, V] of [['float32', 0, 1031], ['bfloat16', 2, 8209], ['float16', 1, 77]] as [LogitDType, number, number][]) {
        const rows = 6, name = dtype;
        const raw = rng.normals(rows * V, 3);
        raw[5] = -Infinity;
        const data = encode(dtype, raw);
        const y = randomTargets(rng, rows, V);
        const gLp = rng.normals(rows), gH = rng.normals(rows);
        for (const [suffix, a] of [['logits', data], ['targets', y], ['gradLogprobs', gLp], ['gradEntropy', gH]] as const)
          writeFileSync(join(dir, `${name}.${suffix}`), new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
        cases.push({ name, dtype: code, rows, vocab: V, invTemperature: 1 / 1.3 });
        inputs.set(name, { values: decode(dtype, data), y, gLp, gH, dtype });
      }
      writeFileSync(join(dir, 'meta.json'), JSON.stringify({ cases }));
      const child = fileURLToPath(new URL('./token_logprobs_isa_child.cjs', import.meta.url));
      for (const isa of info().cpu.supportedIsas) {
        const reply = execFileSync(process.execPath, [child, binary!, dir], { env: { ...process.env, RLHF_KERNELS_ISA: isa } });
        expect(JSON.parse(reply.toString()).isa).toBe(isa);
        for (const c of cases) {
          const { values, y, gLp, gH, dtype } = inputs.get(c.name)!;
          const bytes = (what: string) => {
            const b = readFileSync(join(dir, `${c.name}.${what}`));
            return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
          };
          const read = (what: string) => new Float32Array(bytes(what));
          const o = { temperature: 1.3 };
          const ref = tokenLogProbsRef(values, y, c.vocab, o);
          const naive = tokenLogProbsRef(values, y, c.vocab, o, f32);
          const what = `${isa} ${dtype}`;
          expectClose(`${what} logprobs`, read('logprobs'), ref.logprobs, naive.logprobs);
          expectClose(`${what} lse`, read('lse'), ref.lse, naive.lse);
          expectClose(`${what} entropy`, read('entropy'), ref.entropy, naive.entropy);
          const grads = { lse: read('lse'), gradLogprobs: gLp, entropy: read('entropy'), gradEntropy: gH };
          const g = dtype === 'float32' ? read('gradLogits') : decode(dtype, new Uint16Array(bytes('gradLogits')));
          const gRef = tokenLogProbsBackwardRef(values, y, c.vocab, grads, o);
          const gNaive = roundTo(dtype, tokenLogProbsBackwardRef(values, y, c.vocab, grads, o, f32));
          expectClose(`${what} dlogits`, g, gRef, gNaive, 4, dtype === 'float32' ? 16 : 2, EPS[dtype]);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('64-bit offsets', () => {
  // 14136 rows x 151936 bf16 logits = 2.15e9 elements (4.3 GB): more than 2^31.
  // The buffer is calloc'd, so the all-zero rows cost no memory until written;
  // random rows at both ends are checked against the reference, a zero row
  // against its closed form (uniform: logprob -log V, entropy log V).
  const V = 151936, rows = Math.ceil(2 ** 31 / V) + 1;
  it(`reads and writes rows past element 2^31 (${rows} x ${V} bf16)`, () => {
    expect(rows * V).toBeGreaterThan(2 ** 31);
    const rng = new Rng();
    const data = new Uint16Array(rows * V);
    const checked = [0, rows - 2, rows - 1];
    const values = new Float32Array(checked.length * V);
    checked.forEach((r, i) => {
      const row = toBFloat16(rng.normals(V, 3));
      data.set(row, r * V);
      values.set(decode('bfloat16', row), i * V);
    });
    const y = rng.ints(rows, 0, V);
    const logits = tensor(data, [rows, V], { dtype: 'bfloat16', copy: false });
    const out = tokenLogProbs(logits, y, { entropy: true });
    const yc = Int32Array.from(checked, (r) => y[r]!);
    const ref = tokenLogProbsRef(values, yc, V);
    const naive = tokenLogProbsRef(values, yc, V, {}, f32);
    const pick = (t: ArrayLike<number>) => Float32Array.from(checked, (r) => t[r]!);
    expectClose('far rows logprobs', pick(out.logprobs.toArray()), ref.logprobs, naive.logprobs);
    expectClose('far rows lse', pick(out.lse.toArray()), ref.lse, naive.lse);
    expectClose('far rows entropy', pick(out.entropy!.toArray()), ref.entropy, naive.entropy);
    const mid = rows >> 1;
    expect(out.logprobs.toArray()[mid]).toBeCloseTo(-Math.log(V), 5);
    expect(out.entropy!.toArray()[mid]).toBeCloseTo(Math.log(V), 5);

    // The backward writes all 4.3 GB (in place): only where that memory is free.
    if (freemem() < 12e9) return;
    const gLp = rng.normals(rows);
    const g = tokenLogProbsBackward(logits, y, { lse: out.lse, gradLogprobs: tensor(gLp) }, { inPlace: true });
    const last = checked.length - 1;
    const host = { lse: [out.lse.toArray()[rows - 1]!], gradLogprobs: [gLp[rows - 1]!] };
    const lastValues = values.subarray(last * V);
    const gRef = tokenLogProbsBackwardRef(lastValues, [y[rows - 1]!], V, host);
    const gNaive = roundTo('bfloat16', tokenLogProbsBackwardRef(lastValues, [y[rows - 1]!], V, host, {}, f32));
    const gLast = decode('bfloat16', (g.toArray() as Uint16Array).subarray((rows - 1) * V));
    expectClose('last row dlogits', gLast, gRef, gNaive, 4, 2, EPS.bfloat16);
    logits.dispose();
  });
});

describe('shapes', () => {
  it('accepts an empty batch and a 1-D logits row', () => {
    const empty = tokenLogProbs(tensor(new Float32Array(0), [0, 5]), new Int32Array(0));
    expect(empty.logprobs.shape).toEqual([0]);
    const g = tokenLogProbsBackward(tensor(new Float32Array(0), [2, 0, 5]), tensor(new Int32Array(0), [2, 0]), {
      lse: tensor(new Float32Array(0), [2, 0]), gradLogprobs: tensor(new Float32Array(0), [2, 0]),
    });
    expect(g.shape).toEqual([2, 0, 5]);
    const one = tokenLogProbs(tensor([0.5, -1, 2]), tensor(new Int32Array([2]), []));
    expect(one.logprobs.shape).toEqual([]);
    expect(one.logprobs.item()).toBeCloseTo(2 - Math.log(Math.exp(0.5) + Math.exp(-1) + Math.exp(2)), 6);
  });
});

describe('targets as a typed array', () => {
  it('is laid out like the leading dims, forward and backward', () => {
    const logits = tensor(new Float32Array(2 * 3 * 5).map((_, i) => Math.cos(i)), [2, 3, 5]);
    const ids = new Int32Array([4, 0, -100, 2, 1, 3]);
    const asTensor = tokenLogProbs(logits, tensor(ids, [2, 3]));
    const asArray = tokenLogProbs(logits, ids);
    const entropy: Tensor = tokenLogProbs(logits, ids, { entropy: true }).entropy; // typed as there when asked for
    expect(entropy.shape).toEqual([2, 3]);
    expect(asArray.entropy).toBeUndefined();
    expect(asArray.logprobs.shape).toEqual([2, 3]);
    expect(Array.from(asArray.logprobs.toArray())).toEqual(Array.from(asTensor.logprobs.toArray()));
    const gradLogprobs = tensor(new Float32Array(6).fill(1), [2, 3]);
    const dArray = tokenLogProbsBackward(logits, ids, { lse: asArray.lse, gradLogprobs });
    const dTensor = tokenLogProbsBackward(logits, tensor(ids, [2, 3]), { lse: asTensor.lse, gradLogprobs });
    expect(Array.from(dArray.toArray())).toEqual(Array.from(dTensor.toArray()));
  });
});

describe('bad inputs', () => {
  const logits = tensor(new Float32Array(24).map((_, i) => Math.sin(i)), [2, 3, 4]);
  const targets = tensor(new Int32Array([0, 1, 2, 3, 0, 1]), [2, 3]);
  const lse = tokenLogProbs(logits, targets).lse;
  const fwd = (l: unknown, t: unknown, o?: unknown) => () => tokenLogProbs(l as never, t as never, o as never);
  const bwd = (g: unknown, o?: unknown, t: unknown = targets) => () => tokenLogProbsBackward(logits, t as never, g as never, o as never);
  const cases: [string, () => unknown, ErrorConstructor, string][] = [
    ['logits not a tensor', fwd(new Float32Array(4), [0]), TypeError, 'tokenLogProbs: logits expected a float32 or bfloat16 or float16 Tensor, got a Float32Array of length 4'],
    ['logits int32', fwd(tensor(new Int32Array(4), [1, 4]), [0]), TypeError, 'tokenLogProbs: logits expected dtype float32 or bfloat16 or float16, got int32'],
    ['0-d logits', fwd(tensor([1], []), [0]), RangeError, 'tokenLogProbs: logits expected shape [..., V] with at least one dimension, got []'],
    ['empty vocabulary', fwd(tensor(new Float32Array(0), [3, 0]), [0, 0, 0]), RangeError, 'tokenLogProbs: logits expected a vocabulary (last dimension) V in [1, 2^31), got shape [3, 0]'],
    ['float targets', fwd(logits, tensor(new Float32Array(6), [2, 3])), TypeError, 'tokenLogProbs: targets expected dtype int32, got float32'],
    ['targets shape', fwd(logits, tensor(new Int32Array(6))), RangeError, 'tokenLogProbs: targets expected shape [2, 3], got [6]'],
    ['targets array of another length', fwd(logits, new Int32Array(5)), RangeError, 'tokenLogProbs: targets expected shape [2, 3], got 5 elements'],
    ['targets of the wrong kind', fwd(logits, 'abc'), TypeError, 'tokenLogProbs: targets expected an int32 Tensor or a typed array, got "abc"'],
    ['target >= V', fwd(logits, tensor(new Int32Array([0, 1, 2, 3, 4, 0]), [2, 3])), RangeError, 'tokenLogProbs: targets[1, 1] is 4, expected a token id in [0, 4) or ignoreIndex (-100)'],
    ['negative target', fwd(logits, tensor(new Int32Array([0, -1, 2, 3, 0, 0]), [2, 3])), RangeError, 'tokenLogProbs: targets[0, 1] is -1, expected a token id in [0, 4) or ignoreIndex (-100)'],
    ['temperature 0', fwd(logits, targets, { temperature: 0 }), RangeError, 'tokenLogProbs: temperature expected a finite number > 0, got 0'],
    ['temperature NaN', fwd(logits, targets, { temperature: NaN }), RangeError, 'tokenLogProbs: temperature expected a finite number > 0, got NaN'],
    ['temperature inf', fwd(logits, targets, { temperature: Infinity }), RangeError, 'tokenLogProbs: temperature expected a finite number > 0, got Infinity'],
    ['temperature string', fwd(logits, targets, { temperature: '2' }), TypeError, 'tokenLogProbs: temperature expected a finite number > 0, got "2"'],
    ['temperature tiny', fwd(logits, targets, { temperature: 1e-40 }), RangeError, 'tokenLogProbs: temperature expected a number whose inverse is a finite, non-zero float32, got 1e-40'],
    ['ignoreIndex fraction', fwd(logits, targets, { ignoreIndex: 1.5 }), RangeError, 'tokenLogProbs: ignoreIndex expected an integer >= -2147483648 <= 2147483647, got 1.5'],
    ['entropy not boolean', fwd(logits, targets, { entropy: 1 }), TypeError, 'tokenLogProbs: entropy expected a boolean, got 1'],
    ['options null', fwd(logits, targets, null), TypeError, 'tokenLogProbs: options expected an object, got null'],
    ['grads missing', bwd(undefined), TypeError, 'tokenLogProbsBackward: grads expected an object { lse, gradLogprobs?, entropy?, gradEntropy? }, got undefined'],
    ['grads.lse missing', bwd({ gradLogprobs: lse }), TypeError, 'tokenLogProbsBackward: grads.lse expected a float32 Tensor, got undefined'],
    ['grads.lse shape', bwd({ lse: tensor([1, 2]), gradLogprobs: lse }), RangeError, 'tokenLogProbsBackward: grads.lse expected shape [2, 3], got [2]'],
    ['no gradient', bwd({ lse }), TypeError, 'tokenLogProbsBackward: grads expected gradLogprobs or gradEntropy (or both), got neither'],
    ['gradEntropy alone', bwd({ lse, gradEntropy: lse }), TypeError, 'tokenLogProbsBackward: grads.entropy expected a float32 Tensor (the forward\'s entropy, needed with gradEntropy), got undefined'],
    ['gradLogprobs dtype', bwd({ lse, gradLogprobs: targets }), TypeError, 'tokenLogProbsBackward: grads.gradLogprobs expected dtype float32, got int32'],
    ['backward temperature of a wrong type, with the forward\'s lse', bwd({ lse, gradLogprobs: lse }, { temperature: '1' }), TypeError, 'tokenLogProbsBackward: temperature expected a finite number > 0, got "1"'],
    ['backward ignoreIndex of a wrong type, with the forward\'s lse', bwd({ lse, gradLogprobs: lse }, { ignoreIndex: null }), TypeError, 'tokenLogProbsBackward: ignoreIndex expected an integer >= -2147483648 <= 2147483647, got null'],
    ['inPlace not boolean', bwd({ lse, gradLogprobs: lse }, { inPlace: 'yes' }), TypeError, 'tokenLogProbsBackward: inPlace expected a boolean, got "yes"'],
    ['backward bad target', bwd({ lse, gradLogprobs: lse }, {}, tensor(new Int32Array([0, 1, 9, 3, 0, 0]), [2, 3])), RangeError, 'tokenLogProbsBackward: targets[0, 2] is 9, expected a token id in [0, 4) or ignoreIndex (-100)'],
  ];
  for (const [name, call, kind, message] of cases) {
    it(`${name}: ${kind.name}`, () => {
      let thrown: unknown;
      try {
        call();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(kind);
      expect((thrown as Error).message).toBe(message);
    });
  }

  it('refuses, in place, an input that shares the logits\' memory (it would be read after its rows were overwritten)', () => {
    const N = 3, V = 4;
    const data = new Float32Array(N * V + 8).map((_, i) => Math.sin(i));
    const L = tensor(data.subarray(0, N * V), [N, V], { copy: false });
    const { lse } = tokenLogProbs(L, [0, 1, 2]);
    const within = tensor(data.subarray(V, V + N), [N], { copy: false });      // rows 1 and 2 of the logits
    const message = (name: string) =>
      new RangeError(`tokenLogProbsBackward: ${name} expected memory apart from logits (inPlace overwrites them), got a tensor sharing it`);
    expect(() => tokenLogProbsBackward(L, [0, 1, 2], { lse, gradLogprobs: within }, { inPlace: true })).toThrow(message('grads.gradLogprobs'));
    // int32 ids over the last logit (ids 0, 1, 2: the logit's bits become those of 0)
    const ids = new Int32Array(data.buffer, 4 * (N * V - 1), N);
    ids.set([0, 1, 2]);
    expect(() => tokenLogProbsBackward(L, tensor(ids, [N], { copy: false }), { lse, gradLogprobs: tensor([1, 1, 1]) }, { inPlace: true }))
      .toThrow(message('targets'));
    // Out of place, sharing is harmless: the same numbers as from a copy
    const shared = tokenLogProbsBackward(L, [0, 1, 2], { lse, gradLogprobs: within }).toArray();
    expect(Array.from(shared)).toEqual(Array.from(tokenLogProbsBackward(L, [0, 1, 2], { lse, gradLogprobs: tensor(within.toArray()) }).toArray()));
    // Memory next to the logits, in the same buffer, is apart
    const after = tensor(data.subarray(N * V, N * V + N), [N], { copy: false });
    expect(() => tokenLogProbsBackward(L, [0, 1, 2], { lse, gradLogprobs: after }, { inPlace: true })).not.toThrow();
  });

  it('accepts a target equal to a custom ignoreIndex, and a number[] of targets for 1-D rows', () => {
    const two = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const out = tokenLogProbs(two, [-1, 2], { ignoreIndex: -1, entropy: true });
    expect(out.logprobs.toArray()[0]).toBe(0);
    expect(out.logprobs.toArray()[1]).toBeCloseTo(6 - Math.log(Math.exp(4) + Math.exp(5) + Math.exp(6)), 5);
  });

  it('refuses a disposed tensor with KernelError EDISPOSED', () => {
    const t = tensor(new Float32Array(4), [1, 4]);
    t.dispose();
    expect(fwd(t, [0])).toThrow(KernelError);
    try {
      fwd(t, [0])();
    } catch (e) {
      expect((e as KernelError).code).toBe('EDISPOSED');
    }
  });

  it('checks byte lengths in the binding even when lib/ is bypassed', () => {
    const call = () =>
      (addon().tokenLogProbs as (a: object) => number)({
        device: -1, logits: new Float32Array(3), targets: new Int32Array(2), logprobs: new Float32Array(2), lse: new Float32Array(2),
        rows: 2, vocab: 2, dtype: 0, invTemperature: 1, ignoreIndex: -100,
      });
    expect(call).toThrow(TypeError);
    expect(call).toThrow("tokenLogProbs: 'logits' holds 12 bytes, the op needs 16");
  });
});
