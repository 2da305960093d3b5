/**
 * Time-zone helpers for the planner's pure domain code.
 *
 * Every computation is done on instants (epoch milliseconds / Date) and IANA zones through luxon, never
 * in the process's local zone. Local wall-clock times are converted with explicit rules:
 * - a wall time that does not exist (spring-forward gap) maps to the first existing instant after it,
 *   i.e. the transition instant;
 * - an ambiguous wall time (fall-back overlap) maps to its earlier instant (the earlier offset).
 */
import { DateTime, IANAZone } from 'luxon';
import { WEEKDAYS, type LocalInterval, type UserSettings, type Weekday } from './types';

/** A half-open interval of instants [start, end). */
export interface TimeWindow {
  start: Date;
  end: Date;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const HHMM_RE = /^([01]\d|2[0-4]):([0-5]\d)$/;
const DAY_KEY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

const zoneCache = new Map<string, IANAZone>();

/** Returns the luxon zone for an IANA name, throwing a RangeError for an unknown zone. */
function zoneOf(tz: string): IANAZone {
  let zone = zoneCache.get(tz);
  if (!zone) {
    if (!isValidTimeZone(tz)) throw new RangeError(`Unknown time zone: ${tz}`);
    zone = IANAZone.create(tz);
    zoneCache.set(tz, zone);
  }
  return zone;
}

/**
 * True when `tz` is an IANA time-zone name known to the runtime (e.g. "Europe/Berlin", "UTC").
 * Fixed offsets such as "+01:00" and empty strings are rejected.
 */
export function isValidTimeZone(tz: string): boolean {
  return typeof tz === 'string' && tz.length > 0 && IANAZone.isValidZone(tz);
}

/** Per zone: hour bucket -> offset, for hours without a transition inside (offset lookups are costly). */
const hourOffsetCache = new Map<string, Map<number, number>>();
const HOUR_CACHE_LIMIT = 200_000;

/** The offset of `tz` from UTC, in minutes, at the instant `ms` (epoch milliseconds). */
export function offsetMinutesAt(ms: number, tz: string): number {
  let cache = hourOffsetCache.get(tz);
  if (!cache) {
    cache = new Map();
    hourOffsetCache.set(tz, cache);
  }
  const bucket = Math.floor(ms / HOUR_MS);
  const cached = cache.get(bucket);
  if (cached !== undefined) return cached;
  const zone = zoneOf(tz);
  const offset = zone.offset(ms);
  // Cache only when the whole hour has one offset (checked at both ends); DST switches bypass the cache.
  if (zone.offset(bucket * HOUR_MS) === offset && zone.offset((bucket + 1) * HOUR_MS - 1) === offset) {
    if (cache.size >= HOUR_CACHE_LIMIT) cache.clear();
    cache.set(bucket, offset);
  }
  return offset;
}

/**
 * Bounded memo tables for the pure calendar arithmetic below: the decide step asks for the same few
 * days, bounds and wall times again and again (per operation and across operations). Every entry is
 * a pure function of its key, so a cleared table only costs recomputation.
 */
const MEMO_LIMIT = 50_000;
function memoSet<K, V>(map: Map<K, V>, key: K, value: V): V {
  if (map.size >= MEMO_LIMIT) map.clear();
  map.set(key, value);
  return value;
}

/** UTC day number (floor(ms / DAY_MS)) -> 'yyyy-MM-dd'. */
const dateKeyMemo = new Map<number, string>();
/** 'yyyy-MM-dd' -> epoch ms of its 00:00 "as if UTC" (valid keys only). */
const dayKeyMemo = new Map<string, number>();
/** zone + day key + minutes -> instant (epoch ms). */
const wallTimeMemo = new Map<string, number>();

/** Formats a UTC-based epoch-ms value as 'yyyy-MM-dd' (its UTC calendar date). */
function utcDateKey(ms: number): string {
  const dayNo = Math.floor(ms / DAY_MS);
  const cached = dateKeyMemo.get(dayNo);
  if (cached !== undefined) return cached;
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const day = d.getUTCDate();
  const key = `${y}-${m < 10 ? '0' : ''}${m}-${day < 10 ? '0' : ''}${day}`;
  // Only days of the representable range: beyond it Date is invalid and the key is not a function of dayNo.
  return Number.isNaN(d.getTime()) ? key : memoSet(dateKeyMemo, dayNo, key);
}

/** Parses a 'yyyy-MM-dd' day key into the epoch ms of that date's 00:00 "as if UTC". */
function dayKeyToUtcMs(dayKey: string): number {
  const cached = dayKeyMemo.get(dayKey);
  if (cached !== undefined) return cached;
  const m = DAY_KEY_RE.exec(dayKey);
  if (!m) throw new RangeError(`Invalid day key: ${dayKey}`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (utcDateKey(ms) !== dayKey) throw new RangeError(`Invalid day key: ${dayKey}`);
  return memoSet(dayKeyMemo, dayKey, ms);
}

/** The local calendar day ('yyyy-MM-dd') of `instant` in the zone `tz`. */
export function localDayKey(instant: Date, tz: string): string {
  return localDayKeyMs(instant.getTime(), tz);
}

/** Same as {@link localDayKey} for an epoch-ms value. */
export function localDayKeyMs(ms: number, tz: string): string {
  return utcDateKey(ms + offsetMinutesAt(ms, tz) * MINUTE_MS);
}

/** The day key following `dayKey` in the calendar (zone independent). */
export function nextDayKey(dayKey: string): string {
  return utcDateKey(dayKeyToUtcMs(dayKey) + DAY_MS);
}

/** The day key `n` calendar days after (negative: before) `dayKey`. */
export function addDaysToKey(dayKey: string, n: number): string {
  return utcDateKey(dayKeyToUtcMs(dayKey) + n * DAY_MS);
}

/** Whole calendar days from day key `a` to day key `b` (positive when b is later). */
export function dayKeyDiff(a: string, b: string): number {
  return Math.round((dayKeyToUtcMs(b) - dayKeyToUtcMs(a)) / DAY_MS);
}

/** The weekday of a calendar day key (zone independent). */
export function weekdayOfDayKey(dayKey: string): Weekday {
  const utcDay = new Date(dayKeyToUtcMs(dayKey)).getUTCDay(); // 0 = Sunday
  return WEEKDAYS[(utcDay + 6) % 7];
}

/**
 * Parses a "HH:MM" 24-hour wall-clock string into minutes after midnight (0..1440); "24:00" is
 * accepted and means the end of the day. Returns null for anything else.
 */
export function parseHHMM(value: string): number | null {
  if (typeof value !== 'string') return null;
  const m = HHMM_RE.exec(value);
  if (!m) return null;
  const hours = Number(m[1]);
  const minutes = Number(m[2]);
  if (hours === 24 && minutes !== 0) return null;
  return hours * 60 + minutes;
}

/**
 * The instant (epoch ms) at which the local wall clock of `tz` shows `minutes` after midnight of `dayKey`.
 * Gap (nonexistent wall time): the first existing instant after it. Overlap (ambiguous): the earlier one.
 * `minutes` may be 1440, meaning the next local midnight.
 */
export function wallTimeToInstantMs(dayKey: string, minutes: number, tz: string): number {
  const memoKey = `${tz}|${dayKey}|${minutes}`;
  const cached = wallTimeMemo.get(memoKey);
  if (cached !== undefined) return cached;
  return memoSet(wallTimeMemo, memoKey, computeWallTimeToInstantMs(dayKey, minutes, tz));
}

function computeWallTimeToInstantMs(dayKey: string, minutes: number, tz: string): number {
  const zone = { offset: (ms: number): number => offsetMinutesAt(ms, tz) };
  const wall = dayKeyToUtcMs(dayKey) + minutes * MINUTE_MS;
  // Offsets in force a day before and a day after; at most one transition lies between them in practice.
  const before = zone.offset(wall - DAY_MS);
  const after = zone.offset(wall + DAY_MS);
  let best: number | null = null;
  for (const off of before === after ? [before] : [before, after]) {
    const candidate = wall - off * MINUTE_MS;
    if (zone.offset(candidate) === off && (best === null || candidate < best)) best = candidate;
  }
  if (best !== null) return best;
  // Also accept whatever offset is in force at the naive guess (covers zones with unusual histories).
  const guessOff = zone.offset(wall - zone.offset(wall) * MINUTE_MS);
  if (zone.offset(wall - guessOff * MINUTE_MS) === guessOff) return wall - guessOff * MINUTE_MS;
  // Gap: find the transition instant T in (wall - maxOff, wall - minOff] where the wall clock jumps past `wall`.
  let lo = wall - Math.max(before, after) * MINUTE_MS; // wall clock here is before `wall`
  let hi = wall - Math.min(before, after) * MINUTE_MS; // wall clock here is after `wall`
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const wallAtMid = mid + zone.offset(mid) * MINUTE_MS;
    if (wallAtMid >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The instants of local midnight of `dayKey` and of the next local midnight in `tz`. The day may be
 * 23 or 25 hours long around DST switches.
 */
export function localDayBounds(dayKey: string, tz: string): TimeWindow {
  const b = localDayBoundsMs(dayKey, tz);
  return { start: new Date(b.start), end: new Date(b.end) };
}

/** Same as {@link localDayBounds}, in epoch milliseconds. */
export function localDayBoundsMs(dayKey: string, tz: string): { start: number; end: number } {
  return { start: wallTimeToInstantMs(dayKey, 0, tz), end: wallTimeToInstantMs(nextDayKey(dayKey), 0, tz) };
}

/** Sorted, merged (epoch-ms) intervals of a list of local intervals on one day; empty ones are dropped. */
function windowsMs(dayKey: string, intervals: readonly LocalInterval[], tz: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const interval of intervals) {
    const s = parseHHMM(interval.start);
    const e = parseHHMM(interval.end);
    if (s === null || e === null || s >= e || s >= 1440) continue;
    const start = wallTimeToInstantMs(dayKey, s, tz);
    const end = wallTimeToInstantMs(dayKey, e, tz);
    if (end > start) out.push([start, end]);
  }
  out.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const w of out) {
    const last = merged[merged.length - 1];
    if (last && w[0] <= last[1]) last[1] = Math.max(last[1], w[1]);
    else merged.push([w[0], w[1]]);
  }
  return merged;
}

/**
 * The instants of the working intervals of the local day `dayKey` in the user's zone, sorted and merged.
 * "HH:MM" is local wall-clock time; "24:00" as an end is the next local midnight. Intervals lying entirely
 * in a DST gap disappear; otherwise the DST rules of this module apply.
 */
export function workingWindowsForLocalDay(dayKey: string, settings: UserSettings): TimeWindow[] {
  return workingWindowsMs(dayKey, settings).map(([s, e]) => ({ start: new Date(s), end: new Date(e) }));
}

/** Same as {@link workingWindowsForLocalDay}, as [startMs, endMs] pairs. */
export function workingWindowsMs(dayKey: string, settings: UserSettings): Array<[number, number]> {
  const intervals = settings.workingHours[weekdayOfDayKey(dayKey)] ?? [];
  return windowsMs(dayKey, intervals, settings.timeZone);
}

/**
 * The local day keys (in `tz`) that the half-open interval [start, end) intersects, in order.
 * Empty when end <= start.
 */
export function localDaysTouched(start: Date, end: Date, tz: string): string[] {
  return localDaysTouchedMs(start.getTime(), end.getTime(), tz);
}

/** Same as {@link localDaysTouched} for epoch-ms values. */
export function localDaysTouchedMs(start: number, end: number, tz: string): string[] {
  if (!(end > start)) return [];
  const first = localDayKeyMs(start, tz);
  const last = localDayKeyMs(end - 1, tz);
  const days: string[] = [];
  for (let day = first; day <= last; day = nextDayKey(day)) {
    // A calendar day can be skipped entirely by a zone change (e.g. Pacific/Apia 2011-12-30).
    if (day !== first && day !== last) {
      const b = localDayBoundsMs(day, tz);
      if (b.end <= b.start) continue;
    }
    days.push(day);
  }
  return days;
}

/** Minutes of [start, end) that fall inside the local day `dayKey` of `tz` (0 when they do not meet). */
export function minutesInLocalDay(start: Date, end: Date, dayKey: string, tz: string): number {
  const b = localDayBoundsMs(dayKey, tz);
  return overlapMs(start.getTime(), end.getTime(), b.start, b.end) / MINUTE_MS;
}

/** Length in ms of the intersection of [a0, a1) and [b0, b1). */
export function overlapMs(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));
}

