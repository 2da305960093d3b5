/**
 * Authentication, verified on every HTTP request and WebSocket connection. Two kinds of token:
 *   - the server's own HS256 JWTs minted by `planner token` (and tests): `iss` = PLANNER_JWT_ISSUER,
 *     `sub` (user id) and `exp` required;
 *   - an identity provider's tokens (RS/PS/ES/EdDSA, only the configured algorithms) verified with
 *     `jose` against the provider's JWKS (Authenticator, JwksKeys), the user matched by subject.
 * Either way the role and "valid after" come from the stored user, through the per-instance
 * UserAuthCache (no query per request), never from a claim in the token.
 * Time is passed in (`now`) so that an injected clock governs expiry, not the wall clock.
 *
 * The secret is turned into a KeyObject once (tokenKey): given a string, jsonwebtoken tries
 * `crypto.createPublicKey` on every call first (it throws, then falls back to a secret key), which
 * cost half the CPU of a trivial authenticated request.
 */
import { createSecretKey, KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { OidcConfig } from '../config/config';
import type { AuthContext } from '../resolvers';
import type { UserAuthCache } from '../world/user-auth-cache';
import { EmailTakenError, type UserAuthRow, type UserService } from '../world/user-service';

/** Why a token was refused. The message is safe to log; clients only ever see UNAUTHENTICATED. */
export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export type Role = 'USER' | 'ADMIN';

export interface TokenSubject {
  userId: string;
  email: string;
  role: Role;
}

const ALGORITHM = 'HS256';

/** User ids are UUIDs; a token whose `sub` is anything else is refused (UNAUTHENTICATED), never looked up. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A secret as given, or the key made from it. Make the key once (tokenKey) on hot paths. */
export type TokenSecret = string | KeyObject;

/** The HS256 key for a secret (UTF-8 bytes of the string), made once and reused for every token. */
export function tokenKey(secret: TokenSecret): KeyObject {
  return secret instanceof KeyObject ? secret : createSecretKey(Buffer.from(secret, 'utf8'));
}

function epochSeconds(now: Date): number {
  return Math.floor(now.getTime() / 1000);
}

/**
 * Mints an HS256 JWT: `sub` = user id, `iss` = issuer, `iat` = now, `exp` = now + ttlSeconds,
 * plus `email` and `role` claims.
 */
export function mintToken(
  secret: TokenSecret,
  issuer: string,
  subject: TokenSubject,
  ttlSeconds: number,
  now: Date,
): string {
  const iat = epochSeconds(now);
  return jwt.sign(
    { email: subject.email, role: subject.role, iat, exp: iat + ttlSeconds },
    tokenKey(secret),
    {
      algorithm: ALGORITHM,
      issuer,
      subject: subject.userId,
    },
  );
}

/**
 * Verifies a JWT (signature with HS256 only, issuer, expiry against `now`) and returns the auth
 * context. Throws AuthError when the token is malformed, forged, expired, lacks a claim, or its
 * subject is not a user id (UUID).
 */
export function verifyToken(secret: TokenSecret, issuer: string, token: string, now: Date): AuthContext {
  return verifyTokenWindow(secret, issuer, token, now).ctx;
}

/**
 * verifyToken, also returning the window of instants in which the same token verifies the same way
 * (epoch seconds: from `nbf`, if any, to before `exp`): a signature, issuer and subject once checked
 * stay checked, only the clock moves.
 */
function verifyTokenWindow(
  secret: TokenSecret,
  issuer: string,
  token: string,
  now: Date,
): { ctx: AuthContext; notBefore: number | null } {
  let payload: string | jwt.JwtPayload;
  try {
    payload = jwt.verify(token, tokenKey(secret), {
      algorithms: [ALGORITHM],
      issuer,
      clockTimestamp: epochSeconds(now),
      clockTolerance: 0,
    });
  } catch (err) {
    throw new AuthError(`token rejected: ${(err as Error).message}`);
  }
  if (typeof payload === 'string') throw new AuthError('token rejected: payload is not an object');
  const { sub, exp, role, iat, nbf } = payload;
  if (typeof sub !== 'string' || sub.length === 0) throw new AuthError('token rejected: no subject');
  if (!UUID.test(sub)) throw new AuthError('token rejected: subject is not a user id');
  if (typeof exp !== 'number') throw new AuthError('token rejected: no expiry');
  const safeRole: Role = role === 'ADMIN' ? 'ADMIN' : 'USER';
  const userId = sub.toLowerCase();
  return {
    ctx: {
      userId,
      actor: `user:${userId}`,
      role: safeRole,
      expiresAt: exp,
      ...(typeof iat === 'number' ? { issuedAt: iat } : {}),
    },
    notBefore: typeof nbf === 'number' ? nbf : null,
  };
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/**
 * Extracts the token from an `Authorization` value: exactly `Bearer <jwt>` (scheme as written,
 * one space, three base64url segments). Returns null for anything else, including a missing value.
 */
export function parseBearer(header: unknown): string | null {
  if (typeof header !== 'string') return null;
  const m = BEARER.exec(header);
  return m ? m[1]! : null;
}

/**
 * Resolves an `Authorization` value to an auth context, or null when it is missing or bad.
 * `onReject` receives the reason for a present-but-refused value (for logging).
 */
export function authenticate(
  header: unknown,
  secret: TokenSecret,
  issuer: string,
  now: Date,
  onReject?: (reason: string) => void,
): AuthContext | null {
  if (header === undefined || header === null || header === '') return null;
  const token = parseBearer(header);
  if (token === null) {
    onReject?.('authorization value is not "Bearer <jwt>"');
    return null;
  }
  try {
    return verifyToken(secret, issuer, token, now);
  } catch (err) {
    onReject?.((err as Error).message);
    return null;
  }
}

/** Fetches a JWKS document (injectable for tests). */
export type JwksFetch = (url: string) => Promise<unknown>;

/** The default JWKS fetch: GET with a 5 s timeout, JSON body, non-2xx refused. */
export const fetchJwks: JwksFetch = async (url) => {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(5000),
    headers: { accept: 'application/json' },
  });
  if (!res.ok) throw new Error(`JWKS ${url} answered HTTP ${res.status}`);
  return res.json();
};

