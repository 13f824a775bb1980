/**
 * Seeded random inputs. Every run draws a fresh seed (printed by the tests'
 * setup) unless RK_SEED fixes it, so failures can be replayed.
 */

let drawn = 0;

/**
 * A seed for a new Rng: RK_SEED (set per test file by tests/helpers/setup.ts,
 * or by you to replay a failure) stepped by how many were drawn before, else
 * a random one.
 */
export function freshSeed(): number {
  const env = process.env.RK_SEED;
  if (env === undefined) return (Math.random() * 2 ** 32) >>> 0;
  return (Number(env) + Math.imul(drawn++, 0x9e3779b9)) >>> 0;
}

/** xoshiro128** with splitmix32 seeding: fast, good enough for test data. */
export class Rng {
  private s: Uint32Array;
  readonly seed: number;

  constructor(seed: number = freshSeed()) {
    this.seed = seed >>> 0;
    this.s = new Uint32Array(4);
    let x = this.seed;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = s[1]! << 9;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return (this.u32() + (this.u32() >>> 11) / 2 ** 21) / 2 ** 32;
  }

  /** Uniform integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo));
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** n normal values with standard deviation `scale` and mean `shift`. */
  normals(n: number, scale = 1, shift = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = shift + scale * this.normal();
    return out;
  }

  uniforms(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }

  ints(n: number, lo: number, hi: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(lo, hi);
    return out;
  }

  /** 0/1 mask with P(1) = p. */
  mask(n: number, p = 0.5): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform() < p ? 1 : 0;
    return out;
  }

  /** A [rows, steps] mask with P(1) = p and, when there are rows enough, an empty row 0 and a full row 1. */
  rowMask(rows: number, steps: number, p = 0.7): Uint8Array {
    const m = this.mask(rows * steps, p);
    if (rows >= 2) {
      m.fill(0, 0, steps);
      m.fill(1, steps, 2 * steps);
    }
    return m;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
