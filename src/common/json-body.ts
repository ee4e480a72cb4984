import {
  BadRequestException,
  CallHandler,
  ExecutionContext,
  HttpException,
  Injectable,
  NestInterceptor,
  PayloadTooLargeException,
  SetMetadata,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { json } from 'body-parser';
import type { Request, RequestHandler, Response } from 'express';
import type { Observable } from 'rxjs';

/** What every route accepts: far more than any small JSON command needs, far less than it costs to parse megabytes. */
export const DEFAULT_JSON_BODY_LIMIT_BYTES = 100 * 1024;

const JSON_BODY_LIMIT = Symbol('JsonBodyLimit');

/**
 * A route that takes more than DEFAULT_JSON_BODY_LIMIT_BYTES of JSON says so on its handler, e.g. a report's
 * sales lines: `@JsonBodyLimit(8 * 1024 * 1024)`.
 */
export const JsonBodyLimit = (bytes: number) => SetMetadata(JSON_BODY_LIMIT, bytes);

interface BodyParserError {
  status?: number;
  type?: string;
  message?: string;
}

/**
 * Parses JSON request bodies after the guards, with the limit of the route that was matched (createApp turns
 * Express's own parser off). So an unknown route or an unauthenticated request costs no parsing at all, and
 * only the routes that declare a large limit read megabytes. Too large: 413; not JSON: 400; both as JSON errors.
 */
@Injectable()
export class JsonBodyInterceptor implements NestInterceptor {
  private readonly parsers = new Map<number, RequestHandler>();

  constructor(private readonly reflector: Reflector) {}

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    if (context.getType() !== 'http') return next.handle();
    const limit = this.reflector.get<number | undefined>(JSON_BODY_LIMIT, context.getHandler()) ?? DEFAULT_JSON_BODY_LIMIT_BYTES;
    const http = context.switchToHttp();
    await this.parse(http.getRequest<Request>(), http.getResponse<Response>(), limit);
    return next.handle();
  }

  private parse(request: Request, response: Response, limit: number): Promise<void> {
    let parser = this.parsers.get(limit);
    if (!parser) {
      // strict: false lets a body of `null` or `42` reach its schema, which says what is expected.
      parser = json({ limit, strict: false, type: ['application/json', 'application/*+json'] });
      this.parsers.set(limit, parser);
    }
    const parse = parser;
    return new Promise((resolve, reject) => {
      parse(request, response, (error?: unknown) => (error ? reject(toHttpException(error as BodyParserError, limit)) : resolve()));
    });
  }
}

function toHttpException(error: BodyParserError, limit: number): HttpException {
  switch (error.status) {
    case 413:
      return new PayloadTooLargeException(`Request body is larger than this route accepts (${Math.round(limit / 1024)} KB of JSON)`);
    case 415:
      return new UnsupportedMediaTypeException(`Request body must be JSON in UTF-8 (${error.message ?? error.type})`);
    case 400:
      // With the parser's error as cause, MalformedJsonFilter answers it in the shape of every other bad body.
      return error.type === 'entity.parse.failed'
        ? new BadRequestException('Request body is not valid JSON', { cause: error })
        : new BadRequestException(`Bad request body (${error.type})`);
    default:
      return new HttpException(error.message ?? 'Bad request body', error.status ?? 400);
  }
}
