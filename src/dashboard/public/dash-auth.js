// Planner dashboard: signing in. A pasted token; the identity provider (authorization code +
// PKCE, S256) when config.json names one; the development sign-in by email under PLANNER_DEV_MODE.
// The token is kept in sessionStorage (this tab only, gone when it closes).
(function () {
  'use strict';
  const P = (window.Planner = window.Planner || {});
  const TOKEN_KEY = 'planner.dashboard.token';
  const PKCE_KEY = 'planner.dashboard.pkce';

  P.auth = {
    saved() {
      return window.sessionStorage.getItem(TOKEN_KEY);
    },
    save(token) {
      window.sessionStorage.setItem(TOKEN_KEY, token);
    },
    clear() {
      window.sessionStorage.removeItem(TOKEN_KEY);
    },

    /** A pasted value: "Bearer xxx" or the bare token; null when it is not a JWT. */
    normalise(raw) {
      const token = String(raw || '')
        .trim()
        .replace(/^Bearer\s+/i, '');
      return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token) ? token : null;
    },

    /** POST /dashboard/dev-token: a server token for this email (dev mode only). */
    async devToken(email) {
      const res = await fetch('/dashboard/dev-token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: email }),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.error || 'dev sign-in failed (HTTP ' + res.status + ')');
      return body.token;
    },

    /** Starts the provider sign-in: discovery, PKCE verifier kept in sessionStorage, redirect. */
    async startProvider(oidc) {
      const discovery = await fetchJson(oidc.issuer.replace(/\/$/, '') + '/.well-known/openid-configuration');
      const verifier = base64url(window.crypto.getRandomValues(new Uint8Array(32)));
      const state = base64url(window.crypto.getRandomValues(new Uint8Array(16)));
      const digest = await window.crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      const redirectUri = window.location.origin + '/dashboard/';
      window.sessionStorage.setItem(
        PKCE_KEY,
        JSON.stringify({ verifier, state, redirectUri, tokenEndpoint: discovery.token_endpoint }),
      );
      const url = new URL(discovery.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', oidc.clientId);
      url.searchParams.set('redirect_uri', redirectUri);
      url.searchParams.set('scope', oidc.scope);
      url.searchParams.set('state', state);
      url.searchParams.set('code_challenge', base64url(new Uint8Array(digest)));
      url.searchParams.set('code_challenge_method', 'S256');
      if (oidc.audience) url.searchParams.set('audience', oidc.audience); // Auth0 wants it; others ignore it
      window.location.assign(url.toString());
    },

    /**
     * Finishes the provider sign-in when the page is the redirect target (?code=&state=): checks
     * the state, exchanges the code with the verifier, cleans the URL. Resolves the access token,
     * or null when this page load is not a redirect back.
     */
    async finishProvider(oidc) {
      const params = new URLSearchParams(window.location.search);
      if (!params.has('code') && !params.has('error')) return null;
      const pending = JSON.parse(window.sessionStorage.getItem(PKCE_KEY) || 'null');
      window.sessionStorage.removeItem(PKCE_KEY);
      window.history.replaceState(null, '', window.location.pathname + window.location.hash);
      if (params.has('error'))
        throw new Error(
          'The identity provider refused: ' + (params.get('error_description') || params.get('error')),
        );
      if (!pending || pending.state !== params.get('state'))
        throw new Error('The sign-in answer does not match a sign-in started here: try again.');
      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: pending.redirectUri,
        client_id: oidc.clientId,
        code_verifier: pending.verifier,
      });
      const res = await fetch(pending.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok || !body.access_token)
        throw new Error(
          'The identity provider did not issue a token: ' +
            (body.error_description || body.error || res.status),
        );
      return body.access_token;
    },
  };

  async function fetchJson(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(url + ' answered HTTP ' + res.status);
    return res.json();
  }

  function base64url(bytes) {
    let s = '';
    bytes.forEach((b) => (s += String.fromCharCode(b)));
    return window.btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
})();
