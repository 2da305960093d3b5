// Planner dashboard: time-zone arithmetic and the schedule, conflict and activity panels.
// Rendering builds DOM nodes (textContent only: nothing from the API is parsed as HTML).
(function () {
  'use strict';
  const P = (window.Planner = window.Planner || {});

  /** el('li', {class: 'x', dataset: {id: '1'}}, child...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'onclick') node.addEventListener('click', v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }
  P.el = el;

  // --- time zones (Intl only) ---------------------------------------------------------------

  const partsCache = new Map();
  function dtf(zone) {
    let f = partsCache.get(zone);
    if (!f) {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      });
      partsCache.set(zone, f);
    }
    return f;
  }
  function wall(zone, ms) {
    const o = {};
    for (const p of dtf(zone).formatToParts(new Date(ms))) o[p.type] = p.value;
    return { y: +o.year, m: +o.month, d: +o.day, h: +o.hour, mi: +o.minute, s: +o.second };
  }
  /**
   * The first instant of `day` (YYYY-MM-DD) in `zone`: local midnight, or the end of the gap when
   * a transition skips midnight (America/Santiago, America/Havana). Binary search to the minute
   * over the ±15 h in which it must lie (local dates only grow with time there).
   */
  function midnight(zone, day) {
    const [y, m, d] = day.split('-').map(Number);
    const key = y * 10000 + m * 100 + d;
    const dateKey = (ms) => {
      const w = wall(zone, ms);
      return w.y * 10000 + w.m * 100 + w.d;
    };
    const MINUTE = 60000;
    let lo = Date.UTC(y, m - 1, d) - 15 * 60 * MINUTE; // still the previous local day
    let hi = Date.UTC(y, m - 1, d) + 15 * 60 * MINUTE; // already this local day
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
      if (dateKey(mid) >= key) hi = mid;
      else lo = mid;
    }
    return hi;
  }
  P.time = {
    /** Today's date (YYYY-MM-DD) in `zone`. */
    today(zone) {
      const w = wall(zone, Date.now());
      return w.y + '-' + String(w.m).padStart(2, '0') + '-' + String(w.d).padStart(2, '0');
    },
    /** [from, to) of a local day as ISO instants. */
    dayRange(zone, day) {
      const from = midnight(zone, day);
      const [y, m, d] = day.split('-').map(Number);
      const next = new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
      return { from: new Date(from).toISOString(), to: new Date(midnight(zone, next)).toISOString() };
    },
    /** HH:MM in `zone`. */
    clock(zone, iso) {
      const w = wall(zone, Date.parse(iso));
      return String(w.h).padStart(2, '0') + ':' + String(w.mi).padStart(2, '0');
    },
    /** Date and time in `zone`, for lists. */
    stamp(zone, iso) {
      return new Intl.DateTimeFormat(undefined, {
        timeZone: zone,
        dateStyle: 'medium',
        timeStyle: 'short',
      }).format(new Date(iso));
    },
  };

  function show(id, visible) {
    document.getElementById(id).hidden = !visible;
  }

  /** Who did an operation, in words: you, an agent, or the raw actor. */
  function actorLabel(actor, me) {
    if (actor === 'user:' + me.id) return 'you';
    if (/^agent[:/]/.test(actor)) return 'agent (' + actor.replace(/^agent[:/]/, '') + ')';
    if (/^user:/.test(actor)) return 'user ' + actor.slice(5, 13);
    return actor;
  }

  // --- schedule -------------------------------------------------------------------------------

  P.renderSchedule = function renderSchedule(state) {
    const { me, day, range, tasks, conflictTaskIds } = state;
    document.getElementById('schedule-zone').textContent = 'Times in ' + me.timeZone + ' (' + day + ').';
    const list = document.getElementById('timeline');
    list.replaceChildren();
    const from = Date.parse(range.from);
    const span = Date.parse(range.to) - from;
    for (const t of tasks) {
      const inConflict = conflictTaskIds.has(t.id);
      const start = Math.max(Date.parse(t.scheduledStart), from);
      const end = Math.min(Date.parse(t.scheduledEnd), from + span);
      const bar = el('span', { class: 'bar' });
      bar.style.left = ((100 * (start - from)) / span).toFixed(2) + '%';
      bar.style.width = ((100 * Math.max(0, end - start)) / span).toFixed(2) + '%';
      list.append(
        el(
          'li',
          { class: inConflict ? 'in-conflict' : '', dataset: { taskId: t.id, start: t.scheduledStart } },
          el(
            'div',
            { class: 'slot' },
            el(
              'span',
              { class: 'time' },
              P.time.clock(me.timeZone, t.scheduledStart) + '–' + P.time.clock(me.timeZone, t.scheduledEnd),
            ),
            el('span', { class: 'title' }, t.title),
            inConflict ? el('span', { class: 'badge bad' }, 'Conflict') : null,
            t.status === 'DONE' ? el('span', { class: 'badge ok' }, 'Done') : null,
          ),
          el('div', { class: 'track', 'aria-hidden': 'true' }, bar),
        ),
      );
    }
    show('schedule-empty', tasks.length === 0);
  };

  // --- conflicts ------------------------------------------------------------------------------

  P.renderConflicts = function renderConflicts(state, onApply) {
    const { conflicts } = state;
    const list = document.getElementById('conflicts');
    list.replaceChildren();
    for (const c of conflicts) {
      const alternatives = el('div', { class: 'alternatives', role: 'group', 'aria-label': 'Alternatives' });
      for (const a of c.alternatives) {
        alternatives.append(
          el(
            'button',
            {
              type: 'button',
              class: 'secondary',
              dataset: { alternativeId: a.id },
              onclick: (ev) => onApply(c, a, ev.currentTarget),
            },
            'Apply: ' + a.description,
          ),
        );
      }
      if (c.alternatives.length === 0)
        alternatives.append(el('p', { class: 'muted' }, 'No alternative found.'));
      list.append(
        el(
          'li',
          { dataset: { conflictId: c.id, kind: c.kind } },
          el('strong', {}, c.kind.replace(/_/g, ' ').toLowerCase()),
          ' — ',
          c.message,
          el('p', { class: 'muted' }, 'Tasks: ' + c.tasks.map((t) => t.title).join(', ')),
          alternatives,
        ),
      );
    }
    show('conflicts-empty', conflicts.length === 0);
  };

  // --- activity -------------------------------------------------------------------------------

  P.renderActivity = function renderActivity(state) {
    const { me, operations, undoState } = state;
    const list = document.getElementById('operations');
    list.replaceChildren();
    for (const op of operations) {
      list.append(
        el(
          'li',
          { class: op.state === 'UNDONE' ? 'undone' : '', dataset: { operationId: op.id, state: op.state } },
          el('span', { class: 'kind' }, op.kind),
          el('span', {}, 'by ' + actorLabel(op.actor, me)),
          el('span', { class: 'badge ' + (op.state === 'APPLIED' ? 'ok' : 'warn') }, op.state.toLowerCase()),
          el('time', { datetime: op.createdAt, class: 'muted' }, P.time.stamp(me.timeZone, op.createdAt)),
        ),
      );
    }
    show('operations-empty', operations.length === 0);
    const undo = document.getElementById('undo-button');
    const redo = document.getElementById('redo-button');
    undo.disabled = !undoState.canUndo;
    redo.disabled = !undoState.canRedo;
    undo.textContent = undoState.canUndo && undoState.nextUndo ? 'Undo ' + undoState.nextUndo.kind : 'Undo';
    undo.setAttribute('aria-label', undo.textContent);
  };

  const MAX_LOG = 200;
  /** Appends one live event to the log (every delivery shows: a duplicate would show twice). */
  P.logEvent = function logEvent(me, stream, event) {
    const list = document.getElementById('event-log');
    const operation =
      stream === 'plan' && event.payload && event.payload.operation
        ? event.payload.operation
        : event.operation;
    const subject =
      stream === 'conflict' ? event.conflict.kind + ' ' + event.conflict.status.toLowerCase() : '';
    list.prepend(
      el(
        'li',
        {
          dataset: {
            cursor: event.cursor,
            stream: stream,
            type: event.type,
            operationId: operation ? operation.id : undefined,
            conflictId: event.conflict ? event.conflict.id : undefined,
          },
        },
        el('span', { class: 'kind' }, event.type),
        el('span', {}, stream === 'plan' ? 'plan' : stream),
        subject ? el('span', {}, subject) : null,
        el('span', { class: 'muted' }, '#' + event.cursor),
      ),
    );
    while (list.children.length > MAX_LOG) list.lastElementChild.remove();
    document.getElementById('event-log-empty').hidden = true;
  };
})();
