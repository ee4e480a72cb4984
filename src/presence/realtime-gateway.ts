import {
  applyDecorators,
  ArgumentsHost,
  Catch,
  HttpException,
  Logger,
  StandardSchemaValidationPipe,
  UseFilters,
  UsePipes,
} from '@nestjs/common';
import { BaseWsExceptionFilter, SubscribeMessage, WebSocketGateway, WsException } from '@nestjs/websockets';
import type { ErrorAck } from './presence.constants';
import { MAX_FRAME_BYTES, PRESENCE_NAMESPACE } from './presence.constants';
import type { ClientEventName, ClientEvents } from './realtime-events';
import { describeIssues, SchemaValidationException } from '../http';
import type { StandardSchemaV1 } from '@standard-schema/spec';

/** The error ack's text for a refused payload: the API-wide problem list, about the payload (`sku must not be empty`, `payload has unknown key "x"`). */
const payloadProblems = (issues: readonly StandardSchemaV1.Issue[]): string => describeIssues(issues, 'payload').join('; ');

/**
 * `@MessageBody({ schema })` failures become a WsException listing each problem. In the app the global HTTP pipe
 * (src/http) validates first; this one makes a realtime gateway validate wherever it runs.
 */
export class ClientEventValidationPipe extends StandardSchemaValidationPipe {
  constructor() {
    super();
    this.exceptionFactory = (issues) => new WsException(payloadProblems(issues));
  }
}

/**
 * Whatever a client event's handler throws (a refused payload, a bug) goes back as the error ack `{ error }`,
 * never as socket.io's `exception` event, which clients waiting on an ack would not see.
 */
@Catch()
export class ClientEventErrorFilter extends BaseWsExceptionFilter {
  private readonly logger = new Logger('Realtime');

  override catch(exception: unknown, host: ArgumentsHost): void {
    const ack = host.getArgs().find((arg): arg is (reply: ErrorAck) => void => typeof arg === 'function');
    ack?.({ error: this.describe(exception, host.switchToWs().getPattern()) });
  }

  private describe(exception: unknown, event: string): string {
    if (exception instanceof WsException) return String(exception.message);
    // The global pipe ran before ours: same problems, told about the payload.
    if (exception instanceof SchemaValidationException && exception.issues.length > 0) return payloadProblems(exception.issues);
    if (exception instanceof HttpException && exception.getStatus() < 500) {
      const { message } = exception.getResponse() as { message?: unknown };
      return Array.isArray(message) ? message.join('; ') : String(message ?? exception.message);
    }
    this.logger.error(`${event} handler failed: ${exception instanceof Error ? (exception.stack ?? exception.message) : String(exception)}`);
    return 'internal error';
  }
}

/**
 * A gateway on the realtime namespace, for presence and features alike: the handshake's JWT check and the
 * per-socket guard (unknown and oversize events, rate limit) apply to its events, `@MessageBody({ schema })`
 * is validated, and errors answer as `{ error }` acks. In an APP_ROLE=worker process it serves nothing
 * (RedisIoAdapter); emit with RealtimeService, which works in every process.
 */
export const RealtimeGateway = (): ClassDecorator =>
  applyDecorators(
    WebSocketGateway({ namespace: PRESENCE_NAMESPACE, maxHttpBufferSize: MAX_FRAME_BYTES, cors: { origin: true } }),
    UsePipes(new ClientEventValidationPipe()),
    UseFilters(new ClientEventErrorFilter()),
  );

/**
 * `@SubscribeMessage(event)` for an event declared in ClientEvents: a name not declared there, or a first
 * parameter that does not accept its declared payload, does not compile. Put `@MessageBody({ schema })` on
 * that first parameter.
 */
export function OnClientEvent<E extends ClientEventName>(event: E) {
  return <Handler extends (payload: ClientEvents[E], ...rest: never[]) => unknown>(
    target: object,
    key: string | symbol,
    descriptor: TypedPropertyDescriptor<Handler>,
  ): TypedPropertyDescriptor<Handler> => SubscribeMessage(event)(target, key, descriptor) ?? descriptor;
}
