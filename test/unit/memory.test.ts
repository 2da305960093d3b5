/** Semantic memory's pure parts (issue 14): the local embedder, what is learned, and how it shapes proposals. */
import { expect } from 'chai';
import fc from 'fast-check';
import { proposeAlternatives } from '../../src/domain/alternatives';
import { planAutoSchedule } from '../../src/domain/autoschedule';
import type { UserSettings } from '../../src/domain/types';
import { cosine, HashedNgramEmbedder } from '../../src/memory/embedder';
import {
  assess,
  observe,
  Shaping,
  termsOf,
  timeOfDayOf,
  type LearnedRule,
  type ShapingItem,
} from '../../src/memory/rules';
import { everyDay, scheduledTask } from '../support/plan-fixtures';

const UTC: UserSettings = {
  timeZone: 'UTC',
  workingHours: everyDay('07:00', '22:00'),
  dailyCapacityMinutes: 900,
};

function learned(moves: number, part: 'EVENING' | 'MORNING' = 'EVENING'): ShapingItem {
  let rule: LearnedRule | null = null;
  for (let i = 0; i < moves; i++) rule = observe(rule, { type: 'tod', term: 'gym', part });
  const a = assess(rule!);
  return { id: 'pref-1', kind: a.kind, text: a.text, confidence: a.confidence, rule: rule!, expiresAt: null };
}

describe('memory: the local embedder', () => {
  const e = new HashedNgramEmbedder();

  it('is deterministic, unit length, and ranks related text above unrelated text', () => {
    const a = e.embedOne('Gym session after work');
    expect(e.embedOne('Gym session after work')).to.deep.equal(a);
    expect(cosine(a, a)).to.be.closeTo(1, 1e-4);
    const related = cosine(a, e.embedOne('gym sessions'));
    const unrelated = cosine(a, e.embedOne('dentist appointment on Baker Street'));
    expect(related).to.be.greaterThan(0.4);
    expect(related).to.be.greaterThan(unrelated + 0.3);
  });

  it('maps any text, empty included, to a finite vector of the configured size', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const v = e.embedOne(s);
        expect(v).to.have.length(256);
        expect(v.every(Number.isFinite)).to.equal(true);
        const n = cosine(v, v);
        expect(n === 0 || Math.abs(n - 1) < 1e-3).to.equal(true);
      }),
    );
  });
});

describe('memory: what is learned', () => {
  it('keys on title terms: words of 3+ letters, no stop words, plural dropped', () => {
    expect(termsOf('The Gym sessions for Monday')).to.deep.equal(['gym', 'session', 'monday']);
    expect(termsOf('a to 42')).to.deep.equal([]);
  });

  it('a time-of-day preference becomes active at 3 consistent moves, not before, not when mixed', () => {
    expect(learned(2).confidence).to.be.below(1);
    expect(assess(learned(2).rule).active).to.equal(false);
    expect(assess(learned(3).rule).active).to.equal(true);
    let mixed: LearnedRule | null = null;
    for (const part of ['EVENING', 'MORNING', 'EVENING', 'MORNING', 'AFTERNOON'] as const)
      mixed = observe(mixed, { type: 'tod', term: 'gym', part });
    expect(assess(mixed!).active).to.equal(false);
  });

  it('a duration pattern states the ratio and needs a real deviation', () => {
    let r: LearnedRule | null = null;
    for (const ratio of [1.5, 1.4, 1.6]) r = observe(r, { type: 'dur', term: 'write', ratio });
    expect(assess(r!)).to.include({ kind: 'PATTERN', active: true });
    expect(assess(r!).text).to.equal('"write" tasks take about 1.5× their estimate, from 3 completions');
    let close: LearnedRule | null = null;
    for (const ratio of [1.05, 0.95, 1.0]) close = observe(close, { type: 'dur', term: 'write', ratio });
    expect(assess(close!).active).to.equal(false);
  });

  it('times of day follow the user zone', () => {
    expect(timeOfDayOf(Date.parse('2026-12-01T18:00:00Z'), 'UTC')).to.equal('EVENING');
    expect(timeOfDayOf(Date.parse('2026-12-01T18:00:00Z'), 'Asia/Tokyo')).to.equal('NIGHT'); // 03:00 local
    expect(timeOfDayOf(Date.parse('2026-12-01T18:00:00Z'), 'America/Los_Angeles')).to.equal('MORNING'); // 10:00
  });
});

describe('memory: shaping proposals (pure)', () => {
  const now = new Date('2026-12-01T06:00:00Z');
  const meeting = scheduledTask('meeting', '2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z', {
    title: 'Meeting',
  });
  const gym = scheduledTask('gym', '2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z', { title: 'Gym session' });
  const conflict = {
    kind: 'OVERLAP' as const,
    key: 'OVERLAP:gym:meeting',
    taskIds: ['gym', 'meeting'],
    message: 'overlap',
  };

  it('proposeAlternatives: without a preference the nearest slots lead; with one, preferred slots lead and scores stay descending', () => {
    const plain = proposeAlternatives(conflict, [meeting, gym], UTC, now);
    expect(new Date(plain[0]!.start!).getUTCHours()).to.be.below(17);
    const shaping = new Shaping([learned(5)]);
    const shaped = proposeAlternatives(conflict, [meeting, gym], UTC, now, {
      preferred: (t, s, e) => shaping.satisfied(t.title, s, e, 'UTC').length > 0,
    });
    expect(shaped[0]!.taskId).to.equal('gym');
    expect(new Date(shaped[0]!.start!).getUTCHours()).to.be.within(17, 21);
    expect(shaped[0]!.description).to.match(/in your preferred time/);
    const scores = shaped.map((a) => a.score);
    expect(scores).to.deep.equal([...scores].sort((x, y) => y - x));
  });

  it('planAutoSchedule: a preferred window first, the earliest slot when none fits; durations from the option', () => {
    const shaping = new Shaping([learned(5)]);
    const task = {
      ...scheduledTask('g', null, null, { title: 'Gym', estimateMinutes: 60 }),
      status: 'TODO' as const,
    };
    const window = { from: new Date('2026-12-02T00:00:00Z'), to: new Date('2026-12-03T00:00:00Z') };
    const opts = {
      preferredWindows: (t: { title: string }, day: string) => shaping.preferredWindows(t.title, day, 'UTC'),
    };
    const placed = planAutoSchedule([task], [task], UTC, window, now, opts).placed[0]!;
    expect(placed).to.include({ preferred: true });
    expect(placed.start.toISOString()).to.equal('2026-12-02T17:00:00.000Z');
    const unshaped = planAutoSchedule([task], [task], UTC, window, now).placed[0]!;
    expect(unshaped.start.toISOString()).to.equal('2026-12-02T07:00:00.000Z');
    // The evening is full: the earliest slot anywhere, not preferred.
    const busy = scheduledTask('busy', '2026-12-02T17:00:00Z', '2026-12-02T22:00:00Z', { title: 'Concert' });
    const fallback = planAutoSchedule([task], [task, busy], UTC, window, now, opts).placed[0]!;
    expect(fallback.preferred).to.equal(undefined);
    expect(fallback.start.toISOString()).to.equal('2026-12-02T07:00:00.000Z');
    const longer = planAutoSchedule([task], [task], UTC, window, now, { durationMinutes: () => 90 })
      .placed[0]!;
    expect(longer.end.getTime() - longer.start.getTime()).to.equal(90 * 60_000);
  });
});
