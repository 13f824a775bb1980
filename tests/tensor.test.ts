import { constants as bufferConstants } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { allocHost } from '../lib/storage.js';
import {
  KernelError, Tensor, fromBFloat16, fromFloat16, memory, synchronize, tensor, toBFloat16, toFloat16,
} from '../lib/index.js';
import { bfloat16Bits, float16Bits } from '../lib/dtype.js';
import { Rng } from './helpers/random.js';

describe('tensor()', () => {
  it('infers dtype and shape from the data', () => {
    expect(tensor([1, 2, 3]).dtype).toBe('float32');
    expect(tensor(new Int32Array([1, 2])).dtype).toBe('int32');
    expect(tensor(new Uint8Array([1, 0])).dtype).toBe('uint8');
    const t = tensor(new Float32Array(6).fill(1.5), [2, 3]);
    expect(t.shape).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.device).toBe('cpu');
    expect(String(t)).toBe('Tensor(float32 [2, 3] cpu)');
  });

  it('copies unless copy: false', () => {
    const data = new Float32Array([1, 2, 3]);
    const copied = tensor(data);
    const shared = tensor(data, undefined, { copy: false });
    data[0] = 42;
    expect(copied.toArray()[0]).toBe(1);
    expect(shared.toArray()[0]).toBe(42);
  });

  it('converts numbers to the asked dtype', () => {
    expect(Array.from(tensor([1, -2], undefined, { dtype: 'int32' }).toArray())).toEqual([1, -2]);
    const b = tensor([1.5, -2.25], undefined, { dtype: 'bfloat16' });
    expect(b.toArray()).toBeInstanceOf(Uint16Array);
    expect(Array.from(fromBFloat16(b.toArray() as Uint16Array))).toEqual([1.5, -2.25]);
  });

  it('rejects bad data, shapes and options with the right class', () => {
    expect(() => tensor('abc' as never)).toThrow(TypeError);
    expect(() => tensor([1, 2], [3])).toThrow(/shape \[3\] holds 3 elements, data has 2/);
    expect(() => tensor([1, 2], [2, -1])).toThrow(RangeError);
    expect(() => tensor([1], [1.5])).toThrow(RangeError);
    expect(() => tensor(new Uint16Array(2))).toThrow(/Uint16Array holds float16 or bfloat16 bits/);
    expect(() => tensor([1.5], undefined, { dtype: 'int32' })).toThrow(RangeError);
    expect(() => tensor([300], undefined, { dtype: 'uint8' })).toThrow(/expected a uint8, got 300/);
    expect(() => tensor([1], undefined, { dtype: 'float64' as never })).toThrow(TypeError);
    expect(() => tensor([1], undefined, { device: 'gpu' as never })).toThrow(RangeError);
    expect(() => tensor([1], undefined, { device: 3 as never })).toThrow(TypeError);
    expect(() => tensor([1]).to(5 as never)).toThrow(/^Tensor\.to: device: expected 'cpu'/);
    expect(() => tensor([1, 2], undefined, { copy: false })).toThrow(/copy: false needs/);
    // Storage that could shrink under queued work is refused
    const resizable = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(16, { maxByteLength: 64 });
    expect(() => tensor(new Float32Array(resizable, 0, 4), [4], { copy: false })).toThrow(
      new TypeError('tensor: copy: false needs data over a fixed-length ArrayBuffer, got a Float32Array of length 4 over a resizable one'));
    expect(tensor(new Float32Array(resizable, 0, 4), [4]).size).toBe(4);  // a copy is fine
  });

  it('reads a one-element tensor with item()', () => {
    expect(tensor([2.5]).item()).toBe(2.5);
    expect(tensor([3], [1, 1], { dtype: 'bfloat16' }).item()).toBe(3);
    expect(() => tensor([1, 2]).item()).toThrow(RangeError);
  });

  it('is the only way in: new Tensor() says so', () => {
    const Ctor = Tensor as unknown as new (...args: unknown[]) => unknown;
    expect(() => new Ctor()).toThrow(new TypeError('new Tensor(): not public; make tensors with tensor(data, shape, opts) or an op'));
    expect(() => new Ctor([2], 'float32', 'cpu', null, null)).toThrow(TypeError);
  });

  it('refuses copy: false data whose buffer was detached (a WebAssembly memory grown) as EDISPOSED', () => {
    const memoryPages = new WebAssembly.Memory({ initial: 1, maximum: 4 });
    const t = tensor(new Float32Array(memoryPages.buffer, 0, 4).fill(2), [4], { copy: false });
    expect(Array.from(t.toArray())).toEqual([2, 2, 2, 2]);
    memoryPages.grow(1);
    for (const use of [() => t.toArray(), () => t.to('cpu'), () => t.reshape([2, 2]), () => t.slice(0)]) {
      expect(use).toThrow(KernelError);
      expect(use).toThrow(/lost its copy: false data \(its buffer was detached\)/);
    }
  });

  it('refuses cpu storage past the typed-array length limit as a RangeError naming it, not as out of memory', () => {
    const limit = bufferConstants.MAX_LENGTH;
    expect(() => allocHost('uint8', limit + 1)).toThrow(
      new RangeError(`cpu: a tensor of ${limit + 1} uint8 elements is past this Node.js's typed-array length limit (${limit})`));
  });

  it('copies to the same device with to()', () => {
    const a = tensor([1, 2, 3]);
    const b = a.to('cpu');
    expect(b).not.toBe(a);
    expect(Array.from(b.toArray())).toEqual([1, 2, 3]);
  });
});

