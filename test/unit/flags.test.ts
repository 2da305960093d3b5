/**
 * Flags without a database: payload validation, the rollout edits, bucketing with the real
 * GrowthBook SDK (determinism, a 30 % rollout and the 50/50 experiment over 10,000 synthetic users),
 * exposures through the SDK's trackingCallback, and the "smallest move" ranking.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { ConfigError, loadConfig } from '../../src/config/config';
import { disable, enable, phase, RolloutError, summarise } from '../../src/flags/admin';
import { enhancedInputErrors, MUTATION_GATES, requireFlag } from '../../src/flags/gates';
import {
  ALTERNATIVE_RANKING,
  EXPERIMENTS,
  FEATURE_KEYS,
  FLAG_KEYS,
  FLAGS,
  PHASES,
} from '../../src/flags/keys';
import { defaultPayload, PayloadError, validatePayload, type FeaturePayload } from '../../src/flags/payload';
import { rankAlternatives, rankBySmallestMove } from '../../src/flags/ranking';
import { FlagService, type Exposure, type FlagUser } from '../../src/flags/service';

/** Deterministic synthetic user ids (UUID-shaped, from a counter). */
function userId(i: number): string {
  const hex = i.toString(16).padStart(12, '0');
  return `00000000-0000-4000-8000-${hex}`;
}

function user(i: number, over: Partial<FlagUser> = {}): FlagUser {
  return {
    id: userId(i),
    role: 'USER',
    signupDate: new Date('2026-01-01T00:00:00Z'),
    timeZone: 'Europe/Berlin',
    ...over,
  };
}

function service(payload: FeaturePayload, exposures: Exposure[] = []): FlagService {
  return new FlagService(
    payload,
    { origin: 'static', version: 1 },
    { exposures: { exposure: (e) => exposures.push(e) } },
  );
}

function expectRefused(payload: unknown, problem: RegExp): void {
  let err: unknown;
  try {
    validatePayload(payload, 'test');
  } catch (e) {
    err = e;
  }
  expect(err, JSON.stringify(payload)).to.be.instanceOf(PayloadError);
  expect((err as Error).message).to.match(/^malformed features payload from test: /);
  expect((err as Error).message).to.match(problem);
}

