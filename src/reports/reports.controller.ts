import { BadRequestException, Body, Controller, Get, HttpStatus, Param, Post, Res, UseGuards } from '@nestjs/common';
import type { Response } from 'express';
import { CurrentPrincipal, JwtAuthGuard } from '../auth';
import type { Principal } from '../auth';
import { JsonBodyLimit } from '../common/json-body';
import { MAX_REPORT_BODY_BYTES, parseReportRequest } from './report-request';
import { ReportAnswer, ReportsService, ReportView } from './reports.service';

@Controller('reports')
@UseGuards(JwtAuthGuard)
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  /** 202 + Location while it is computed; 200 with the result when the same data was already computed. */
  @Post()
  @JsonBodyLimit(MAX_REPORT_BODY_BYTES)
  async create(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Res({ passthrough: true }) response: Response): Promise<ReportView> {
    const parsed = parseReportRequest(body);
    if (!parsed.ok) throw new BadRequestException({ statusCode: 400, error: 'Bad Request', message: parsed.problems });
    const view = await this.reports.submit(principal, parsed.value);
    return this.respond(view, response, true);
  }

  @Get(':id')
  async get(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Res({ passthrough: true }) response: Response): Promise<ReportView> {
    return this.respond(await this.reports.get(principal, id), response, false);
  }

  private respond({ view, cache }: ReportAnswer, response: Response, created: boolean): ReportView {
    const pending = view.status === 'queued' || view.status === 'active';
    if (cache) response.setHeader('x-cache', cache);
    response.status(pending ? HttpStatus.ACCEPTED : HttpStatus.OK);
    if (pending && created) response.setHeader('Location', `/reports/${view.id}`);
    return view;
  }
}
