/**
 * What semantic memory learns and how it shapes a plan, as pure functions (no I/O, no clock).
 *
 * Learned items are keyed per user by what they are about:
 * - `tod:<term>` PREFERENCE: moves of tasks whose title has <term> to a time of day;
 * - `wd:<term>`  PREFERENCE: moves of such tasks to a weekday;
 * - `dur:<term>` PATTERN: how long such tasks took against their estimate.
 * An item holds its counts (`rule`), so more evidence only adds to them; it becomes `active` (and
 * shapes plans) once the evidence is consistent enough. Shaping never rewrites what the user stored:
 * it orders alternatives, chooses autoSchedule's slots and sizes the durations the planner proposes.
 */
import { localDayKeyMs, offsetMinutesAt, weekdayOfDayKey, wallTimeToInstantMs } from '../domain/time';
import { WEEKDAYS, type Weekday } from '../domain/types';
import { words } from './embedder';

export type MemoryKind = 'PREFERENCE' | 'PATTERN' | 'FACT';
export type TimeOfDay = 'MORNING' | 'AFTERNOON' | 'EVENING' | 'NIGHT';

/** Local wall-clock windows of the times of day, minutes after midnight [start, end). */
export const TIME_OF_DAY: Readonly<Record<TimeOfDay, readonly [number, number]>> = Object.freeze({
  MORNING: [5 * 60, 12 * 60],
  AFTERNOON: [12 * 60, 17 * 60],
  EVENING: [17 * 60, 22 * 60],
  NIGHT: [22 * 60, 29 * 60], // 22:00 to 05:00 the next morning
});
const PARTS = Object.keys(TIME_OF_DAY) as TimeOfDay[];

/** Evidence needed before a learned item shapes anything. */
export const MIN_SUPPORT = 3;
/** Share of the evidence the preferred window must have. */
export const MIN_SHARE = 0.6;
/** A duration pattern matters when tasks take at least this much more or less than estimated. */
export const MIN_RATIO_DEVIATION = 0.15;
/** Evidence kept per item (operation ids, newest last). */
export const MAX_EVIDENCE = 100;

export interface TimeOfDayRule {
  type: 'tod';
  term: string;
  counts: Record<TimeOfDay, number>;
}
export interface WeekdayRule {
  type: 'wd';
  term: string;
  /** Moves per weekday, Monday first. */
  counts: number[];
}
export interface DurationRule {
  type: 'dur';
  term: string;
  n: number;
  /** Sum of ln(actual / estimate). */
  sumLog: number;
}
export type LearnedRule = TimeOfDayRule | WeekdayRule | DurationRule;

/** A learned item as the write path loads it (no embedding, no evidence). */
export interface ShapingItem {
  id: string;
  kind: MemoryKind;
  text: string;
  confidence: number;
  rule: LearnedRule;
  expiresAt: Date | null;
}

const STOP = new Set(
  'the and for with from into onto this that then than your my our their a an to of in on at by or be is are was were do did done task tasks todo with about after before'.split(
    ' ',
  ),
);

/** The terms of a title that learning keys on: words of 3+ letters, no stop words, plural "s" dropped. */
export function termsOf(title: string): string[] {
  const out = new Set<string>();
  for (const w of words(title)) {
    if (w.length < 3 || STOP.has(w) || /^\d+$/.test(w)) continue;
    out.add(w.length > 3 && w.endsWith('s') && !w.endsWith('ss') ? w.slice(0, -1) : w);
  }
  return [...out].slice(0, 8);
}

/** Local minutes after midnight of an instant. */
export function localMinute(ms: number, tz: string): number {
  const local = ms + offsetMinutesAt(ms, tz) * 60_000;
  return Math.floor((((local % 86_400_000) + 86_400_000) % 86_400_000) / 60_000);
}

export function timeOfDayOf(ms: number, tz: string): TimeOfDay {
  const m = localMinute(ms, tz);
  for (const p of PARTS) {
    const [s, e] = TIME_OF_DAY[p];
    if ((m >= s && m < e) || (e > 1440 && m < e - 1440)) return p;
  }
  return 'NIGHT';
}

export function weekdayIndexOf(ms: number, tz: string): number {
  return WEEKDAYS.indexOf(weekdayOfDayKey(localDayKeyMs(ms, tz)));
}

