// Builds the Forge Custom UI into build/: one script bundled by esbuild (src/index.js with
// web/site-admin/app.js and @forge/bridge), index.html and the Connect page's app.css, so both
// hosts look the same. No network is needed beyond `npm install`.
//
// Environment (tests only, except SB_FORGE_TRANSPORT):
//   SB_FORGE_TRANSPORT    invokeRemote (default, the manifest's endpoint) or requestRemote; see src/transport.js.
//   SB_FORGE_OUTDIR       where to write instead of build/.
//   SB_FORGE_BRIDGE_STUB  a module that stands in for @forge/bridge (e2e/forge-bridge-stub.js).
import * as esbuild from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const web = path.resolve(here, '..', '..', '..', 'web', 'site-admin');
const outdir = path.resolve(process.env.SB_FORGE_OUTDIR || path.join(here, 'build'));
const stub = process.env.SB_FORGE_BRIDGE_STUB ? path.resolve(process.env.SB_FORGE_BRIDGE_STUB) : '';
const transport = process.env.SB_FORGE_TRANSPORT || 'invokeRemote';
if (!['requestRemote', 'invokeRemote'].includes(transport)) {
  throw new Error(`SB_FORGE_TRANSPORT must be requestRemote or invokeRemote, not ${transport}`);
}

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
fs.copyFileSync(path.join(web, 'app.css'), path.join(outdir, 'app.css'));
console.log(`built ${path.relative(process.cwd(), outdir) || '.'} (${transport}${stub ? ', bridge stub' : ''})`);
