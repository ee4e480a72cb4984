// The chaos suite (npm run test:chaos): several app processes, faults under load. Kept out of `npm test`
// (no project of it matches) and run on its own, in band, by .ci/run after `npm test`.
const { projects, ...runner } = require('./jest.config.cjs');
const integration = projects.find((project) => project.displayName === 'integration');

module.exports = {
  ...runner,
  ...integration,
  displayName: 'chaos',
  roots: ['<rootDir>/test'],
  testRegex: '\\.chaos-spec\\.ts$',
  testTimeout: 120_000,
};