/**
 * Validates a working-hours value: an object with exactly the seven weekday keys, each an array of
 * { start, end } "HH:MM" strings with start < end ("24:00" allowed only as end), sorted and not
 * overlapping (touching is fine). Returns an error message naming the offending field, or null.
 */
export function validateWorkingHours(wh: unknown): string | null {
  if (typeof wh !== 'object' || wh === null || Array.isArray(wh)) {
    return 'workingHours must be an object keyed by weekday';
  }
  const record = wh as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(WEEKDAYS as readonly string[]).includes(key)) return `workingHours has an unknown weekday "${key}"`;
  }
  for (const day of WEEKDAYS) {
    const list = record[day];
    if (!Array.isArray(list)) return `workingHours.${day} must be a list of intervals`;
    let previousEnd = -1;
    for (let i = 0; i < list.length; i++) {
      const path = `workingHours.${day}[${i}]`;
      const item: unknown = list[i];
      if (typeof item !== 'object' || item === null) return `${path} must be an object { start, end }`;
      const { start, end } = item as { start?: unknown; end?: unknown };
      const s = typeof start === 'string' ? parseHHMM(start) : null;
      const e = typeof end === 'string' ? parseHHMM(end) : null;
      if (s === null || s === 1440) return `${path}.start must be a time "HH:MM" between 00:00 and 23:59`;
      if (e === null) return `${path}.end must be a time "HH:MM" between 00:01 and 24:00`;
      if (s >= e) return `${path} must start before it ends`;
      if (s < previousEnd) return `${path} overlaps or precedes the previous interval of ${day}`;
      previousEnd = e;
    }
  }
  return null;
}

