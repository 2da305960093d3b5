// Planner dashboard: start-up, sign-in wiring, the state snapshot and the live loop.
// The page reads its state and the user's event cursor, subscribes from that cursor, and reads
// the state again (coalesced) after each live event: what it shows is always a fresh read, and
// the event log shows each delivered event exactly as delivered.
(function () {
  'use strict';
  const P = (window.Planner = window.Planner || {});
  const $ = (id) => document.getElementById(id);

  const ME_QUERY = 'query Me { me { id email displayName timeZone role eventCursor } }';
  const SNAPSHOT_QUERY = `query Dashboard($from: DateTime!, $to: DateTime!) {
    me { id email displayName timeZone role }
    schedule(from: $from, to: $to) { id title status scheduledStart scheduledEnd }
    conflicts(status: OPEN, first: 50) {
      edges { node {
        id kind status message detectedAt
        tasks { id title scheduledStart scheduledEnd }
        alternatives { id description action taskId start end score }
      } }
    }
    operations(first: 20) { edges { node { id seq kind actor state createdAt } } }
    undoState { canUndo canRedo depth nextUndo { id kind } }
  }`;
  const RESULT_FIELDS = 'ok errors { code message } operation { id kind }';

  let config = null;
  let token = null;
  let me = null;
  let live = null;
  let day = null;
  let refreshing = null;
  let refreshAgain = false;
  let rolloutTimer;

  function alertBox(message) {
    const box = $('alert');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function setLive(state, why) {
    const status = $('live-status');
    status.dataset.state = state;
    status.textContent = {
      'signed-out': 'Signed out',
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: 'Reconnecting… (changes made meanwhile will follow)',
      stopped: 'Live updates stopped',
    }[state];
    if (state === 'live' && why === 'resumed') void refresh();
  }

  function signInError(message) {
    const p = $('signin-error');
    p.textContent = message || '';
    p.hidden = !message;
  }

  async function signIn(newToken) {
    signInError('');
    let data;
    try {
      data = await P.gql(config, newToken, ME_QUERY);
    } catch (err) {
      if (err.code === 'UNAUTHENTICATED') P.auth.clear();
      signInError(
        err.code === 'UNAUTHENTICATED'
          ? 'This token was not accepted (expired, revoked or from another server). Mint a new one with npx planner token --email you@example.com.'
          : 'Sign-in failed: ' + err.message,
      );
      return;
    }
    token = newToken;
    me = data.me;
    P.auth.save(token);
    $('signin').hidden = true;
    $('app').hidden = false;
    $('sign-out').hidden = false;
    $('who').hidden = false;
    $('who').textContent = me.email + (me.role === 'ADMIN' ? ' (admin)' : '');
    $('rollout-panel').hidden = me.role !== 'ADMIN';
    const fromHash = /^#day=(\d{4}-\d{2}-\d{2})$/.exec(window.location.hash);
    day = fromHash ? fromHash[1] : P.time.today(me.timeZone);
    $('day').value = day;
    startLive(me.eventCursor);
    await refresh();
    if (me.role === 'ADMIN') {
      await refreshRollout();
      rolloutTimer = setInterval(() => void refreshRollout(), 30000);
    }
  }

  function signOut(message) {
    clearInterval(rolloutTimer);
    if (live) live.close();
    live = null;
    token = null;
    me = null;
    P.auth.clear();
    $('app').hidden = true;
    $('signin').hidden = false;
    $('sign-out').hidden = true;
    $('who').hidden = true;
    $('event-log').replaceChildren();
    setLive('signed-out');
    signInError(message || '');
  }

  function startLive(baseline) {
    if (live) live.close();
    setLive('connecting');
    live = P.openLive(config, token, baseline, {
      onState: setLive,
      onEvent: (stream, event) => {
        P.logEvent(me, stream, event);
        void refresh();
      },
      onFatal: (code, message) => {
        if (code === 'UNAUTHENTICATED') return signOut(message + ' Sign in again.');
        if (code === 'CURSOR_EXPIRED') {
          // Too long away: the events were cleaned up. Start over from a fresh read.
          alertBox('You were away longer than events are kept: the page reloaded your plan.');
          return void P.gql(config, token, ME_QUERY).then((d) => {
            startLive(d.me.eventCursor);
            return refresh();
          });
        }
        if (live) live.close();
        live = null;
        setLive('stopped');
        alertBox('Live updates stopped: ' + message + '. Reload the page to start them again.');
      },
    });
  }

  /** Reads the page's state; calls made while one is running coalesce into one more read. */
  function refresh() {
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        refreshAgain = false;
        await readSnapshot();
      } while (refreshAgain);
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  async function readSnapshot() {
    if (!token) return;
    const range = P.time.dayRange(me.timeZone, day);
    let data;
    try {
      data = await P.gql(config, token, SNAPSHOT_QUERY, range);
    } catch (err) {
      if (err.code === 'UNAUTHENTICATED') return signOut('Your session ended: sign in again.');
      alertBox(
        'Could not load your plan: ' +
          err.message +
          ' Check that the server is running; the page retries on the next live event.',
      );
      return;
    }
    alertBox('');
    me = Object.assign({}, me, data.me);
    const conflicts = data.conflicts.edges.map((e) => e.node);
    const conflictTaskIds = new Set();
    conflicts.forEach((c) => c.tasks.forEach((t) => conflictTaskIds.add(t.id)));
    const state = {
      me,
      day,
      range,
      tasks: data.schedule,
      conflicts,
      conflictTaskIds,
      operations: data.operations.edges.map((e) => e.node),
      undoState: data.undoState,
    };
    P.renderSchedule(state);
    P.renderConflicts(state, applyAlternative);
    P.renderActivity(state);
  }

  async function refreshRollout() {
    try {
      const data = await P.gql(config, token, P.ROLLOUT_QUERY);
      P.renderRollout(me, data.rollout);
    } catch (err) {
      $('rollout-meta').textContent = 'Rollout figures could not be loaded: ' + err.message;
    }
  }

  /** Runs a mutation that answers an UpdateResult; shows its errors; the live event refreshes. */
  async function mutate(doc, variables, button) {
    if (button) button.disabled = true;
    try {
      const data = await P.gql(config, token, doc, variables);
      const result = data[Object.keys(data)[0]];
      if (!result.ok) alertBox(result.errors.map((e) => e.message + ' (' + e.code + ')').join(' '));
      else alertBox('');
    } catch (err) {
      alertBox('The change was not made: ' + err.message);
    } finally {
      if (button) button.disabled = false;
      await refresh();
    }
  }

  function applyAlternative(conflict, alternative, button) {
    return mutate(
      `mutation Apply($c: ID!, $a: ID!) { resolveConflict(conflictId: $c, alternativeId: $a) { ${RESULT_FIELDS} } }`,
      { c: conflict.id, a: alternative.id },
      button,
    );
  }

  async function start() {
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = P.auth.normalise($('token').value);
      if (!t)
        return signInError(
          'That is not a token: paste the value printed by npx planner token (three dot-separated parts).',
        );
      $('token').value = '';
      void signIn(t);
    });
    $('dev-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      P.auth.devToken($('dev-email').value).then(signIn, (err) => signInError(err.message));
    });
    $('provider-button').addEventListener('click', () => {
      P.auth
        .startProvider(config.oidc)
        .catch((err) => signInError('Provider sign-in failed: ' + err.message));
    });
    $('sign-out').addEventListener('click', () => signOut());
    $('undo-button').addEventListener('click', (ev) =>
      mutate(`mutation Undo { undo { ${RESULT_FIELDS} } }`, {}, ev.currentTarget),
    );
    $('redo-button').addEventListener('click', (ev) =>
      mutate(`mutation Redo { redo { ${RESULT_FIELDS} } }`, {}, ev.currentTarget),
    );
    $('rollout-refresh').addEventListener('click', () => void refreshRollout());
    $('day').addEventListener('change', () => {
      if (!/^\d{4}-\d{2}-\d{2}$/.test($('day').value)) return;
      day = $('day').value;
      window.history.replaceState(null, '', '#day=' + day);
      void refresh();
    });

    try {
      const res = await fetch('/dashboard/config.json');
      config = await res.json();
    } catch (err) {
      return signInError(
        'The dashboard cannot reach its server (' + err.message + '). Is npm start running?',
      );
    }
    $('dev-form').hidden = !config.devSignIn;
    $('provider-signin').hidden = !config.oidc;
    if (config.oidc) {
      try {
        const t = await P.auth.finishProvider(config.oidc);
        if (t) return signIn(t);
      } catch (err) {
        signInError(err.message);
      }
    }
    const saved = P.auth.saved();
    if (saved) await signIn(saved);
  }

  document.addEventListener('DOMContentLoaded', () => void start());
})();
