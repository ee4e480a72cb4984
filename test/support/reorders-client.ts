import type { AppProcess, AppResponse } from './app-process';
import { until } from './until';

export interface ReorderItem {
  sku: string;
  onHand: number;
  onOrder?: number;
  leadTimeDays: number;
  unitsSold: number;
}

export function postReorder(app: AppProcess, token: string, body: { salesWindowDays: number; coverDays?: number; items: ReorderItem[] }): Promise<AppResponse> {
  return app.request('/reorders', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

export function getReorder(app: AppProcess, token: string, id: string): Promise<AppResponse> {
  return app.request(`/reorders/${id}`, { headers: { authorization: `Bearer ${token}` } });
}

/** Polls GET /reorders/:id until it is no longer queued or active. */
export function settledReorder(app: AppProcess, token: string, id: string, timeoutMs = 30_000): Promise<AppResponse> {
  return until(() => getReorder(app, token, id), (response) => response.status === 200, timeoutMs, 50);
}