/**
 * A per-call memo of day bounds and working windows for one user's settings. Pure and cheap to create;
 * do not keep it across changes of the settings.
 */
export class DayCalendar {
  private readonly bounds = new Map<string, { start: number; end: number }>();
  private readonly windows = new Map<string, Array<[number, number]>>();

  /** Creates a calendar for the given settings. */
  constructor(readonly settings: UserSettings) {}

  /** The user's time zone. */
  get tz(): string {
    return this.settings.timeZone;
  }

  /** Day key of an instant in the user's zone. */
  dayKey(ms: number): string {
    return localDayKeyMs(ms, this.settings.timeZone);
  }

  /** Local day bounds in epoch ms (memoised). */
  dayBounds(dayKey: string): { start: number; end: number } {
    let b = this.bounds.get(dayKey);
    if (!b) {
      b = localDayBoundsMs(dayKey, this.settings.timeZone);
      this.bounds.set(dayKey, b);
    }
    return b;
  }

  /** Working windows of a local day in epoch ms (memoised). */
  workingWindows(dayKey: string): Array<[number, number]> {
    let w = this.windows.get(dayKey);
    if (!w) {
      w = workingWindowsMs(dayKey, this.settings);
      this.windows.set(dayKey, w);
    }
    return w;
  }

  /** Day keys touched by [start, end). */
  daysTouched(start: number, end: number): string[] {
    return localDaysTouchedMs(start, end, this.settings.timeZone);
  }
}

