import { ArgumentsHost, BadRequestException, Catch } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { SchemaValidationException } from './schema-validation.pipe';

/** body-parser's error for a body that is not JSON; Nest's Express adapter wraps it in a BadRequestException. */
function isJsonParseError(error: unknown): error is SyntaxError {
  return error instanceof SyntaxError && (error as SyntaxError & { type?: unknown }).type === 'entity.parse.failed';
}

/**
 * A body that does not parse as JSON answers in the shape of any other invalid body (`message` a list of
 * problems) instead of Nest's single string. Every other BadRequestException goes on to Nest's own handling.
 */
@Catch(BadRequestException)
export class MalformedJsonFilter extends BaseExceptionFilter {
  override catch(exception: BadRequestException, host: ArgumentsHost): void {
    const { cause } = exception;
    super.catch(isJsonParseError(cause) ? new SchemaValidationException([`body is not valid JSON: ${cause.message}`]) : exception, host);
  }
}
