// Builds the Forge Custom UI of "Report a problem" into build/: one script bundled by esbuild
// (src/index.js with web/report-widget/widget.js and @forge/bridge), index.html and the
// Connect dialog's widget.css, so both hosts look the same. No network is needed beyond
// `npm install`.
//
// Environment (tests only):
//   SB_FORGE_OUTDIR       where to write instead of build/.
//   SB_FORGE_BRIDGE_STUB  a module that stands in for @forge/bridge (e2e/forge-bridge-stub.js).
//   SB_TRANSPORT          invokeRemote (default) or requestRemote.
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '..', '..', '..', 'web', 'report-widget');
const outdir = path.resolve(process.env.SB_FORGE_OUTDIR || path.join(here, 'build'));
const transport = process.env.SB_TRANSPORT || 'invokeRemote';
const stub = process.env.SB_FORGE_BRIDGE_STUB ? path.resolve(process.env.SB_FORGE_BRIDGE_STUB) : '';

const bridgeStub = {
  name: 'forge-bridge-stub',
  setup(build) {
    build.onResolve({ filter: /^@forge\/bridge$/ }, () => ({ path: stub }));
  },
};

fs.rmSync(outdir, { recursive: true, force: true });
fs.mkdirSync(outdir, { recursive: true });
await esbuild.build({
  entryPoints: [path.join(here, 'src', 'index.js')],
  outfile: path.join(outdir, 'index.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  legalComments: 'linked',
  define: { SB_TRANSPORT: JSON.stringify(transport), 'process.env.NODE_ENV': '"production"' },
  plugins: stub ? [bridgeStub] : [],
  logLevel: 'warning',
});
fs.copyFileSync(path.join(here, 'index.html'), path.join(outdir, 'index.html'));
fs.copyFileSync(path.join(web, 'widget.css'), path.join(outdir, 'widget.css'));
console.log(`built ${path.relative(process.cwd(), outdir) || '.'}${stub ? ' (bridge stub)' : ''}`);
