/** Who is calling: the JWT's `sub` and `tenant` claims. */
export interface Principal {
  readonly userId: string;
  readonly tenantId: string;
}
