/**
 * Mergeable latency histograms: fixed log-scale buckets shared by every instance, so two
 * histograms add bucket by bucket (in Postgres too) and quantiles come from the merged counts.
 *
 * Bucket i (0 ≤ i < BUCKETS-1) holds durations ≤ BOUNDS[i] ms; the last bucket holds the rest.
 * Bounds grow by 2^(1/4) (≈ 19 %) from 0.1 ms to about 105 s, so a quantile read from them is
 * within one bucket (< 19 % relative error); reports interpolate inside the bucket.
 */

/** Bucket upper bounds in ms (ascending). */
export const BOUNDS: readonly number[] = Object.freeze(
  Array.from({ length: 81 }, (_, i) => Math.round(0.1 * Math.pow(2, i / 4) * 1000) / 1000),
);
/** Number of buckets (the last one is the overflow). */
export const BUCKETS = BOUNDS.length + 1;

/** The bucket index of a duration in ms. */
export function bucketOf(ms: number): number {
  if (!(ms > BOUNDS[0]!)) return 0;
  // log2(ms / 0.1) * 4, then correct for rounding of the bounds.
  let i = Math.min(BOUNDS.length, Math.max(0, Math.ceil(Math.log2(ms / 0.1) * 4)));
  while (i > 0 && ms <= BOUNDS[i - 1]!) i--;
  while (i < BOUNDS.length && ms > BOUNDS[i]!) i++;
  return i;
}

/** An empty histogram (counts per bucket). */
export function emptyHistogram(): number[] {
  return new Array<number>(BUCKETS).fill(0);
}

/** Adds `b` into `a` (same bucket layout); returns `a`. */
export function mergeInto(a: number[], b: readonly number[]): number[] {
  for (let i = 0; i < BUCKETS; i++) a[i] = (a[i] ?? 0) + (b[i] ?? 0);
  return a;
}

/**
 * The q-quantile (0 < q ≤ 1) in ms, interpolated linearly inside its bucket; null when empty.
 * The overflow bucket answers its lower bound.
 */
export function quantile(h: readonly number[], q: number): number | null {
  const total = h.reduce((s, c) => s + c, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    const c = h[i] ?? 0;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lo = i === 0 ? 0 : BOUNDS[i - 1]!;
      if (i >= BOUNDS.length) return lo;
      const hi = BOUNDS[i]!;
      return lo + (hi - lo) * Math.min(1, Math.max(0, (rank - seen) / c));
    }
    seen += c;
  }
  return BOUNDS[BOUNDS.length - 1]!;
}
