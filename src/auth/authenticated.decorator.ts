import { applyDecorators, UseGuards } from '@nestjs/common';
import { ApiBearerAuth } from '@nestjs/swagger';
import { ApiErrorResponse } from '../http';
import { JwtAuthGuard } from './jwt-auth.guard';

/** On a controller or route: requires a valid bearer JWT (401 otherwise), and says so in the API docs. */
export function Authenticated(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(JwtAuthGuard),
    ApiBearerAuth(),
    ApiErrorResponse(401, 'No valid bearer token: missing, malformed, expired, or signed with another secret. `message` says which.'),
  );
}