describe('dispose', () => {
  it('is idempotent and makes later use a KernelError EDISPOSED', async () => {
    const t = tensor([1, 2, 3]);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(String(t)).toContain('disposed');
    for (const use of [() => t.toArray(), () => t.to('cpu'), () => t.item()]) {
      try {
        use();
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(KernelError);
        expect((e as KernelError).code).toBe('EDISPOSED');
      }
    }
    await expect(t.read()).rejects.toThrow(KernelError);
  });

  it('works with `using` via Symbol.dispose; memory() counts host ArrayBuffers', () => {
    const before = memory().find((m) => m.device === 'cpu')!.inUse;
    const t: Tensor = tensor(new Float32Array(1 << 20));
    expect(memory().find((m) => m.device === 'cpu')!.inUse).toBeGreaterThanOrEqual(before + 4 * (1 << 20));
    t[Symbol.dispose]();
    expect(t.disposed).toBe(true);
  });

  it('read() resolves with the data', async () => {
    const t = tensor([4, 5]);
    expect(Array.from(await t.read())).toEqual([4, 5]);
    await synchronize();
  });
});

describe('bfloat16 / float16 conversion', () => {
  // Closed forms: the nearest representable value, ties to even.
  it('rounds to nearest even at the tie points', () => {
    // bfloat16 keeps 8 significant bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7.
    expect(bfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie -> even (1.0)
    expect(bfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie -> even (1 + 2^-6)
    expect(bfloat16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81); // above the tie -> up
    // float16 keeps 11 significant bits.
    expect(float16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(float16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(float16Bits(65504)).toBe(0x7bff);
    expect(float16Bits(65520)).toBe(0x7c00); // rounds up to infinity
    expect(float16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float16Bits(2 ** -25)).toBe(0x0000); // tie -> even (0)
    expect(float16Bits(3 * 2 ** -25)).toBe(0x0002);
  });

  it('keeps infinities, signed zeros and NaN', () => {
    const specials = [Infinity, -Infinity, 0, -0, NaN];
    const b = fromBFloat16(toBFloat16(specials));
    const h = fromFloat16(toFloat16(specials));
    for (const out of [b, h]) {
      expect(out[0]).toBe(Infinity);
      expect(out[1]).toBe(-Infinity);
      expect(Object.is(out[2], 0)).toBe(true);
      expect(Object.is(out[3], -0)).toBe(true);
      expect(Number.isNaN(out[4])).toBe(true);
    }
  });

  it('round-trips every representable value and is within half an ulp on random data', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exp = (bits >> 10) & 0x1f;
      if (exp !== 0x1f) expect(toFloat16(fromFloat16(new Uint16Array([bits]))!)[0]).toBe(bits);
      const bexp = (bits >> 7) & 0xff;
      if (bexp !== 0xff) expect(toBFloat16(fromBFloat16(new Uint16Array([bits]))!)[0]).toBe(bits);
    }
    const rng = new Rng();
    const x = rng.normals(10000, 100);
    const b = fromBFloat16(toBFloat16(x));
    const h = fromFloat16(toFloat16(x));
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      const e = Math.floor(Math.log2(Math.abs(v)));
      expect(Math.abs(b[i]! - v)).toBeLessThanOrEqual(2 ** (e - 8));
      expect(Math.abs(h[i]! - v)).toBeLessThanOrEqual(Math.max(2 ** (e - 11), 2 ** -25));
    }
  });
});
