/**
 * Tolerances derived from a rule, never tuned until green: a kernel's error
 * against the float64 reference must be within `factor` times the error of
 * a naive float32 evaluation of the same reference (the reference run with
 * every intermediate rounded to float32), plus `floor` for the cases where
 * the naive run happens to be exact.
 */

export interface ErrorStats {
  maxAbs: number;
  /** max |out - ref| / (|ref| + scale), scale = the mean |ref| (avoids dividing by ~0). */
  maxRel: number;
  /** Index of the worst element. */
  worst: number;
  /** Count of elements where one side is NaN / ±inf and the other is not the same. */
  mismatchedNonFinite: number;
}

export function errorStats(out: ArrayLike<number>, ref: ArrayLike<number>): ErrorStats {
  if (out.length !== ref.length) throw new RangeError(`errorStats: lengths differ (${out.length} vs ${ref.length})`);
  let scale = 0;
  let finite = 0;
  for (let i = 0; i < ref.length; i++)
    if (Number.isFinite(ref[i]!)) {
      scale += Math.abs(ref[i]!);
      finite++;
    }
  scale = finite ? scale / finite : 1;
  if (scale === 0) scale = 1;
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let mismatchedNonFinite = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = out[i]!;
    const b = ref[i]!;
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      if (!(Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b)))) {
        mismatchedNonFinite++;
        worst = i;
      }
      continue;
    }
    const d = Math.abs(a - b);
    if (d > maxAbs) {
      maxAbs = d;
      if (mismatchedNonFinite === 0) worst = i;
    }
    maxRel = Math.max(maxRel, d / (Math.abs(b) + scale));
  }
  return { maxAbs, maxRel, worst, mismatchedNonFinite };
}

/** The largest finite |a[i]| (0 when none). */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** The tolerance rule: factor × (naive float32 error) + floor. */
export function derivedTolerance(naive: ArrayLike<number>, ref: ArrayLike<number>, factor = 4, floor = 0): number {
  return factor * errorStats(naive, ref).maxAbs + floor;
}

/** Unit roundoff of each dtype the kernels read. */
export const EPS = { float32: 2 ** -24, bfloat16: 2 ** -8, float16: 2 ** -11 } as const;

/** Rounds like float32 arithmetic: pass as `round` to a reference for its naive run. */
export const f32 = Math.fround;
/** No rounding: the float64 reference itself. */
export const f64 = (x: number): number => x;
export type Round = (x: number) => number;

/** Fills a host array with a value no kernel produces by accident (NaN with a payload). */
export function poison<T extends Float32Array | Uint16Array | Int32Array | Uint8Array>(a: T): T {
  if (a instanceof Float32Array) new Uint32Array(a.buffer, a.byteOffset, a.length).fill(0x7fc0dead);
  else if (a instanceof Uint16Array) a.fill(0x7fbb);
  else a.fill(0x5a as never);
  return a;
}

export function isPoison(x: number): boolean {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0] === 0x7fc0dead;
}
