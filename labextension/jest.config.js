// Unit tests for the pure modules (wire parsing, polling, the model); they import
// nothing from @jupyterlab, so plain ts-jest in jsdom is enough.
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }]
  }
};
