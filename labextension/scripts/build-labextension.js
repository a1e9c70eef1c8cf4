// Build the prebuilt extension with @jupyterlab/builder, without a Python JupyterLab.
//
// @jupyterlab/builder wants a "core path": a folder whose package.json is JupyterLab's
// core metadata (shared singletons and their versions). Since JupyterLab 4.6 that
// metadata ships as @jupyterlab/core-meta's core.package.json, so we copy it into a
// scratch folder as package.json and point the builder there. The versions come from
// our pinned devDependency, never from a download.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const metaFile = require.resolve('@jupyterlab/core-meta/core.package.json', { paths: [root] });
const coreDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ollama-nb-core-'));
fs.copyFileSync(metaFile, path.join(coreDir, 'package.json'));

const builder = require.resolve('@jupyterlab/builder/lib/build-labextension.js', { paths: [root] });
const args = [builder, '--core-path', coreDir, ...process.argv.slice(2), root];
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
fs.rmSync(coreDir, { recursive: true, force: true });
process.exit(result.status === null ? 1 : result.status);
