import { ArgumentMetadata, BadRequestException, Injectable, StandardSchemaValidationPipe } from '@nestjs/common';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { describeIssues } from './validation-problems';

/**
 * 400 `{ statusCode: 400, error: 'Bad Request', message: [every problem] }`: the one shape of every invalid input.
 * It keeps the issues too: global pipes also run on socket payloads, whose ack names the payload, not a body.
 */
export class SchemaValidationException extends BadRequestException {
  constructor(
    readonly problems: string[],
    readonly issues: readonly StandardSchemaV1.Issue[] = [],
  ) {
    super({ statusCode: 400, error: 'Bad Request', message: problems });
  }
}

/** No JSON parser ran (no body, or another Content-Type): the schema's own message would not say why. */
export const MISSING_BODY_PROBLEM = 'body is missing or not JSON: send a JSON object with the header Content-Type: application/json';

/**
 * Nest's StandardSchemaValidationPipe, answering with our problem list. Registered globally (HttpApiModule), it
 * validates every parameter declared with a schema (`@Body({ schema })`, `@Param('id', { schema })`,
 * `@Query({ schema })`) and hands the handler the schema's output (trimmed, defaulted); parameters without a
 * schema pass untouched.
 */
@Injectable()
export class SchemaValidationPipe extends StandardSchemaValidationPipe {
  override async transform<T = unknown>(value: T, metadata: ArgumentMetadata): Promise<T> {
    const { schema } = metadata;
    if (!schema || !this.toValidate(metadata)) return value;
    this.stripProtoKeys(value);
    const result = await this.validate<T>(value, schema, this.validateOptions);
    if (!result.issues) return this.isTransformEnabled ? result.value : value;
    if (metadata.type === 'body' && metadata.data === undefined && value === undefined) throw new SchemaValidationException([MISSING_BODY_PROBLEM]);
    throw new SchemaValidationException(describeIssues(result.issues, subjectOf(metadata)), result.issues);
  }
}

/** What a problem at the root of the value is about: `body`, the parameter's name, `query` or `path parameters`. */
function subjectOf({ type, data }: ArgumentMetadata): string {
  if (data !== undefined) return data;
  if (type === 'query') return 'query';
  if (type === 'param') return 'path parameters';
  return type === 'body' ? 'body' : 'value';
}
