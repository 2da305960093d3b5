import { Foundation1764140000000 } from './1764140000000-Foundation';

/** Every migration, in order. Never edit one that has landed: add a new one. */
export const MIGRATIONS = [Foundation1764140000000];
