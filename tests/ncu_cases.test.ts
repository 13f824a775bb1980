// bench/gpu/ncu_cases.ts: device time per case from an ncu CSV, cut at the
// marker kernels device_time.ts launches before each case.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CALLS_PER_CASE } from '../bench/gpu/device_time.js';
import { FAMILY_TESTS, parseNcu, perCase, testsOf, timesByName, variantTable, winners } from '../bench/gpu/ncu_cases.js';

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

  it('sets the cases of each variant beside this build, by name, and says which variant left no profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rk-ncu-'));
    try {
      const marker = (id: number) => [row(id, 'unnamed>::chunkSums(const float *, long, bool, float *)', '3,000'), row(id + 1, 'unnamed>::finalSum(const float *, long, float *)', '2,000')];
      const log = (...names: string[]) => names.map((n) => `device_time: ${n}: 20.0 us per call, 20 queued then one synchronize`).join('\n');
      const per = (us: number) => String(us * CALLS_PER_CASE * 1000);  // ns in all, for `us` per call
      // This build: three cases; the variant: the second and third only (its own order and subset).
      writeFileSync(join(dir, 'this.log'), log('gae A', 'gae B', 'ppo C'));
      writeFileSync(join(dir, 'this.csv'), [HEAD, ...marker(0), row(2, 'gaeKernel', per(10)), ...marker(3), row(5, 'gaeKernel', per(40)), ...marker(6), row(8, 'ppoKernel', per(30))].join('\n'));
      writeFileSync(join(dir, 'fast.log'), log('gae B', 'ppo C'));
      writeFileSync(join(dir, 'fast.csv'), [HEAD, ...marker(0), row(2, 'gaeKernel', per(20)), ...marker(3), row(5, 'ppoKernel', per(40))].join('\n'));
      writeFileSync(join(dir, 'list.txt'), '# comment\nfast  ^(gae|ppo)  RK_GAE_ITEMS=16 RK_GAE_THREADS=256\n\nbroken ^gae RK_PREFETCH=0\n');
      const ours = timesByName(join(dir, 'this.log'), join(dir, 'this.csv'));
      expect([...ours.keys()]).toEqual(['gae A', 'gae B', 'ppo C']);
      const rows = variantTable(join(dir, 'list.txt'), dir, ours).filter((l) => l.startsWith('| fast') || l.startsWith('| broken'));
      expect(rows).toEqual([
        '| fast | RK_GAE_ITEMS=16 RK_GAE_THREADS=256 | gae B | 40.0 | 20.0 | 2.00× |',
        '| fast | RK_GAE_ITEMS=16 RK_GAE_THREADS=256 | ppo C | 30.0 | 40.0 | 0.75× |',
        expect.stringMatching(/^\| broken \| RK_PREFETCH=0 \| \(no profile: ENOENT/),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('knows the family and the GPU test file of every variant in scripts/gpu/variants.txt', () => {
    const names = readFileSync(join(import.meta.dirname, '..', 'scripts', 'gpu', 'variants.txt'), 'utf8')
      .split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((n) => n && !n.startsWith('#'));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(FAMILY_TESTS[name.split('-')[0]!], name).toBeDefined();
    for (const file of Object.values(FAMILY_TESTS).flat())
      expect(existsSync(join(import.meta.dirname, 'gpu', file.replace(/\.js$/, '.ts'))), file).toBe(true);
  });

  it('picks per family the variant with the best geometric mean, none that slows a case or gains too little', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rk-ncu-'));
    try {
      const log = (...names: string[]) => names.map((n) => `device_time: ${n}: 20.0 us per call, 20 queued then one synchronize`).join('\n');
      const per = (us: number) => String(us * CALLS_PER_CASE * 1000);
      // A profile of cases [name, µs per call], each after its marker.
      const profile = (name: string, cases: [string, number][]) => {
        writeFileSync(join(dir, `${name}.log`), log(...cases.map(([c]) => c)));
        writeFileSync(join(dir, `${name}.csv`), [HEAD, ...cases.flatMap(([, t], k) => [
          row(3 * k, 'unnamed>::chunkSums(const float *, long, bool, float *)', '3,000'),
          row(3 * k + 1, 'unnamed>::finalSum(const float *, long, float *)', '2,000'),
          row(3 * k + 2, 'someKernel', per(t)),
        ])].join('\n'));
      };
      profile('this', [['gae A', 100], ['gae B', 100], ['ppo C', 30], ['pref D', 6]]);
      profile('gae-twice', [['gae A', 50], ['gae B', 50]]);          // 2×: the gae winner
      profile('gae-mixed', [['gae A', 20], ['gae B', 103]]);         // 2.2× mean, but B 0.97×: out
      profile('gae-third', [['gae A', 80], ['gae B', 80]]);          // 1.25×: beaten
      profile('ppo-little', [['ppo C', 29.5]]);                      // 1.017×: below the 1.03× gain
      profile('other-fast', [['ppo C', 10]]);                        // no such family: out
      writeFileSync(join(dir, 'list.txt'), ['gae-twice ^gae RK_A=1', 'gae-mixed ^gae RK_A=2', 'gae-third ^gae RK_A=3',
        'ppo-little ^ppo RK_B=1', 'other-fast ^ppo RK_C=1', 'pref-gone ^pref RK_D=1'].join('\n'));
      const ours = timesByName(join(dir, 'this.log'), join(dir, 'this.csv'));
      const picked = winners(join(dir, 'list.txt'), dir, ours);
      expect(picked.map((w) => [w.family, w.name, w.knobs])).toEqual([['gae', 'gae-twice', ['RK_A=1']]]);
      expect(picked[0]!.speedup).toBeCloseTo(2, 6);
      expect(testsOf(picked[0]!)).toEqual(['advantages.test.js']);
      // A knob that other families share brings their tests along.
      expect(testsOf({ name: 'ppo-x', family: 'ppo', knobs: ['RK_PPO_LOADS=1', 'RK_ARRIVE_ACQ_REL=1'], speedup: 1.1 }))
        .toEqual(['ppo.test.js', 'ppo_options.test.js', 'preference.test.js']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
