import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // tests/gpu/ are node:test files, compiled by tsc and run with node --test on a GPU machine.
    exclude: [...configDefaults.exclude, 'tests/gpu/**'],
    // Native addons and worker threads: one process per file.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['tests/helpers/setup.ts'],
  },
});
