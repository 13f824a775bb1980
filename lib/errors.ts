/**
 * Errors thrown by rlhf-kernels.
 *
 * - `TypeError`: an argument of the wrong type or dtype.
 * - `RangeError`: a wrong shape, or a value or option out of range.
 * - {@link KernelError}: the backend failed; `code` says how.
 *
 * A bad input value that only a running kernel can see (a target id outside
 * the vocabulary on cuda, checked on the device) is both: a `RangeError`
 * with `code` 'EBADINPUT' that is also `instanceof KernelError`, raised at
 * the next read or synchronize of its device. (DESIGN.md names it a
 * RangeError where it describes the op and a KernelError where it describes
 * the stream; a catch written for either sees it.)
 *
 * Every message starts with the op or function name, names the argument,
 * what was expected and what came.
 */

/** Codes carried by {@link KernelError}. */
export type KernelErrorCode =
  | 'ENODEVICE' // the device asked for is unavailable (why is in the message and in info())
  | 'EOOM' // out of device memory
  | 'ECUDA' // a CUDA runtime call or kernel failed
  | 'EDISPOSED' // a tensor was used after dispose()
  | 'ELOAD' // the native addon could not be loaded
  | 'EBADINPUT' // a running kernel found a bad input value; the error is a RangeError too
  | 'EINTERNAL'; // a bug in rlhf-kernels: please report it

/**
 * A backend failure: no device, out of memory, a driver error. Also matches
 * (`instanceof`) the RangeError a running kernel raises for a bad input
 * value, whose `code` is 'EBADINPUT'.
 */
export class KernelError extends Error {
  readonly code: KernelErrorCode;
  constructor(message: string, code: KernelErrorCode) {
    super(message);
    this.name = 'KernelError';
    this.code = code;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    return this === KernelError && value instanceof RangeError && (value as { code?: unknown }).code === 'EBADINPUT';
  }
}

/** An options-like object's keys must be among `known`: a misspelt key is a RangeError, not a silent default. */
export function expectKeys(where: string, what: string, value: object, known: readonly string[]): void {
  for (const key of Object.keys(value))
    if (!known.includes(key)) throw new RangeError(`${where}: ${what} expected keys among ${known.join(', ')}, got ${describe(key)}`);
}

/** "a" or "an" before `word` (an int32, a uint8, an Int32Array, a Uint8Array). */
export function article(word: string): string {
  return /^[aeio]/i.test(word) ? 'an' : 'a';
}

/** Formats a value for an error message: short, and says its kind. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (value instanceof DataView) return `a DataView of ${value.byteLength} bytes`;
  if (ArrayBuffer.isView(value)) return `${article(value.constructor.name)} ${value.constructor.name} of length ${(value as unknown as ArrayLike<number>).length}`;
  if (typeof value === 'function') return 'a function';
  const name = (value as object).constructor?.name;
  const text = (value as { toString?: () => string }).toString?.();
  if (text && text !== '[object Object]') return text;
  return name && name !== 'Object' ? `${article(name)} ${name}` : 'an object';
}
