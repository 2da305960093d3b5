/**
 * Authentication: HS256 JWTs minted by `planner token` (and tests), verified on every HTTP request
 * and WebSocket connection. Only HS256 is accepted; `iss`, `sub` (user id) and `exp` are required.
 * Time is passed in (`now`) so that an injected clock governs expiry, not the wall clock.
 *
 * The secret is turned into a KeyObject once (tokenKey): given a string, jsonwebtoken tries
 * `crypto.createPublicKey` on every call first (it throws, then falls back to a secret key), which
 * cost half the CPU of a trivial authenticated request.
 */
import { createSecretKey, KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { AuthContext } from '../resolvers';

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
  const { sub, exp, role } = payload;
  if (typeof sub !== 'string' || sub.length === 0) throw new AuthError('token rejected: no subject');
  if (!UUID.test(sub)) throw new AuthError('token rejected: subject is not a user id');
  if (typeof exp !== 'number') throw new AuthError('token rejected: no expiry');
  const safeRole: Role = role === 'ADMIN' ? 'ADMIN' : 'USER';
  const userId = sub.toLowerCase();
  return { userId, actor: `user:${userId}`, role: safeRole, expiresAt: exp };
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
