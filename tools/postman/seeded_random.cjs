// Loaded with `node --require` by build_collection.py: Postman's converter draws example
// values with Math.random, so a fixed seed (mulberry32) makes a rebuild of the same
// document identical and the committed collection's diffs show only what changed.
let seed = 20240601;
Math.random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
