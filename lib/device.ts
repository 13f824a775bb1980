/**
 * Devices: 'cpu', 'cuda' (= 'cuda:0') and 'cuda:N'. Each device has one
 * ordered stream; ops on it run in call order.
 */
import { addon } from './addon.js';
import { KernelError, describe } from './errors.js';

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** The native ordinal of a device: -1 for cpu, N for cuda:N. */
export function ordinalOf(device: Device): number {
  return device === 'cpu' ? -1 : device === 'cuda' ? 0 : Number(device.slice(5));
}

export function deviceOf(ordinal: number): Device {
  return ordinal < 0 ? 'cpu' : `cuda:${ordinal}`;
}

/** Checks a device string (TypeError/RangeError); returns its canonical form. */
export function parseDevice(value: unknown, where = 'device'): Device {
  if (typeof value !== 'string') throw new TypeError(`${where}: expected 'cpu', 'cuda' or 'cuda:N', got ${describe(value)}`);
  if (value === 'cpu') return 'cpu';
  if (value === 'cuda') return 'cuda:0';
  const m = /^cuda:(\d{1,4})$/.exec(value);
  if (!m) throw new RangeError(`${where}: expected 'cpu', 'cuda' or 'cuda:N', got ${describe(value)}`);
  return `cuda:${Number(m[1])}`;
}

function initialDevice(): Device {
  const env = process.env.RLHF_KERNELS_DEVICE;
  return env ? parseDevice(env, 'RLHF_KERNELS_DEVICE') : 'cpu';
}

let current: Device | undefined;

/**
 * The device new tensors go to when none is named: 'cpu' unless
 * setDefaultDevice() or $RLHF_KERNELS_DEVICE said otherwise.
 */
export function defaultDevice(): Device {
  return (current ??= initialDevice());
}

/**
 * Sets the default device. Asking for a cuda device that is unavailable
 * throws KernelError('ENODEVICE') with the reason; it never falls back.
 */
export function setDefaultDevice(device: Device): void {
  const d = parseDevice(device, 'setDefaultDevice');
  if (d !== 'cpu') requireCuda(ordinalOf(d));
  current = d;
}

/** Throws KernelError('ENODEVICE') unless cuda:ordinal can run ops here. */
export function requireCuda(ordinal: number): void {
  const cuda = addon().info().cuda;
  if (!cuda.available) throw new KernelError(`cuda:${ordinal} is unavailable: ${cuda.reason}`, 'ENODEVICE');
  if (ordinal >= cuda.devices.length)
    throw new KernelError(`cuda:${ordinal} does not exist: this host has ${cuda.devices.length} CUDA device(s)`, 'ENODEVICE');
}
