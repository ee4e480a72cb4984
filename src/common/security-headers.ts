import type { SecurityHeadersOptions } from '@nestjs/common';
import type { CorsOptions } from '@nestjs/common/interfaces/external/cors-options.interface';
import type { AppConfig } from '../config';

/**
 * The Content-Security-Policy of every response. The HTML we serve is bull-board (/admin/queues) and Swagger UI
 * (/docs): both load only their own scripts; both use inline styles; bull-board loads IBM Plex from Google Fonts;
 * Swagger UI draws its icons as data: images. Nothing may frame us: the dashboard can retry and clean jobs.
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:', 'https://fonts.gstatic.com'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'", 'https://fonts.googleapis.com'],
};

/**
 * For Nest's `app.useSecurityHeaders()` (helmet 8's headers and defaults, built in): our CSP; HSTS and
 * upgrade-insecure-requests only in production, where Render serves HTTPS.
 */
export function securityHeadersOptions(config: Pick<AppConfig, 'nodeEnv'>): SecurityHeadersOptions {
  const production = config.nodeEnv === 'production';
  return {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { ...CONTENT_SECURITY_POLICY, ...(production ? { 'upgrade-insecure-requests': true } : {}) },
    },
    xFrameOptions: { action: 'deny' },
    strictTransportSecurity: production ? { maxAge: 365 * 24 * 3600, includeSubDomains: true } : false,
  };
}

/** CORS_ORIGINS for HTTP; the Socket.io adapter applies the same list to its handshakes. */
export function corsOptions(config: Pick<AppConfig, 'http'>): CorsOptions {
  const { corsOrigins } = config.http;
  return { origin: corsOrigins === '*' ? '*' : [...corsOrigins], maxAge: 600 };
}