/**
 * The provider's signing keys, cached. Fetched on first use, again after maxAgeMs, and when a token
 * names a `kid` the cached set lacks — but never twice within cooldownMs (measured on the injected
 * clock), so a flood of tokens with made-up kids costs the provider at most one fetch per cooldown.
 * Concurrent fetches are shared. A failed fetch keeps the previous keys.
 */
export class JwksKeys {
  private keys: JWTVerifyGetKey | null = null;
  private kids = new Set<string>();
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private inflight: Promise<void> | null = null;
  /** JWKS documents fetched (tests, figures). */
  fetches = 0;
  /** Bumped by every successful fetch: what was verified with older keys is verified again. */
  keysVersion = 0;

  constructor(
    private readonly url: string,
    private readonly opts: { cooldownMs: number; maxAgeMs: number; now: () => Date; fetch?: JwksFetch },
  ) {}

  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.attemptedAt = this.opts.now().getTime();
      this.fetches++;
      try {
        const doc = (await (this.opts.fetch ?? fetchJwks)(this.url)) as JSONWebKeySet;
        if (!doc || typeof doc !== 'object' || !Array.isArray(doc.keys)) {
          throw new Error(`JWKS ${this.url} has no "keys" array`);
        }
        this.keys = createLocalJWKSet(doc);
        this.kids = new Set(doc.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
        this.fetchedAt = this.attemptedAt;
        this.keysVersion++;
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** jose's key lookup: picks the key by `kid`/`alg` from the cached (or refreshed) set. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const now = this.opts.now().getTime();
    const mayFetch = now - this.attemptedAt >= this.opts.cooldownMs;
    const stale = this.keys === null || now - this.fetchedAt > this.opts.maxAgeMs;
    const unknownKid = header.kid !== undefined && !this.kids.has(header.kid);
    if ((stale || unknownKid) && (mayFetch || this.inflight)) {
      try {
        await this.refresh();
      } catch (err) {
        if (this.keys === null) throw err;
      }
    }
    if (this.keys === null) throw new Error('provider keys unavailable (JWKS fetch failed recently)');
    return this.keys(header, token);
  };
}

/** Reads a claim by exact name first (URL-like names contain dots), then as a dotted path. */
export function readClaim(payload: JWTPayload, name: string): unknown {
  if (name in payload) return payload[name];
  let v: unknown = payload;
  for (const part of name.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The role a provider claim maps to: ADMIN when the claim (string or array) holds adminValue. */
export function mappedRole(payload: JWTPayload, oidc: OidcConfig): Role | null {
  if (oidc.roleClaim === null) return null;
  const v = readClaim(payload, oidc.roleClaim);
  const values = Array.isArray(v) ? v : typeof v === 'string' ? v.split(/[\s,]+/) : [];
  return values.includes(oidc.adminValue) ? 'ADMIN' : 'USER';
}

export interface AuthenticatorOptions {
  /** The server's own HS256 key (tokenKey) and issuer. */
  hsKey: KeyObject;
  hsIssuer: string;
  /** The identity provider, or null (own tokens only). */
  oidc: OidcConfig | null;
  users: UserService;
  cache: UserAuthCache;
  now: () => Date;
  /** JWKS fetch (tests); default fetchJwks. */
  fetch?: JwksFetch;
  /** A refused token's reason (debug) and refusals an operator should see (warn: email collisions). */
  log: {
    debug(msg: string, f?: Record<string, unknown>): void;
    warn(msg: string, f?: Record<string, unknown>): void;
  };
}

interface SubjectEntry {
  userId: string;
  email: string;
  role: Role | null;
}

interface VerifiedToken {
  payload: JWTPayload;
  keysVersion: number;
  /** Epoch ms: accepted while from <= now < until (exp / nbf with the skew). */
  until: number;
  from: number;
}

/** Verified provider tokens kept at most; beyond, the map is cleared. */
const MAX_VERIFIED = 50_000;

/** Subjects kept at most; beyond, the map is cleared (each signs in once more). */
const MAX_SUBJECTS = 100_000;

/**
 * Turns an `Authorization` value into an AuthContext: HS256 tokens (alg HS256) with the server's
 * key, every other alg with the provider's keys (only the configured algorithms). Then the stored
 * user decides: unknown user, or a token issued before the user's valid-after → refused; role =
 * the stored role. A provider subject seen for the first time (or with a new email or mapped role)
 * signs in through UserService.signInProvider; after that, a cache hit costs no query.
 */
export class Authenticator {
  readonly jwks: JwksKeys | null;
  private readonly subjects = new Map<string, SubjectEntry>();
  /**
   * Provider tokens already verified (signature, iss, aud), by token text: an ECDSA/RSA check costs
   * ~0.15 ms, an HS256 one ~0.01 ms, and a client sends the same token for many requests. A hit
   * still checks exp/nbf against now; entries verified with an older key set are not used.
   */
  private readonly verified = new Map<string, VerifiedToken>();
  /** Provider signatures checked (tests, figures). */
  signatureChecks = 0;
  /**
   * The server's own (HS256) tokens already verified, by token text: the HMAC, the base64 and
   * JSON decoding and jsonwebtoken's checks were ~8% of a `{ me { id } }` request, and a client
   * sends the same token for many requests. A hit still checks exp/nbf against now and the stored
   * user's state (revocation, role) like a miss; the key never changes while the process runs.
   */
  private readonly hsVerified = new Map<string, { ctx: AuthContext; notBefore: number | null }>();
  /** HS256 signatures checked (tests, figures). */
  hsSignatureChecks = 0;

  private verifyHs(token: string, now: Date): AuthContext {
    this.hsSignatureChecks++;
    const v = verifyTokenWindow(this.opts.hsKey, this.opts.hsIssuer, token, now);
    if (this.hsVerified.size >= MAX_VERIFIED) this.hsVerified.clear();
    this.hsVerified.set(token, v);
    return v.ctx;
  }

  constructor(private readonly opts: AuthenticatorOptions) {
    this.jwks = opts.oidc
      ? new JwksKeys(opts.oidc.jwksUrl, {
          cooldownMs: opts.oidc.jwksCooldownMs,
          maxAgeMs: opts.oidc.jwksMaxAgeMs,
          now: opts.now,
          fetch: opts.fetch,
        })
      : null;
  }

  /**
   * The context for an `Authorization` value, or null when it is missing or refused (reason logged).
   * Throws only on a fault (the user's state could not be read), never for a bad token.
   */
  async authenticate(header: unknown): Promise<AuthContext | null> {
    if (header === undefined || header === null || header === '') return null;
    const token = parseBearer(header);
    if (token === null) {
      this.opts.log.debug('token refused', { reason: 'authorization value is not "Bearer <jwt>"' });
      return null;
    }
    try {
      return await this.verify(token);
    } catch (err) {
      if (err instanceof EmailTakenError) {
        this.opts.log.warn('provider token refused', { reason: err.message });
      } else if (err instanceof AuthError) {
        this.opts.log.debug('token refused', { reason: err.message });
      } else {
        throw err; // a fault (the user's state unreadable), not a refusal: the request reports it
      }
      return null;
    }
  }

  /** Verifies a token and applies the stored user's state; throws AuthError / EmailTakenError. */
  async verify(token: string): Promise<AuthContext> {
    const hit = this.hsVerified.get(token);
    if (hit) {
      // Verified before (signature, issuer, subject): only the clock is checked again.
      const nowS = epochSeconds(this.opts.now());
      if (nowS < hit.ctx.expiresAt && (hit.notBefore === null || hit.notBefore <= nowS)) {
        return this.withStoredState(hit.ctx, await this.opts.cache.get(hit.ctx.userId));
      }
    }
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new AuthError('token rejected: malformed header');
    }
    const now = this.opts.now();
    if (alg === 'HS256') {
      const ctx = this.verifyHs(token, now);
      return this.withStoredState(ctx, await this.opts.cache.get(ctx.userId));
    }
    const oidc = this.opts.oidc;
    if (!oidc || !this.jwks)
      throw new AuthError(`token rejected: alg ${String(alg)} and no provider configured`);
    const payload = await this.verifyProvider(token, oidc, this.jwks, now);
    const subject = readClaim(payload, oidc.subjectClaim);
    const email = readClaim(payload, oidc.emailClaim);
    if (typeof subject !== 'string' || subject === '')
      throw new AuthError(`provider token rejected: no ${oidc.subjectClaim}`);
    if (typeof email !== 'string' || email === '')
      throw new AuthError(`provider token rejected: no ${oidc.emailClaim}`);
    // An address the provider says is unverified could be anyone's: never let it name an account.
    if (payload['email_verified'] === false)
      throw new AuthError('provider token rejected: email not verified');
    const role = mappedRole(payload, oidc);
    const key = `${oidc.issuer}\n${subject}`;
    let entry = this.subjects.get(key);
    let row: UserAuthRow | null;
    if (entry && entry.email === email && entry.role === role) {
      row = await this.opts.cache.get(entry.userId);
    } else {
      const name = readClaim(payload, oidc.nameClaim);
      row = await this.opts.users.signInProvider({
        issuer: oidc.issuer,
        subject,
        email,
        name: typeof name === 'string' ? name : undefined,
        role,
      });
      this.opts.cache.put(row);
      if (this.subjects.size >= MAX_SUBJECTS) this.subjects.clear();
      entry = { userId: row.id, email, role };
      this.subjects.set(key, entry);
    }
    const ctx: AuthContext = {
      userId: entry.userId,
      actor: `user:${entry.userId}`,
      role: 'USER',
      expiresAt: payload.exp!,
      ...(typeof payload.iat === 'number' ? { issuedAt: payload.iat } : {}),
    };
    return this.withStoredState(ctx, row);
  }

  private async verifyProvider(
    token: string,
    oidc: OidcConfig,
    jwks: JwksKeys,
    now: Date,
  ): Promise<JWTPayload> {
    const t = now.getTime();
    const hit = this.verified.get(token);
    if (hit && hit.keysVersion === jwks.keysVersion) {
      if (t >= hit.until) throw new AuthError('provider token rejected: "exp" claim timestamp check failed');
      if (t < hit.from) throw new AuthError('provider token rejected: "nbf" claim timestamp check failed');
      return hit.payload;
    }
    let payload: JWTPayload;
    try {
      this.signatureChecks++;
      ({ payload } = await jwtVerify(token, jwks.getKey, {
        algorithms: [...oidc.algorithms],
        issuer: oidc.issuer,
        audience: [...oidc.audience],
        currentDate: now,
        clockTolerance: oidc.clockSkewSeconds,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      throw new AuthError(`provider token rejected: ${(err as Error).message}`);
    }
    const skewMs = oidc.clockSkewSeconds * 1000;
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    this.verified.set(token, {
      payload,
      keysVersion: jwks.keysVersion,
      until: payload.exp! * 1000 + skewMs,
      from: typeof payload.nbf === 'number' ? payload.nbf * 1000 - skewMs : -Infinity,
    });
    return payload;
  }

  private withStoredState(ctx: AuthContext, row: UserAuthRow | null): AuthContext {
    const state = stateCheck(ctx, row);
    if (state !== null) throw new AuthError(`token rejected: ${state}`);
    return { ...ctx, role: row!.role };
  }

  /**
   * Re-checks a live connection's context against the cached state (synchronous, no query): the
   * stored role now, or null when the user was revoked or removed since. Unknown to the cache: as is.
   */
  current(ctx: AuthContext): AuthContext | null {
    const row = this.opts.cache.peek(ctx.userId);
    if (row === undefined) return ctx;
    if (stateCheck(ctx, row) !== null) return null;
    return row!.role === ctx.role ? ctx : { ...ctx, role: row!.role };
  }
}

/** Why the stored state refuses this context, or null when it is accepted. */
function stateCheck(ctx: AuthContext, row: UserAuthRow | null): string | null {
  if (row === null) return 'no such user';
  if (row.validAfter !== null) {
    const iat = ctx.issuedAt;
    if (iat === undefined || iat * 1000 < row.validAfter.getTime())
      return 'issued before the user was revoked';
  }
  return null;
}
