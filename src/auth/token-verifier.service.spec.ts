import { beforeEach, describe, expect, it } from '@jest/globals';
import { UnauthorizedException } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import jwt from 'jsonwebtoken';
import { TokenVerifier } from './token-verifier.service';

const SECRET = 'test-secret-that-is-long-enough-0123456789';
const OTHER_SECRET = 'another-secret-that-is-long-enough-9876543';

const CLAIMS = { sub: 'user-42', tenant: 'pharmacy-7' };

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
    verifier = new TokenVerifier(new JwtService({ secret: SECRET }));
  });

  describe('verify', () => {
    it('returns the principal of a valid token', () => {
      expect(verifier.verify(sign(CLAIMS))).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
    });

    it('accepts a valid token without an expiry', () => {
      const token = jwt.sign(CLAIMS, SECRET, { algorithm: 'HS256' });
      expect(verifier.verify(token)).toEqual({ userId: 'user-42', tenantId: 'pharmacy-7' });
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
