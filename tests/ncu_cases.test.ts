// bench/gpu/ncu_cases.ts: device time per case from an ncu CSV, cut at the
// marker kernels device_time.ts launches before each case.
import { describe, expect, it } from 'vitest';
import { parseNcu, perCase } from '../bench/gpu/ncu_cases.js';

const HEAD = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"';
const row = (id: number, kernel: string, value: string, unit = 'ns') =>
  `"${id}","1","node","h","${kernel}","1","7","(256, 1, 1)","(8, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","${unit}","${value}"`;

describe('ncu_cases', () => {
  it('sums each case between markers, in any unit, ignoring setup before the first marker', () => {
    const csv = [
      '==PROF== Connected to process 1', HEAD,
      row(0, 'probeKernel(int *)', '2,304'),
      row(1, 'unnamed>::chunkSums(const float *, long, bool, float *)', '3,000'),
      row(2, 'unnamed>::finalSum(const float *, long, float *)', '2,000'),
      row(3, 'void unnamed>::gaeKernel<1>(GaeParams, int, long)', '19,100'),
      row(4, 'void unnamed>::gaeKernel<1>(GaeParams, int, long)', '18.9', 'usecond'),
      row(5, 'unnamed>::chunkSums(const float *, long, bool, float *)', '3,000'),
      row(6, 'unnamed>::finalSum(const float *, long, float *)', '2,000'),
      row(7, 'unnamed>::whitenStatsKernel(WhitenParams, long, Moments *)', '7,500'),
      row(8, 'unnamed>::whitenApplyKernel(WhitenParams, const Moments *, int, bool)', '0.012', 'msecond'),
    ].join('\n');
    const launches = parseNcu(csv);
    expect(launches).toHaveLength(9);
    expect(launches[4]!.ns).toBeCloseTo(18900, 6);
    expect(perCase(launches)).toEqual([38000, 19500]);
  });

  it('says what is missing from a file that is not ncu CSV', () => {
    expect(() => parseNcu('==ERROR== no kernels were profiled')).toThrow(/no ncu CSV header/);
    expect(() => parseNcu(`${HEAD.replace('"Metric Unit",', '')}\n`)).toThrow(/no column Metric Unit/);
  });
});