describe('flags (unit)', () => {
  describe('payload validation', () => {
    it('accepts the repository default: every capability on, the experiment 50/50', () => {
      const p = defaultPayload();
      expect(Object.keys(p.features)).to.have.members([...FEATURE_KEYS]);
      const flags = service(p).forUser(user(1));
      for (const key of FLAG_KEYS) expect(flags.isOn(key), key).to.equal(true);
      const rule = p.features[EXPERIMENTS.ALTERNATIVE_RANKING]!.rules![0]!;
      expect(rule.weights).to.deep.equal([0.5, 0.5]);
      expect(rule.coverage).to.equal(1);
    });

    it('refuses malformed payloads with a message naming the problem', () => {
      expectRefused('{"features": ', /not JSON/);
      expectRefused([], /expected a JSON object/);
      expectRefused({}, /features: expected an object of feature definitions, got nothing/);
      expectRefused({ features: [] }, /features: expected an object/);
      expectRefused(
        { features: { undo: true } },
        /features\.undo: expected a feature definition object, got true/,
      );
      expectRefused(
        { features: { undo: { defaultValue: 'yes' } } },
        /features\.undo\.defaultValue: expected a boolean/,
      );
      expectRefused(
        { features: { undo: { defaultValue: true, rule: [] } } },
        /features\.undo\.rule: unknown field/,
      );
      expectRefused({ features: { undo: { rules: {} } } }, /features\.undo\.rules: expected an array/);
      expectRefused(
        { features: { undo: { rules: [{ coverage: 0.5 }] } } },
        /expected "force" or "variations", got neither/,
      );
      expectRefused(
        { features: { undo: { rules: [{ force: true, coverage: 3 }] } } },
        /coverage: expected a number from 0 to 1, got 3/,
      );
      expectRefused(
        {
          features: {
            alternative_ranking: {
              rules: [{ variations: ['current', 'smallest_move'], weights: [0.7, 0.7] }],
            },
          },
        },
        /weights: expected a sum of 1, got 1\.4/,
      );
      expectRefused(
        { features: { alternative_ranking: { rules: [{ variations: ['current', 'biggest_move'] }] } } },
        /variations\[1\]: expected one of "current", "smallest_move"/,
      );
      expectRefused({ encryptedFeatures: 'abc', features: {} }, /encrypted payloads are not supported/);
    });

    it('accepts unknown keys and warns about declared keys it leaves undefined (they evaluate off)', () => {
      const { warnings } = validatePayload({ features: { other_app_flag: { defaultValue: 42 } } }, 'test');
      expect(warnings).to.have.length(FEATURE_KEYS.length);
      const flags = service({ features: {} }).forUser(user(1));
      expect(flags.isOn(FLAGS.UNDO)).to.equal(false);
      expect(flags.evaluations().find((e) => e.key === FLAGS.UNDO)?.source).to.equal('unknownFeature');
      expect(flags.variant(EXPERIMENTS.ALTERNATIVE_RANKING)).to.equal(ALTERNATIVE_RANKING.CURRENT);
    });

    it('a refused payload leaves the one in force', () => {
      const s = service(defaultPayload());
      expect(() =>
        s.apply({ features: { undo: { defaultValue: 1 } } }, { origin: 'database', version: 2 }),
      ).to.throw(PayloadError);
      expect(s.payload.version).to.equal(1);
      expect(s.forUser(user(1)).isOn(FLAGS.UNDO)).to.equal(true);
      s.apply(disable(defaultPayload(), FLAGS.UNDO), { origin: 'database', version: 3 });
      expect(s.payload.version).to.equal(3);
      expect(s.forUser(user(1)).isOn(FLAGS.UNDO)).to.equal(false);
    });
  });

  describe('rollout edits', () => {
    it('phase N is cumulative: phases 1..N on for everyone, later ones off; the experiment untouched', () => {
      for (const n of [1, 2, 3, 4]) {
        const p = validatePayload(phase(defaultPayload(), n), `phase ${n}`).payload;
        const flags = service(p).forUser(user(7));
        for (const ph of PHASES)
          for (const key of ph.flags) expect(flags.isOn(key), `${key} at phase ${n}`).to.equal(ph.phase <= n);
        expect(p.features[EXPERIMENTS.ALTERNATIVE_RANKING]).to.deep.equal(
          defaultPayload().features[EXPERIMENTS.ALTERNATIVE_RANKING],
        );
      }
      expect(() => phase(defaultPayload(), 5)).to.throw(RolloutError, /1 to 4/);
      expect(() => phase(defaultPayload(), 0)).to.throw(RolloutError);
    });

    it('enable: listed users, attributes, percentages; disable: off for everyone; bad options are refused', () => {
      const listed = [userId(1), userId(2)];
      const byUsers = service(enable(defaultPayload(), FLAGS.UNDO, { users: listed }));
      expect(byUsers.forUser(user(1)).isOn(FLAGS.UNDO)).to.equal(true);
      expect(byUsers.forUser(user(2)).isOn(FLAGS.UNDO)).to.equal(true);
      expect(byUsers.forUser(user(3)).isOn(FLAGS.UNDO)).to.equal(false);

      const admins = service(enable(defaultPayload(), FLAGS.UNDO, { attributes: { role: 'ADMIN' } }));
      expect(admins.forUser(user(3, { role: 'ADMIN' })).isOn(FLAGS.UNDO)).to.equal(true);
      expect(admins.forUser(user(3)).isOn(FLAGS.UNDO)).to.equal(false);

      const off = service(disable(defaultPayload(), FLAGS.UNDO)).forUser(user(1));
      expect(off.isOn(FLAGS.UNDO)).to.equal(false);
      expect(off.evaluations().find((e) => e.key === FLAGS.UNDO)).to.deep.equal({
        key: FLAGS.UNDO,
        on: false,
        value: false,
        variant: null,
        source: 'defaultValue',
      });

      expect(() => enable(defaultPayload(), 'nope')).to.throw(RolloutError, /unknown feature "nope"/);
      expect(() => enable(defaultPayload(), FLAGS.UNDO, { percent: 101 })).to.throw(
        RolloutError,
        /--percent/,
      );
      expect(() => enable(defaultPayload(), FLAGS.UNDO, { users: ['bob'] })).to.throw(
        RolloutError,
        /--users/,
      );
      expect(() => enable(defaultPayload(), FLAGS.UNDO, { attributes: { plan: 'pro' } })).to.throw(
        RolloutError,
        /--attribute/,
      );
      expect(() => enable(defaultPayload(), FLAGS.UNDO, { attributes: { role: 'ROOT' } })).to.throw(
        RolloutError,
        /USER or ADMIN/,
      );
      // Every edit produces a payload the validator accepts.
      for (const p of [
        enable(defaultPayload(), FLAGS.UNDO, { percent: 30, users: listed, attributes: { role: 'USER' } }),
        enable(defaultPayload(), EXPERIMENTS.ALTERNATIVE_RANKING, { percent: 20 }),
        disable(defaultPayload(), EXPERIMENTS.ALTERNATIVE_RANKING),
      ]) {
        expect(() => validatePayload(p, 'edit')).not.to.throw();
      }
      const detail = (p: FeaturePayload, key: string) => summarise(p).find((s) => s.key === key);
      expect(detail(disable(defaultPayload(), FLAGS.UNDO), FLAGS.UNDO)).to.deep.include({
        state: 'off',
        detail: 'off for everyone',
      });
      expect(detail(defaultPayload(), FLAGS.UNDO)).to.deep.include({
        state: 'on',
        detail: 'on for everyone',
      });
      expect(
        detail(
          enable(defaultPayload(), FLAGS.UNDO, { percent: 30, users: listed, attributes: { role: 'USER' } }),
          FLAGS.UNDO,
        ),
      ).to.deep.include({
        state: 'partial',
        detail: 'on for 2 listed users; on for 30% (role=USER); off for everyone else',
      });
      expect(
        detail(enable(defaultPayload(), FLAGS.UNDO, { attributes: { role: 'ADMIN' } }), FLAGS.UNDO)?.detail,
      ).to.equal('on for role=ADMIN; off for everyone else');
      expect(detail(defaultPayload(), EXPERIMENTS.ALTERNATIVE_RANKING)).to.deep.include({
        state: 'on',
        detail: 'experiment 50/50 current / smallest_move for 100%; current for everyone else',
      });
      expect(
        detail(disable(defaultPayload(), EXPERIMENTS.ALTERNATIVE_RANKING), EXPERIMENTS.ALTERNATIVE_RANKING),
      ).to.deep.include({
        state: 'off',
        detail: 'current for everyone',
      });
    });
  });

  describe('bucketing (real GrowthBook SDK)', () => {
    const N = 10_000;

    it('a 30 % rollout over 10,000 synthetic users lands within ±2 points, and growing it keeps those users', () => {
      const s30 = service(enable(defaultPayload(), FLAGS.UNDO, { percent: 30 }));
      const s50 = service(enable(defaultPayload(), FLAGS.UNDO, { percent: 50 }));
      let on = 0;
      for (let i = 0; i < N; i++) {
        const in30 = s30.forUser(user(i)).isOn(FLAGS.UNDO);
        if (in30) {
          on++;
          expect(s50.forUser(user(i)).isOn(FLAGS.UNDO), `user ${i} left when 30 % became 50 %`).to.equal(
            true,
          );
        }
      }
      const share = (on / N) * 100;
      expect(share).to.be.within(28, 32);
      // Random (not sequential) ids too.
      let onRandom = 0;
      for (let i = 0; i < N; i++)
        if (s30.forUser({ ...user(0), id: randomUUID() }).isOn(FLAGS.UNDO)) onRandom++;
      expect((onRandom / N) * 100).to.be.within(28, 32);
    });

    it('the experiment splits 50/50 (±2 points) and is the same across two instances and a rebuild', () => {
      const a = service(defaultPayload());
      const b = service(JSON.parse(JSON.stringify(defaultPayload())) as FeaturePayload);
      let smallest = 0;
      for (let i = 0; i < N; i++) {
        const va = a.forUser(user(i)).variant(EXPERIMENTS.ALTERNATIVE_RANKING);
        expect(
          b.forUser(user(i, { role: 'ADMIN', timeZone: 'UTC' })).variant(EXPERIMENTS.ALTERNATIVE_RANKING),
        ).to.equal(va);
        if (va === ALTERNATIVE_RANKING.SMALLEST_MOVE) smallest++;
      }
      expect((smallest / N) * 100).to.be.within(48, 52);
      a.apply(defaultPayload(), { origin: 'database', version: 2 }); // a new client: same buckets
      for (let i = 0; i < 200; i++) {
        expect(a.forUser(user(i)).variant(EXPERIMENTS.ALTERNATIVE_RANKING)).to.equal(
          b.forUser(user(i)).variant(EXPERIMENTS.ALTERNATIVE_RANKING),
        );
      }
    });

    it('exposures fire through the SDK trackingCallback when the variant is used, not on silent reads', () => {
      const seen: Exposure[] = [];
      const s = service(defaultPayload(), seen);
      const f = s.forUser(user(42));
      const assigned = f.assignment(EXPERIMENTS.ALTERNATIVE_RANKING);
      f.evaluations();
      f.isOn(FLAGS.UNDO);
      expect(seen).to.deep.equal([]);
      const variant = f.variant(EXPERIMENTS.ALTERNATIVE_RANKING);
      f.variant(EXPERIMENTS.ALTERNATIVE_RANKING);
      f.evaluations({ expose: true });
      expect(variant).to.equal(assigned);
      expect(seen).to.deep.equal([
        {
          userId: userId(42),
          experiment: EXPERIMENTS.ALTERNATIVE_RANKING,
          variant,
          variationId: variant === ALTERNATIVE_RANKING.CURRENT ? 0 : 1,
        },
      ]);
      const ev = f.evaluations().find((e) => e.key === EXPERIMENTS.ALTERNATIVE_RANKING);
      expect(ev).to.deep.include({ on: true, value: variant, variant, source: 'experiment' });

      // Outside the experiment (stopped): no exposure, the control.
      const stopped: Exposure[] = [];
      const g = service(disable(defaultPayload(), EXPERIMENTS.ALTERNATIVE_RANKING), stopped).forUser(
        user(42),
      );
      expect(g.variant(EXPERIMENTS.ALTERNATIVE_RANKING)).to.equal(ALTERNATIVE_RANKING.CURRENT);
      expect(g.assignment(EXPERIMENTS.ALTERNATIVE_RANKING)).to.equal(null);
      expect(stopped).to.deep.equal([]);
    });
  });

  describe('ranking', () => {
    const at = (h: number) => new Date(Date.UTC(2026, 11, 1, h));
    const current = new Map([
      ['a', at(9)],
      ['b', at(9)],
    ]);
    const alts = [
      { id: '1', action: 'MOVE' as const, taskId: 'a', start: at(15), score: 0.9 },
      { id: '2', action: 'BACKLOG' as const, taskId: 'a', start: null, score: 0.95 },
      { id: '3', action: 'MOVE' as const, taskId: 'b', start: at(10), score: 0.5 },
      { id: '4', action: 'MOVE' as const, taskId: 'a', start: at(8), score: 0.6 },
      { id: '5', action: 'MOVE' as const, taskId: 'a', start: at(10), score: 0.7 },
    ];
    const startOf = (id: string) => current.get(id) ?? null;

    it('smallest move: moves by distance (ties by score), backlog last; the control keeps the order', () => {
      expect(rankBySmallestMove(alts, startOf).map((a) => a.id)).to.deep.equal(['5', '4', '3', '1', '2']);
      expect(rankAlternatives(ALTERNATIVE_RANKING.CURRENT, alts, startOf).map((a) => a.id)).to.deep.equal([
        '1',
        '2',
        '3',
        '4',
        '5',
      ]);
      expect(rankAlternatives(ALTERNATIVE_RANKING.SMALLEST_MOVE, alts, startOf)).to.have.length(alts.length);
      // Unknown current start: after known moves, before backlog.
      expect(
        rankBySmallestMove(alts, (id) => (id === 'b' ? null : startOf(id))).map((a) => a.id),
      ).to.deep.equal(['5', '4', '1', '3', '2']);
    });
  });
});