const hhmm = (m: number) =>
  `${String(Math.floor(m / 60) % 24).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
const titleCase = (w: Weekday) => w[0] + w.slice(1).toLowerCase();

/** Folds one observation into a rule (a new rule when `rule` is null). */
export function observe(
  rule: LearnedRule | null,
  o:
    | { type: 'tod'; term: string; part: TimeOfDay }
    | { type: 'wd'; term: string; weekday: number }
    | { type: 'dur'; term: string; ratio: number },
): LearnedRule {
  switch (o.type) {
    case 'tod': {
      const r =
        rule?.type === 'tod'
          ? { ...rule, counts: { ...rule.counts } }
          : {
              type: 'tod' as const,
              term: o.term,
              counts: { MORNING: 0, AFTERNOON: 0, EVENING: 0, NIGHT: 0 },
            };
      r.counts[o.part] += 1;
      return r;
    }
    case 'wd': {
      const r =
        rule?.type === 'wd'
          ? { ...rule, counts: [...rule.counts] }
          : { type: 'wd' as const, term: o.term, counts: [0, 0, 0, 0, 0, 0, 0] };
      r.counts[o.weekday] = (r.counts[o.weekday] ?? 0) + 1;
      return r;
    }
    case 'dur': {
      const r = rule?.type === 'dur' ? { ...rule } : { type: 'dur' as const, term: o.term, n: 0, sumLog: 0 };
      r.n += 1;
      r.sumLog += Math.log(Math.min(8, Math.max(0.125, o.ratio)));
      return r;
    }
  }
}

/** What a rule currently says: its kind, text, confidence and whether it shapes plans. */
export function assess(rule: LearnedRule): {
  kind: MemoryKind;
  text: string;
  confidence: number;
  active: boolean;
} {
  switch (rule.type) {
    case 'tod': {
      const total = PARTS.reduce((s, p) => s + rule.counts[p], 0);
      const best = PARTS.reduce((a, b) => (rule.counts[b] > rule.counts[a] ? b : a), PARTS[0]!);
      const n = rule.counts[best];
      const [s, e] = TIME_OF_DAY[best];
      return {
        kind: 'PREFERENCE',
        text: `Prefers "${rule.term}" tasks in the ${best.toLowerCase()} (${hhmm(s)}–${hhmm(e)}), from ${n} of ${total} moves`,
        confidence: round3(n / (total + 1)),
        active: n >= MIN_SUPPORT && n / total >= MIN_SHARE,
      };
    }
    case 'wd': {
      const total = rule.counts.reduce((s, x) => s + x, 0);
      let best = 0;
      for (let i = 1; i < 7; i++) if ((rule.counts[i] ?? 0) > (rule.counts[best] ?? 0)) best = i;
      const n = rule.counts[best] ?? 0;
      return {
        kind: 'PREFERENCE',
        text: `Prefers "${rule.term}" tasks on ${titleCase(WEEKDAYS[best]!)}s, from ${n} of ${total} moves`,
        confidence: round3(n / (total + 1)),
        active: n >= MIN_SUPPORT && n / total >= MIN_SHARE,
      };
    }
    case 'dur': {
      const ratio = ratioOf(rule);
      return {
        kind: 'PATTERN',
        text: `"${rule.term}" tasks take about ${ratio.toFixed(1)}× their estimate, from ${rule.n} completions`,
        confidence: round3(rule.n / (rule.n + 2)),
        active: rule.n >= MIN_SUPPORT && Math.abs(ratio - 1) >= MIN_RATIO_DEVIATION,
      };
    }
  }
}

export function ratioOf(rule: DurationRule): number {
  return rule.n === 0 ? 1 : Math.exp(rule.sumLog / rule.n);
}

function round3(x: number): number {
  return Math.round(Math.min(1, Math.max(0, x)) * 1000) / 1000;
}

/** The learned key of a rule. */
export function keyOf(rule: { type: LearnedRule['type']; term: string }): string {
  return `${rule.type}:${rule.term}`;
}

// ------------------------------------------------------------------ shaping (decide step)

/** The active items of a user as the decide step sees them, with lookups by task title. */
export class Shaping {
  private readonly byTerm = new Map<string, ShapingItem[]>();

  constructor(readonly items: readonly ShapingItem[]) {
    for (const it of items) {
      const list = this.byTerm.get(it.rule.term) ?? [];
      list.push(it);
      this.byTerm.set(it.rule.term, list);
    }
  }

  get empty(): boolean {
    return this.items.length === 0;
  }

  private matching(title: string, type: LearnedRule['type']): ShapingItem | null {
    let best: ShapingItem | null = null;
    for (const t of termsOf(title)) {
      for (const it of this.byTerm.get(t) ?? []) {
        if (it.rule.type === type && (!best || it.confidence > best.confidence)) best = it;
      }
    }
    return best;
  }

  /** The preferences that apply to a task with this title (time of day, weekday). */
  preferencesFor(title: string): { tod: ShapingItem | null; wd: ShapingItem | null } {
    return { tod: this.matching(title, 'tod'), wd: this.matching(title, 'wd') };
  }

  /** The duration pattern that applies to a task with this title. */
  patternFor(title: string): ShapingItem | null {
    return this.matching(title, 'dur');
  }

  /**
   * The preference items a slot [start, end) satisfies for a task with this title (empty: none
   * applies, or the slot is outside every preferred window). Both must hold when both exist.
   */
  satisfied(title: string, start: number, end: number, tz: string): ShapingItem[] {
    const { tod, wd } = this.preferencesFor(title);
    if (!tod && !wd) return [];
    const used: ShapingItem[] = [];
    if (tod) {
      if (!inPart(preferredPart(tod.rule as TimeOfDayRule), start, end, tz)) return [];
      used.push(tod);
    }
    if (wd) {
      if (weekdayIndexOf(start, tz) !== preferredWeekday(wd.rule as WeekdayRule)) return [];
      used.push(wd);
    }
    return used;
  }

  /** The preferred local windows of a day for a task with this title (null: no preference applies). */
  preferredWindows(title: string, dayKey: string, tz: string): Array<[number, number]> | null {
    const { tod, wd } = this.preferencesFor(title);
    if (!tod && !wd) return null;
    if (wd && WEEKDAYS.indexOf(weekdayOfDayKey(dayKey)) !== preferredWeekday(wd.rule as WeekdayRule))
      return [];
    if (!tod) return [[wallTimeToInstantMs(dayKey, 0, tz), wallTimeToInstantMs(dayKey, 1440, tz)]];
    const [s, e] = TIME_OF_DAY[preferredPart(tod.rule as TimeOfDayRule)];
    if (e <= 1440) return [[wallTimeToInstantMs(dayKey, s, tz), wallTimeToInstantMs(dayKey, e, tz)]];
    return [
      [wallTimeToInstantMs(dayKey, 0, tz), wallTimeToInstantMs(dayKey, e - 1440, tz)],
      [wallTimeToInstantMs(dayKey, s, tz), wallTimeToInstantMs(dayKey, 1440, tz)],
    ];
  }

  /**
   * The duration (minutes) to propose for a task with this title whose basis (estimate, or current
   * slot) is `minutes`, and the pattern behind it; null when no pattern applies.
   */
  adjustedMinutes(title: string, minutes: number): { minutes: number; item: ShapingItem } | null {
    const item = this.patternFor(title);
    if (!item) return null;
    const adjusted = Math.min(
      1440,
      Math.max(5, Math.round((minutes * ratioOf(item.rule as DurationRule)) / 5) * 5),
    );
    return adjusted === minutes ? null : { minutes: adjusted, item };
  }
}

export function preferredPart(rule: TimeOfDayRule): TimeOfDay {
  return PARTS.reduce((a, b) => (rule.counts[b] > rule.counts[a] ? b : a), PARTS[0]!);
}

export function preferredWeekday(rule: WeekdayRule): number {
  let best = 0;
  for (let i = 1; i < 7; i++) if ((rule.counts[i] ?? 0) > (rule.counts[best] ?? 0)) best = i;
  return best;
}

/** Whether [start, end) starts in the time of day and ends by the window's end. */
function inPart(part: TimeOfDay, start: number, end: number, tz: string): boolean {
  const [s, e] = TIME_OF_DAY[part];
  let m = localMinute(start, tz);
  if (e > 1440 && m < e - 1440) m += 1440;
  if (m < s || m >= e) return false;
  return m + (end - start) / 60_000 <= e;
}