/**
 * The parts of `windows` (sorted, disjoint [start, end) pairs in ms) clipped to [lo, hi) that no interval of
 * `busy` covers. `busy` need not be sorted or disjoint. Result sorted, non-empty gaps only.
 */
export function freeGaps(
  windows: ReadonlyArray<readonly [number, number]>,
  busy: ReadonlyArray<readonly [number, number]>,
  lo: number,
  hi: number,
): Array<[number, number]> {
  const sortedBusy = busy.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const gaps: Array<[number, number]> = [];
  for (const [ws, we] of windows) {
    let cursor = Math.max(ws, lo);
    const end = Math.min(we, hi);
    for (const [bs, be] of sortedBusy) {
      if (cursor >= end) break;
      if (be <= cursor) continue;
      if (bs >= end) break;
      if (bs > cursor) gaps.push([cursor, bs]);
      cursor = Math.max(cursor, be);
    }
    if (end > cursor) gaps.push([cursor, end]);
  }
  return gaps;
}

/** en-GB short weekday names by Date#getUTCDay (Sunday first) and short month names, as luxon spells them. */
const WEEKDAY_SHORT = Array.from({ length: 7 }, (_, i) =>
  DateTime.utc(2024, 1, 7 + i)
    .setLocale('en-GB')
    .toFormat('ccc'),
);
const MONTH_SHORT = Array.from({ length: 12 }, (_, i) =>
  DateTime.utc(2024, i + 1, 1)
    .setLocale('en-GB')
    .toFormat('LLL'),
);
const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

