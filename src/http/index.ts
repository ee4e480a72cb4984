export { HttpApiModule } from './http-api.module';
export { SchemaValidationException, SchemaValidationPipe } from './schema-validation.pipe';
export { describeIssues, MAX_PROBLEMS } from './validation-problems';
export { ApiErrorResponse, ApiUnavailableResponse, errorResponseSchema, validationProblemsSchema } from './api-responses';
export { setupApiDocs } from './api-docs';