describe('flags gates (unit)', () => {
  const u: FlagUser = { id: randomUUID(), role: 'USER', signupDate: new Date(0), timeZone: 'UTC' };
  const on = new FlagService(defaultPayload(), { origin: 'static', version: 1 }).forUser(u);
  const off = new FlagService(disable(disable(defaultPayload(), FLAGS.ENHANCED_MODELS), FLAGS.UNDO), {
    origin: 'static',
    version: 1,
  }).forUser(u);

  it('FEATURE_DISABLED per enhanced input field set while enhanced_models is off; nothing when on or unset', () => {
    const input = { title: 'x', tags: ['a'], goalId: null, dependsOn: [], estimateMinutes: undefined };
    expect(enhancedInputErrors(on, input)).to.deep.equal([]);
    expect(enhancedInputErrors(off, { title: 'x', goalId: null })).to.deep.equal([]);
    const errors = enhancedInputErrors(off, input);
    expect(errors.map((e) => [e.code, e.path])).to.deep.equal([
      ['FEATURE_DISABLED', ['dependsOn']],
      ['FEATURE_DISABLED', ['tags']],
    ]);
    expect(errors[0]!.message).to.match(/enhanced_models/);
  });

  it('requireFlag answers null when on and FEATURE_DISABLED when off; every gated mutation names a flag', () => {
    expect(requireFlag(on, FLAGS.UNDO)).to.equal(null);
    expect(requireFlag(off, FLAGS.UNDO)).to.deep.include({ code: 'FEATURE_DISABLED', path: null });
    for (const key of Object.values(MUTATION_GATES)) expect(FLAG_KEYS).to.include(key);
  });
});

