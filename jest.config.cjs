// NestJS 12 ships ES modules that CommonJS Jest cannot load (../shared/FIELD-NOTES.md):
// tests run in Jest's native ESM mode while the app itself builds to CommonJS.
const esm = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  roots: ['<rootDir>/src', '<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
};

// `npm test` runs both projects; `npm run test:unit` and `test:watch` only the first (jest.unit.config.cjs).
module.exports = {
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.cjs'],
  projects: [
    // Pure unit specs (*.spec.ts): no build, and redis-server hidden from them (test/support/unit-project.cjs).
    { ...esm, displayName: 'unit', testRegex: '\\.spec\\.ts$', setupFiles: ['<rootDir>/test/support/unit-project.cjs'] },
    // On real redis-server processes the harness starts: *.int-spec.ts beside the code, and *.e2e-spec.ts
    // under test/, which start the built app (npm test's pretest builds it).
    { ...esm, displayName: 'integration', testRegex: '\\.(int-spec|e2e-spec)\\.ts$' },
  ],
};
