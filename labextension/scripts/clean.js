// Remove build output (portable: no rimraf, no shell globbing).
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
for (const target of ['lib', 'tsconfig.tsbuildinfo', '../ollama_nb/labextension']) {
  fs.rmSync(path.join(root, target), { recursive: true, force: true });
}
