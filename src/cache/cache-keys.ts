/**
 * Cache keys always start with the tenant, so no code path can serve one pharmacy's data to another.
 * Parts are percent-encoded so a ":" inside a part cannot forge another key.
 */
export function tenantKey(tenantId: string, ...parts: string[]): string {
  return ['t', tenantId, ...parts].map(encodeURIComponent).join(':');
}

export function tenantTag(tenantId: string, name: string): string {
  return `tenant:${encodeURIComponent(tenantId)}:${name}`;
}
