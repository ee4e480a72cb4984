import { Body, Controller, Get, Param, Post, Res } from '@nestjs/common';
import { ApiOperation, ApiResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated, CurrentPrincipal } from '../auth';
import type { Principal } from '../auth';
import { ApiErrorResponse, ApiUnavailableResponse } from '../http';
import { respondWithJob, X_CACHE_HEADER } from '../job-results';
import { reportIdSchema } from './report-id';
import { type ReportRequest, reportRequestSchema } from './report-request';
import { reportViewSchemas } from './report-view.schema';
import { ReportsService, ReportView } from './reports.service';

/** Inputs are validated by the global SchemaValidationPipe against the schemas named here (400 listing every problem). */
@Controller('reports')
@Authenticated()
@ApiUnavailableResponse()
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  /** 202 + Location while it is computed; 200 with the result when the same data was already computed. */
  @Post()
  @ApiOperation({ summary: 'Ask for a sales summary', description: 'Computed by a worker; poll the Location. The same data from the same tenant gets the same id, so retrying is safe.' })
  @ApiResponse({
    status: 202,
    description: 'Queued (or already being computed).',
    standardSchema: reportViewSchemas.pending,
    headers: { Location: { description: 'Where to GET the report: /reports/{id}.', schema: { type: 'string' } } },
  })
  @ApiResponse({ status: 200, description: 'The same data was already computed: here is the result.', standardSchema: reportViewSchemas.completed, headers: X_CACHE_HEADER })
  async create(
    @CurrentPrincipal() principal: Principal,
    @Body({ schema: reportRequestSchema }) request: ReportRequest,
    @Res({ passthrough: true }) response: Response,
  ): Promise<ReportView> {
    const answer = await this.reports.submit(principal, request);
    return respondWithJob(answer, response, `/reports/${answer.view.id}`);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Read a report', description: 'Completed reports are kept for REPORT_TTL_SECONDS.' })
  @ApiResponse({ status: 200, description: 'Completed (with its result) or failed (with the reason).', standardSchema: reportViewSchemas.finished, headers: X_CACHE_HEADER })
  @ApiResponse({ status: 202, description: 'Still queued or being computed: ask again.', standardSchema: reportViewSchemas.pending })
  @ApiErrorResponse(404, "No such report for the caller's tenant (another tenant's report answers the same).")
  async get(
    @CurrentPrincipal() principal: Principal,
    @Param('id', { schema: reportIdSchema }) id: string,
    @Res({ passthrough: true }) response: Response,
  ): Promise<ReportView> {
    return respondWithJob(await this.reports.get(principal, id), response);
  }
}
