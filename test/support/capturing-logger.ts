import { Logger, LoggerService } from '@nestjs/common';

/** Collects Nest log lines in memory so a test can assert what an operator would read. */
export class CapturingLogger implements LoggerService {
  readonly lines: string[] = [];

  static install(): CapturingLogger {
    const logger = new CapturingLogger();
    Logger.overrideLogger(logger);
    return logger;
  }

  log(message: unknown, context?: string): void {
    this.push('log', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.push('error', message, rest.at(-1));
  }
  warn(message: unknown, context?: string): void {
    this.push('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.push('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.push('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.push('fatal', message, context);
  }

  get text(): string {
    return this.lines.join('\n');
  }

  private push(level: string, message: unknown, context: unknown): void {
    this.lines.push(`${level} [${String(context)}] ${String(message)}`);
  }
}
