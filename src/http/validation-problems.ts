import type { StandardSchemaV1 } from '@standard-schema/spec';

/** More problems than this are summarised in one final entry, so a body of 50,000 bad lines does not produce a megabyte error. */
export const MAX_PROBLEMS = 100;

/**
 * One line per issue, each starting with where it is: `sales[3].quantity must be a positive integer`. `subject`
 * names the validated value itself (`body`, or the parameter's name), used alone for an issue at its root.
 * At most MAX_PROBLEMS lines, then `… and N more problems`.
 */
export function describeIssues(issues: readonly StandardSchemaV1.Issue[], subject: string): string[] {
  const shown = issues.length > MAX_PROBLEMS ? issues.slice(0, MAX_PROBLEMS) : issues;
  const problems = shown.map((issue) => describeIssue(issue, subject));
  const hidden = issues.length - shown.length;
  if (hidden > 0) problems.push(`… and ${hidden} more ${hidden === 1 ? 'problem' : 'problems'}`);
  return problems;
}

/** Zod's unknown-key issue, which carries the keys; its own message ("Unrecognized keys: ...") does not say where. */
interface UnknownKeysIssue extends StandardSchemaV1.Issue {
  readonly code: 'unrecognized_keys';
  readonly keys: readonly string[];
}

function isUnknownKeysIssue(issue: StandardSchemaV1.Issue): issue is UnknownKeysIssue {
  const candidate = issue as Partial<UnknownKeysIssue>;
  return candidate.code === 'unrecognized_keys' && Array.isArray(candidate.keys);
}

function describeIssue(issue: StandardSchemaV1.Issue, subject: string): string {
  const where = formatPath(issue.path ?? [], subject);
  if (isUnknownKeysIssue(issue)) {
    const keys = issue.keys.map((key) => JSON.stringify(key)).join(', ');
    return `${where} has unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${keys}`;
  }
  return `${where} ${issue.message}`;
}

/** ['sales', 3, 'quantity'] -> sales[3].quantity; the empty path is the subject itself. */
function formatPath(path: ReadonlyArray<PropertyKey | StandardSchemaV1.PathSegment>, subject: string): string {
  let text = '';
  for (const entry of path) {
    const segment = typeof entry === 'object' ? entry.key : entry;
    // A body that is an array: body[0].sku rather than a bare [0].sku.
    if (typeof segment === 'number') text += `${text === '' ? subject : ''}[${segment}]`;
    else text += text === '' ? String(segment) : `.${String(segment)}`;
  }
  return text === '' ? subject : text;
}
