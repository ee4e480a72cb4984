import jwt from 'jsonwebtoken';
import type { AppProcess, AppResponse } from './app-process';
import { until } from './until';

export const JWT_SECRET = 'e2e-secret-for-reports-and-queues-0123456789';

export function tokenFor(userId: string, tenantId: string, expiresIn: `${number}m` = '10m'): string {
  return jwt.sign({ sub: userId, tenant: tenantId }, JWT_SECRET, { algorithm: 'HS256', expiresIn });
}

export interface Sale {
  sku: string;
  quantity: number;
  unitPrice: number;
  soldAt: string;
}

/** A distinct small report per seed, so every POST is a new job. */
export function salesFor(seed: number, lines = 5): Sale[] {
  return Array.from({ length: lines }, (_unused, index) => ({
    sku: `SKU-${seed}-${index % 3}`,
    quantity: 1 + (index % 4),
    unitPrice: 2.5,
    soldAt: `2026-11-0${1 + (index % 3)}T10:00:00Z`,
  }));
}

export function postReport(app: AppProcess, token: string, sales: Sale[]): Promise<AppResponse> {
  return app.request('/reports', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'sales-summary', sales }),
  });
}

export function getReport(app: AppProcess, token: string, id: string): Promise<AppResponse> {
  return app.request(`/reports/${id}`, { headers: { authorization: `Bearer ${token}` } });
}

/** Polls GET /reports/:id until it is no longer queued or active. */
export function settledReport(app: AppProcess, token: string, id: string, timeoutMs = 30_000): Promise<AppResponse> {
  return until(
    () => getReport(app, token, id),
    (response) => response.status === 200,
    timeoutMs,
    50,
  );
}
