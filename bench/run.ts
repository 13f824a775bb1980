/** `rlhf-kernels bench`: the benchmark runner (suites register in bench/suites.ts). */
export async function runBench(args: string[]): Promise<number> {
  console.log('bench: no suite is registered yet');
  return 0;
}
