// One base seed per test file, printed so that a failure can be replayed
// with RK_SEED=<seed> (each new Rng steps from it in creation order).
const seed = process.env.RK_SEED ?? String((Math.random() * 2 ** 32) >>> 0);
process.env.RK_SEED = seed;
console.log(`RK_SEED=${seed}`);
