import { Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { MalformedJsonFilter } from './malformed-json.filter';
import { SchemaValidationPipe } from './schema-validation.pipe';

/** Imported once by AppModule: every route's schema-declared inputs are validated, every bad input answers one 400 shape. */
@Module({
  providers: [
    { provide: APP_PIPE, useClass: SchemaValidationPipe },
    { provide: APP_FILTER, useClass: MalformedJsonFilter },
  ],
})
export class HttpApiModule {}