/**
 * The wall clock of `tz` at `ms`, as a Date whose UTC fields are the local ones; null when the
 * offset is not a whole number of minutes (historical local mean times: callers fall back to luxon).
 */
function wallClock(ms: number, tz: string): Date | null {
  const off = offsetMinutesAt(ms, tz);
  return Number.isInteger(off) ? new Date(ms + off * MINUTE_MS) : null;
}

/**
 * `ms` in `tz` as luxon's en-GB `toFormat('ccc d LLL HH:mm')` writes it ("Fri 4 Dec 17:00"), without
 * luxon's formatter (a table and the memoised offset: this runs for every alternative offered).
 */
export function formatLocalInstant(ms: number, tz: string): string {
  const w = wallClock(ms, tz);
  if (!w) return DateTime.fromMillis(ms, { zone: tz, locale: 'en-GB' }).toFormat('ccc d LLL HH:mm');
  return `${WEEKDAY_SHORT[w.getUTCDay()]} ${w.getUTCDate()} ${MONTH_SHORT[w.getUTCMonth()]} ${pad2(w.getUTCHours())}:${pad2(w.getUTCMinutes())}`;
}

/** "Tue 1 Dec 10:00–11:00" in `tz` ("24:00" for an end at the next local midnight). */
export function formatLocalSlot(start: number, end: number, tz: string): string {
  const s = wallClock(start, tz);
  const e = wallClock(end, tz);
  if (!s || !e) {
    const ls = DateTime.fromMillis(start, { zone: tz, locale: 'en-GB' });
    const le = DateTime.fromMillis(end, { zone: tz, locale: 'en-GB' });
    const endText =
      le.toISODate() !== ls.toISODate() && le.hour === 0 && le.minute === 0 ? '24:00' : le.toFormat('HH:mm');
    return `${ls.toFormat('ccc d LLL HH:mm')}–${endText}`;
  }
  const sameDay =
    s.getUTCFullYear() === e.getUTCFullYear() &&
    s.getUTCMonth() === e.getUTCMonth() &&
    s.getUTCDate() === e.getUTCDate();
  const endText =
    !sameDay && e.getUTCHours() === 0 && e.getUTCMinutes() === 0
      ? '24:00'
      : `${pad2(e.getUTCHours())}:${pad2(e.getUTCMinutes())}`;
  return `${formatLocalInstant(start, tz)}–${endText}`;
}
