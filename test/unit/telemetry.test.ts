import { expect } from 'chai';
import fc from 'fast-check';
import { trace } from '@opentelemetry/api';
import * as semconv from '@opentelemetry/semantic-conventions/incubating';
import { createLogger } from '../../src/server/logger';
import * as attrs from '../../src/telemetry/attributes';
import {
  ERROR_Z,
  figures,
  judgeArm,
  judgeFeature,
  MIN_SAMPLE,
  twoProportionZ,
} from '../../src/telemetry/guardrails';
import {
  BOUNDS,
  BUCKETS,
  bucketOf,
  emptyHistogram,
  mergeInto,
  quantile,
} from '../../src/telemetry/histogram';
import { traceOperation } from '../../src/telemetry/operation';
import { spanCapture } from '../support/otel';

function hist(values: number[]): number[] {
  const h = emptyHistogram();
  for (const v of values) h[bucketOf(v)]!++;
  return h;
}

function exactQuantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

describe('telemetry (unit)', () => {
  it('spells the feature-flag attributes as the OpenTelemetry semantic conventions do', () => {
    expect(attrs.FEATURE_FLAG_KEY).to.equal(semconv.ATTR_FEATURE_FLAG_KEY);
    expect(attrs.FEATURE_FLAG_RESULT_VARIANT).to.equal(semconv.ATTR_FEATURE_FLAG_RESULT_VARIANT);
    expect(attrs.FEATURE_FLAG_VARIANT).to.equal(semconv.ATTR_FEATURE_FLAG_VARIANT);
    expect(attrs.FEATURE_FLAG_RESULT_VALUE).to.equal(semconv.ATTR_FEATURE_FLAG_RESULT_VALUE);
    expect(attrs.FEATURE_FLAG_RESULT_REASON).to.equal(semconv.ATTR_FEATURE_FLAG_RESULT_REASON);
    expect(attrs.FEATURE_FLAG_PROVIDER_NAME).to.equal(semconv.ATTR_FEATURE_FLAG_PROVIDER_NAME);
    expect(attrs.FEATURE_FLAG_VERSION).to.equal(semconv.ATTR_FEATURE_FLAG_VERSION);
    expect(attrs.FEATURE_FLAG_CONTEXT_ID).to.equal(semconv.ATTR_FEATURE_FLAG_CONTEXT_ID);
    expect(attrs.FEATURE_FLAG_EVALUATION).to.equal(semconv.EVENT_FEATURE_FLAG_EVALUATION);
  });

  describe('mergeable log-scale histograms', () => {
    it('puts every duration in the bucket whose bounds hold it', () => {
      fc.assert(
        fc.property(fc.double({ min: 0, max: 200_000, noNaN: true }), (ms) => {
          const b = bucketOf(ms);
          expect(b).to.be.within(0, BUCKETS - 1);
          if (b < BOUNDS.length) expect(ms).to.be.at.most(BOUNDS[b]!);
          if (b > 0) expect(ms).to.be.greaterThan(BOUNDS[b - 1]!);
        }),
      );
    });

    it('merging equals the histogram of all values, and quantiles stay within one bucket (≤ 19 %)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.double({ min: 0.2, max: 50_000, noNaN: true }), { minLength: 1, maxLength: 200 }),
          fc.array(fc.double({ min: 0.2, max: 50_000, noNaN: true }), { minLength: 1, maxLength: 200 }),
          (a, b) => {
            const merged = mergeInto(hist(a), hist(b));
            expect(merged).to.deep.equal(hist([...a, ...b]));
            for (const q of [0.5, 0.95, 0.99]) {
              const exact = exactQuantile([...a, ...b], q);
              const est = quantile(merged, q)!;
              expect(est).to.be.within(exact / 1.19 - 0.01, exact * 1.19 + 0.01);
            }
          },
        ),
      );
    });
  });

  describe('guardrails', () => {
    const arm = (variant: string, ms: number[], errors = 0) =>
      figures(
        variant,
        ms.length,
        errors,
        ms.reduce((s, x) => s + x, 0),
        hist(ms),
        null,
      );
    const fast = Array.from({ length: 200 }, (_, i) => 5 + (i % 10));

    it('the two-proportion z statistic matches a worked value', () => {
      // 20/200 vs 5/200: p = 0.0625, se = sqrt(0.0625*0.9375*(2/200)) = 0.024206; z = 0.075/0.024206
      expect(twoProportionZ(20, 200, 5, 200)).to.be.closeTo(3.098, 0.001);
      expect(twoProportionZ(0, 200, 0, 200)).to.equal(0);
    });

    it('a p95 more than 100 ms above the control is a breach; within budget passes', () => {
      const slow = fast.map((x) => x + 150);
      expect(judgeArm(arm('b', slow), arm('a', fast)).verdict).to.equal('breach');
      const bit = fast.map((x) => x + 40);
      expect(judgeArm(arm('b', bit), arm('a', fast)).verdict).to.equal('pass');
    });

    it(`errors beyond noise (z > ${ERROR_Z}) breach; a small difference does not`, () => {
      expect(judgeArm(arm('b', fast, 20), arm('a', fast, 5)).checks[1]!.verdict).to.equal('breach');
      expect(judgeArm(arm('b', fast, 7), arm('a', fast, 5)).checks[1]!.verdict).to.equal('pass');
    });

    it(`fewer than ${MIN_SAMPLE} operations in an arm is insufficient, never pass or breach`, () => {
      const few = fast.slice(0, MIN_SAMPLE - 1).map((x) => x + 500);
      expect(judgeArm(arm('b', few), arm('a', fast)).verdict).to.equal('insufficient');
      expect(judgeFeature('undo', 'off', [arm('on', fast)]).verdict).to.equal('insufficient');
    });

    it('memory: more than +5 % RSS between exclusive periods is a breach', () => {
      const a = { ...arm('a', fast), exclusiveRssBytes: 100e6 };
      expect(judgeArm({ ...arm('b', fast), exclusiveRssBytes: 106e6 }, a).verdict).to.equal('breach');
      expect(judgeArm({ ...arm('b', fast), exclusiveRssBytes: 104e6 }, a).verdict).to.equal('pass');
    });
  });

  describe('operation spans', () => {
    it('a nested traceOperation joins the open one: phases are its children, one operation span', async () => {
      const cap = spanCapture.capture();
      try {
        const outer = traceOperation('createTask', { userId: 'u1' });
        await outer.run(async () => {
          const inner = traceOperation('createTask');
          expect(inner.owner).to.equal(false);
          await inner.phaseAsync('load', () => Promise.resolve(1));
          inner.phase('decide', () => 2);
          inner.setAttributes({ conflicts: 2, undoDepth: 3 });
          inner.end('ok');
        });
        outer.end('ok');
        const op = cap.spans.filter((s) => s.attributes[attrs.OPERATION_KIND] === 'createTask');
        expect(op).to.have.length(1);
        const phases = cap.spans.filter((s) => s.parentSpanContext?.spanId === op[0]!.spanContext().spanId);
        expect(phases.map((s) => s.name).sort()).to.deep.equal(['planner.decide', 'planner.load']);
        expect(op[0]!.attributes[attrs.CONFLICTS]).to.equal(2);
        expect(op[0]!.attributes[attrs.UNDO_DEPTH]).to.equal(3);
      } finally {
        cap.stop();
      }
    });
  });

  describe('logger (pino)', () => {
    it('adds trace_id and span_id inside a span, none outside, and honours the level', () => {
      const lines: string[] = [];
      const log = createLogger('info', (l) => lines.push(l));
      log.debug('hidden');
      log.info('outside');
      trace.getTracer('test').startActiveSpan('s', (span) => {
        log.warn('inside', { title: 'Buy milk' });
        span.end();
      });
      const [outside, inside] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).to.have.length(2);
      expect(outside).to.include({ level: 'info', msg: 'outside' });
      expect(outside).not.to.have.property('trace_id');
      expect(inside!['trace_id']).to.match(/^[0-9a-f]{32}$/);
      expect(inside!['span_id']).to.match(/^[0-9a-f]{16}$/);
      expect(inside!['title']).to.equal('[redacted]');
    });
  });
});
