import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { z } from 'zod';
import type { AppConfig } from '../config';
import { validationProblemsSchema } from './api-responses';

export const API_DOCS_PATH = 'docs';
const PROBLEMS_COMPONENT = 'ValidationProblems';

/**
 * Swagger UI at /docs and the OpenAPI document at /docs-json, built from the routes' own schemas
 * (`@Body({ schema })`, `@Param(name, { schema })`, `@ApiResponse({ standardSchema })`): nothing is declared twice.
 * Off where API_DOCS says so (by default in production) and on worker-only processes, which serve no API.
 * Swagger UI's files are served from the swagger-ui-dist package, never from a CDN.
 */
export function setupApiDocs(app: INestApplication, config: AppConfig): void {
  if (!config.apiDocs || config.appRole === 'worker') return;
  const options = new DocumentBuilder()
    .setTitle('PharmaCare API')
    .setDescription('Multi-tenant pharmacy backend. Every input is validated against the schema shown here; a mismatch answers 400 listing every problem.')
    .setVersion('1')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description:
        'An HS256 JWT signed with JWT_SECRET, claims `sub` (the user id), `tenant` (the pharmacy id) and `exp` (expiry, seconds since the epoch). Locally: `npm run token -- --user u1 --tenant t1`.',
    })
    .build();
  const document = withValidationProblems(SwaggerModule.createDocument(app, options));
  SwaggerModule.setup(API_DOCS_PATH, app, document, {
    raw: ['json'],
    customSiteTitle: 'PharmaCare API',
    // The validator badge would send the document to validator.swagger.io.
    swaggerOptions: { validatorUrl: null, persistAuthorization: false },
  });
}

/**
 * Every operation that takes a body, path or query parameters gets the 400 of SchemaValidationPipe, so a
 * route documents its validation by declaring its schemas, with nothing more to add.
 */
export function withValidationProblems(document: OpenAPIObject): OpenAPIObject {
  const components = (document.components ??= {});
  (components.schemas ??= {})[PROBLEMS_COMPONENT] = openApiSchema(validationProblemsSchema);
  for (const path of Object.values(document.paths)) {
    for (const operation of [path.get, path.put, path.post, path.delete, path.patch]) {
      if (!operation) continue;
      const takesInput = operation.requestBody !== undefined || (operation.parameters ?? []).some((parameter) => 'in' in parameter && (parameter.in === 'path' || parameter.in === 'query'));
      if (!takesInput || operation.responses['400']) continue;
      operation.responses['400'] = {
        description: 'The input does not match its schema. `message` lists every problem, each naming where it is.',
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${PROBLEMS_COMPONENT}` } } },
      };
    }
  }
  return document;
}

function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const json: Record<string, unknown> = { ...z.toJSONSchema(schema, { target: 'openapi-3.0' }) };
  delete json.$schema;
  return json;
}
