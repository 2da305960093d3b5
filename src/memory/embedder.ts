/**
 * Embeddings for semantic memory, behind a small interface so that a hosted provider can be
 * plugged in by configuration (PLANNER_EMBEDDER) without touching the store, the learner or recall.
 *
 * The default is {@link HashedNgramEmbedder}: no model, no network, no download. Word unigrams,
 * word bigrams and character trigrams of each word are hashed (FNV-1a) into a fixed number of
 * signed buckets and the vector is scaled to unit length, so cosine similarity is a dot product.
 * It captures shared words and spelling variants ("gym" ~ "gym session" ~ "gyms"), not synonyms;
 * at a few hundred short items per user that is what recall needs. (Packages that ship a sentence
 * model inside them were weighed: the ones available download their weights from a model hub on
 * first use, which a planner that must start offline cannot rely on.)
 */

/** Turns texts into unit-length vectors of `dimensions` numbers. */
export interface Embedder {
  /** Identifies the model: vectors of different embedders are not comparable. */
  readonly name: string;
  readonly dimensions: number;
  /** One vector per text, in order. May do I/O (a hosted provider); the local one does none. */
  embed(texts: readonly string[]): Promise<number[][]>;
}

/** The embedders that configuration can name (PLANNER_EMBEDDER). */
export const EMBEDDERS = ['local'] as const;
export type EmbedderName = (typeof EMBEDDERS)[number];

/** Default dimensions of the local embedder (1 KiB per vector as real[]). */
export const LOCAL_DIMENSIONS = 256;

/** Lower-cased words (letters and digits of any script). */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** 32-bit FNV-1a. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Hashed word and character n-grams: deterministic, offline, pure. */
export class HashedNgramEmbedder implements Embedder {
  readonly name = 'local-hashed-ngrams-v1';

  constructor(readonly dimensions: number = LOCAL_DIMENSIONS) {}

  /** The vector of one text, synchronously (pure). */
  embedOne(text: string): number[] {
    const v = new Float64Array(this.dimensions);
    const add = (feature: string, weight: number): void => {
      const h = fnv1a(feature);
      v[h % this.dimensions]! += h & 0x80000000 ? -weight : weight;
    };
    const ws = words(text);
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      add(`w:${w}`, 1);
      if (i + 1 < ws.length) add(`b:${w} ${ws[i + 1]}`, 0.7);
      const padded = `#${w}#`;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.5);
    }
    let norm = 0;
    for (const x of v) norm += x * x;
    norm = Math.sqrt(norm);
    // Rounded to 6 decimals: the real[] column keeps ~7 significant digits anyway.
    return Array.from(v, (x) => (norm === 0 ? 0 : Math.round((x / norm) * 1e6) / 1e6));
  }

  embed(texts: readonly string[]): Promise<number[][]> {
    return Promise.resolve(texts.map((t) => this.embedOne(t)));
  }
}

/** Cosine similarity of two unit vectors (their dot product); 0 when the lengths differ. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * The embedder a configuration names. A hosted provider is added here (its endpoint and key read
 * by src/config) and selected with PLANNER_EMBEDDER; stored vectors must then be re-embedded.
 */
export function createEmbedder(name: EmbedderName = 'local'): Embedder {
  switch (name) {
    case 'local':
      return new HashedNgramEmbedder();
  }
}
