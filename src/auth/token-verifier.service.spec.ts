import { beforeEach, describe, expect, it } from '@jest/globals';
import { UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../config';
import { CLOCK_SKEW_SECONDS, MAX_CLAIM_LENGTH, TokenVerifier } from './token-verifier.service';

const SECRET = 'test-secret-that-is-long-enough-0123456789';
const OTHER_SECRET = 'another-secret-that-is-long-enough-9876543';

const CLAIMS = { sub: 'user-42', tenant: 'pharmacy-7' };
const MAX_AGE_SECONDS = 3600;
const config = { jwt: { maxAgeSeconds: MAX_AGE_SECONDS } } as AppConfig;
const nowSeconds = () => Math.floor(Date.now() / 1000);

function sign(payload: object, options: jwt.SignOptions = {}, secret: string = SECRET): string {
  return jwt.sign(payload, secret, { algorithm: 'HS256', expiresIn: '5m', ...options });
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** An unsigned token (alg "none"), built by hand as an attacker would. */
function unsignedToken(payload: object): string {
  const now = Math.floor(Date.now() / 1000);
  return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iat: now, exp: now + 300, ...payload })}.`;
}

/** Runs fn expecting an UnauthorizedException, and returns its message. */
function rejection(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UnauthorizedException);
    return (error as UnauthorizedException).message;
  }
  throw new Error('expected an UnauthorizedException, but the call succeeded');
}

describe('TokenVerifier', () => {
  let verifier: TokenVerifier;

  beforeEach(() => {
    verifier = new TokenVerifier(new JwtService({ secret: SECRET }), config);
  });

  describe('verify', () => {
    it('returns the principal of a valid token', () => {
      expect(verifier.verify(sign(CLAIMS))).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
    });

    it('rejects a validly signed token without an expiry', () => {
      const token = jwt.sign(CLAIMS, SECRET, { algorithm: 'HS256' });
      expect(rejection(() => verifier.verify(token))).toMatch(/"exp"/);
    });

    it.each([
      ['1e308', 1e308],
      ['past the maximum age', nowSeconds() + MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS + 60],
    ])('rejects an exp of %s, which would live longer than JWT_MAX_AGE_SECONDS', (_case, exp) => {
      const token = jwt.sign({ ...CLAIMS, exp }, SECRET, { algorithm: 'HS256', noTimestamp: true });
      expect(rejection(() => verifier.verify(token))).toMatch(/JWT_MAX_AGE_SECONDS/);
    });

    it('rejects a lifetime (exp - iat) longer than JWT_MAX_AGE_SECONDS even when exp is near', () => {
      const now = nowSeconds();
      const token = jwt.sign({ ...CLAIMS, iat: now - 2 * MAX_AGE_SECONDS, exp: now + 60 }, SECRET, { algorithm: 'HS256' });
      expect(rejection(() => verifier.verify(token))).toMatch(/"exp" - "iat"/);
    });

    it('rejects an iat in the future beyond the clock skew', () => {
      const now = nowSeconds();
      const token = jwt.sign({ ...CLAIMS, iat: now + CLOCK_SKEW_SECONDS + 60, exp: now + 300 }, SECRET, { algorithm: 'HS256' });
      expect(rejection(() => verifier.verify(token))).toMatch(/future/);
    });

    it(`allows ${CLOCK_SKEW_SECONDS} s of clock skew on iat, exp and the maximum age`, () => {
      const now = nowSeconds();
      const skew = CLOCK_SKEW_SECONDS - 5;
      const ahead = jwt.sign({ ...CLAIMS, iat: now + skew, exp: now + skew + MAX_AGE_SECONDS }, SECRET, { algorithm: 'HS256' });
      const behind = jwt.sign({ ...CLAIMS, iat: now - 600, exp: now - skew }, SECRET, { algorithm: 'HS256' });
      expect(verifier.verify(ahead)).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
      expect(verifier.verify(behind)).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
    });

    it.each([
      ['a lone high surrogate in tenant', { sub: 'user-42', tenant: 't\ud800' }],
      ['a lone low surrogate in sub', { sub: '\udc00u', tenant: 'pharmacy-7' }],
      ['a control character in sub', { sub: 'user\n42', tenant: 'pharmacy-7' }],
      ['a 10 KB tenant', { sub: 'user-42', tenant: 'x'.repeat(10 * 1024) }],
      ['a tenant one character too long', { sub: 'user-42', tenant: 'x'.repeat(MAX_CLAIM_LENGTH + 1) }],
    ])('rejects a correctly signed token with %s', (_case, payload) => {
      expect(rejection(() => verifier.verify(sign(payload)))).toMatch(/well-formed/);
    });

    it('accepts claims of the longest length and with characters outside the BMP (paired surrogates)', () => {
      const tenant = 'x'.repeat(MAX_CLAIM_LENGTH);
      expect(verifier.verify(sign({ sub: 'Zoë 😀', tenant }))).toEqual({ userId: 'Zoë 😀', tenantId: tenant });
    });

    it('rejects an expired token as expired', () => {
      const past = Math.floor(Date.now() / 1000) - 60;
      const token = jwt.sign({ ...CLAIMS, iat: past - 300, exp: past }, SECRET, { algorithm: 'HS256' });
      expect(rejection(() => verifier.verify(token))).toBe('Access token expired');
    });

    it('rejects a token signed with another secret', () => {
      const token = sign(CLAIMS, {}, OTHER_SECRET);
      expect(rejection(() => verifier.verify(token))).toBe('Invalid access token');
    });

    it('rejects an expired token signed with another secret as invalid, not expired', () => {
      const past = Math.floor(Date.now() / 1000) - 60;
      const token = jwt.sign({ ...CLAIMS, exp: past }, OTHER_SECRET, { algorithm: 'HS256' });
      expect(rejection(() => verifier.verify(token))).toBe('Invalid access token');
    });

    it('rejects an unsigned (alg none) token', () => {
      expect(rejection(() => verifier.verify(unsignedToken(CLAIMS)))).toBe('Invalid access token');
    });

    it('rejects an HS512 token even with the right secret', () => {
      const token = sign(CLAIMS, { algorithm: 'HS512' });
      expect(rejection(() => verifier.verify(token))).toBe('Invalid access token');
    });

    it('rejects an HS384 token even with the right secret', () => {
      const token = sign(CLAIMS, { algorithm: 'HS384' });
      expect(rejection(() => verifier.verify(token))).toBe('Invalid access token');
    });

    it('rejects a token whose signature was tampered with', () => {
      const [header, , signature] = sign(CLAIMS).split('.');
      const forged = `${header}.${base64url({ sub: 'admin', tenant: 'pharmacy-7' })}.${signature}`;
      expect(rejection(() => verifier.verify(forged))).toBe('Invalid access token');
    });

    it('rejects a token that is not yet valid', () => {
      const token = sign(CLAIMS, { notBefore: '1h' });
      expect(rejection(() => verifier.verify(token))).toBe('Invalid access token');
    });

    it('rejects garbage', () => {
      expect(rejection(() => verifier.verify('not.a.jwt'))).toBe('Invalid access token');
    });

    it('rejects a missing or empty token', () => {
      expect(rejection(() => verifier.verify(undefined))).toMatch(/missing/i);
      expect(rejection(() => verifier.verify(''))).toMatch(/missing/i);
    });

    it.each([
      ['no sub', { tenant: 'pharmacy-7' }],
      ['no tenant', { sub: 'user-42' }],
      ['an empty sub', { sub: '', tenant: 'pharmacy-7' }],
      ['an empty tenant', { sub: 'user-42', tenant: '' }],
      ['a numeric tenant', { sub: 'user-42', tenant: 7 }],
    ])('rejects a correctly signed token with %s', (_case, payload) => {
      const message = rejection(() => verifier.verify(sign(payload)));
      expect(message).toContain('sub');
      expect(message).toContain('tenant');
    });
  });

  describe('verifyAuthorizationHeader', () => {
    it('asks for the Authorization header when it is missing', () => {
      expect(rejection(() => verifier.verifyAuthorizationHeader(undefined))).toContain('Authorization header');
      expect(rejection(() => verifier.verifyAuthorizationHeader(''))).toContain('Authorization header');
    });

    it('rejects a Basic header', () => {
      expect(rejection(() => verifier.verifyAuthorizationHeader('Basic xyz'))).toContain('Bearer');
    });

    it('rejects "Bearer" without a token', () => {
      expect(rejection(() => verifier.verifyAuthorizationHeader('Bearer'))).toContain('Bearer');
      expect(rejection(() => verifier.verifyAuthorizationHeader('Bearer   '))).toContain('Bearer');
    });

    it('rejects a header with extra parts after the token', () => {
      const header = `Bearer ${sign(CLAIMS)} extra`;
      expect(rejection(() => verifier.verifyAuthorizationHeader(header))).toContain('Bearer');
    });

    it('returns the principal for "Bearer <valid token>"', () => {
      expect(verifier.verifyAuthorizationHeader(`Bearer ${sign(CLAIMS)}`)).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
    });

    it('accepts a lower-case scheme', () => {
      expect(verifier.verifyAuthorizationHeader(`bearer ${sign(CLAIMS)}`)).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
    });

    it('rejects a bearer token signed with another secret', () => {
      const header = `Bearer ${sign(CLAIMS, {}, OTHER_SECRET)}`;
      expect(rejection(() => verifier.verifyAuthorizationHeader(header))).toBe('Invalid access token');
    });

    it('reports an expired bearer token as expired', () => {
      const past = Math.floor(Date.now() / 1000) - 60;
      const header = `Bearer ${jwt.sign({ ...CLAIMS, exp: past }, SECRET, { algorithm: 'HS256' })}`;
      expect(rejection(() => verifier.verifyAuthorizationHeader(header))).toBe('Access token expired');
    });
  });
});
