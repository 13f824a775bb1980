/**
 * Central finite differences of a float64 function, for checking analytic
 * gradients (the references' and, through them, the kernels').
 */

/** d f / d x[i] by central differences with step h (relative to |x[i]|). */
export function partial(f: (x: Float64Array) => number, x: Float64Array, i: number, h = 1e-6): number {
  const step = h * Math.max(1, Math.abs(x[i]!));
  const saved = x[i]!;
  x[i] = saved + step;
  const up = f(x);
  x[i] = saved - step;
  const down = f(x);
  x[i] = saved;
  return (up - down) / (2 * step);
}

/** The full gradient (n evaluations of f twice): for small inputs only. */
export function gradient(f: (x: Float64Array) => number, x: ArrayLike<number>, h = 1e-6): Float64Array {
  const v = Float64Array.from(x);
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) g[i] = partial(f, v, i, h);
  return g;
}