describe('flags configuration (unit)', () => {
  it('reads the poll period and remote GrowthBook settings, refusing half or bad ones', () => {
    const base = { NODE_ENV: 'test' };
    const c = loadConfig(base);
    expect(c).to.deep.include({
      flagsPollMs: 1000,
      growthbookApiHost: null,
      growthbookClientKey: null,
      growthbookRefreshMs: 30_000,
    });
    const remote = loadConfig({
      ...base,
      GROWTHBOOK_API_HOST: 'https://gb.example.com',
      GROWTHBOOK_CLIENT_KEY: 'sdk-1',
      GROWTHBOOK_REFRESH_MS: '500',
    });
    expect(remote).to.deep.include({
      growthbookApiHost: 'https://gb.example.com',
      growthbookClientKey: 'sdk-1',
      growthbookRefreshMs: 500,
    });
    const refused = (env: Record<string, string>, variable: string) =>
      expect(() => loadConfig({ ...base, ...env })).to.throw(
        ConfigError,
        new RegExp(`^${variable}: expected`),
      );
    refused({ GROWTHBOOK_API_HOST: 'https://gb.example.com' }, 'GROWTHBOOK_CLIENT_KEY');
    refused({ GROWTHBOOK_CLIENT_KEY: 'sdk-1' }, 'GROWTHBOOK_API_HOST');
    refused({ GROWTHBOOK_API_HOST: 'gb.example.com', GROWTHBOOK_CLIENT_KEY: 'sdk-1' }, 'GROWTHBOOK_API_HOST');
    refused({ PLANNER_FLAGS_POLL_MS: '6000' }, 'PLANNER_FLAGS_POLL_MS'); // the product promises 5 s
  });
});
