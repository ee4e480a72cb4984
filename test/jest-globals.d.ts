// Types of the globals Jest defines in every spec, so a spec written the Nest CLI's way (describe, it, expect
// without an import) passes the type check. They are the types of @jest/globals, what our own specs import,
// so they always match the installed Jest. `jest` itself is left out on purpose: in native ESM mode
// (jest.config.cjs) it is not a global, and a spec must import it from @jest/globals (@types/jest would
// declare it, and type-check code that fails at run time).
import type * as globals from '@jest/globals';

declare global {
  const describe: typeof globals.describe;
  const fdescribe: typeof globals.fdescribe;
  const xdescribe: typeof globals.xdescribe;
  const it: typeof globals.it;
  const fit: typeof globals.fit;
  const xit: typeof globals.xit;
  const test: typeof globals.test;
  const xtest: typeof globals.xtest;
  const expect: typeof globals.expect;
  const beforeAll: typeof globals.beforeAll;
  const beforeEach: typeof globals.beforeEach;
  const afterAll: typeof globals.afterAll;
  const afterEach: typeof globals.afterEach;
}
