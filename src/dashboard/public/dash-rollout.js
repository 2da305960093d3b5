// Planner dashboard: the admin rollout panel (Query.rollout): flags, variants and phases, a bar
// chart per feature of each variant's p95 latency and error rate, and the guardrail verdict.
(function () {
  'use strict';
  const P = (window.Planner = window.Planner || {});
  const el = P.el;

  P.ROLLOUT_QUERY = `query Rollout {
    rollout {
      generatedAt payloadVersion
      features {
        key kind phase state detail control
        variants { variant count errors errorRate p50Ms p95Ms }
        guardrail { verdict summary arms { variant verdict checks { check verdict detail } } }
      }
      rollbacks { at feature actor command }
    }
  }`;

  const VERDICT_CLASS = { PASS: 'ok', BREACH: 'bad', INSUFFICIENT: 'warn' };

  function chart(kind, label, rows, format) {
    const max = Math.max(0, ...rows.map((r) => r.value || 0));
    const grid = el('div', { class: 'chart ' + kind, role: 'img', 'aria-label': label });
    const words = [];
    for (const r of rows) {
      const fill = el('span', { class: 'fill' });
      fill.style.width = max > 0 && r.value !== null ? ((100 * r.value) / max).toFixed(1) + '%' : '0%';
      const text = r.value === null ? 'no data' : format(r.value);
      words.push(r.variant + ' ' + text);
      grid.append(
        el('span', {}, r.variant),
        el('span', { class: 'meter' }, fill),
        el('span', { class: 'value' }, text),
      );
    }
    grid.setAttribute('aria-label', label + ': ' + words.join(', '));
    return el('div', {}, el('p', { class: 'muted' }, label), grid);
  }

  P.renderRollout = function renderRollout(me, report) {
    const root = document.getElementById('rollout');
    root.replaceChildren();
    document.getElementById('rollout-meta').textContent =
      'Figures of every instance as of ' +
      P.time.stamp(me.timeZone, report.generatedAt) +
      (report.payloadVersion !== null ? ' · payload version ' + report.payloadVersion : '');
    for (const f of report.features) {
      const verdict = f.guardrail.verdict;
      root.append(
        el(
          'article',
          { class: 'feature', dataset: { feature: f.key } },
          el('h3', {}, f.key + ' '),
          el(
            'p',
            {},
            f.kind +
              (f.phase !== null ? ' · phase ' + f.phase : '') +
              ' · ' +
              f.state +
              ' · control ' +
              f.control,
          ),
          el('p', { class: 'muted' }, f.detail),
          el(
            'p',
            {},
            'Guardrail: ',
            el('span', { class: 'badge ' + (VERDICT_CLASS[verdict] || ''), dataset: { verdict } }, verdict),
            ' ',
            f.guardrail.summary,
          ),
          f.variants.length === 0
            ? el('p', { class: 'empty' }, 'No operations counted yet for this feature.')
            : el(
                'div',
                {},
                chart(
                  'latency',
                  'p95 latency per variant',
                  f.variants.map((v) => ({ variant: v.variant, value: v.p95Ms })),
                  (x) => x.toFixed(1) + ' ms',
                ),
                chart(
                  'errors',
                  'Error rate per variant',
                  f.variants.map((v) => ({ variant: v.variant, value: v.errorRate })),
                  (x) => (100 * x).toFixed(2) + ' %',
                ),
                el(
                  'p',
                  { class: 'muted' },
                  f.variants.map((v) => v.variant + ': ' + v.count + ' operations').join(' · '),
                ),
              ),
        ),
      );
    }
    if (report.rollbacks.length > 0) {
      root.append(
        el('h3', {}, 'Rollbacks'),
        el(
          'ul',
          {},
          ...report.rollbacks.map((r) =>
            el(
              'li',
              {},
              P.time.stamp(me.timeZone, r.at) +
                ' · ' +
                (r.feature || 'all') +
                ' · ' +
                r.actor +
                ' · ' +
                r.command,
            ),
          ),
        ),
      );
    }
    document.getElementById('rollout-empty').hidden = report.features.length > 0;
  };
})();
