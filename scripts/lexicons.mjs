// Pulls the pinned @atproto/api package from the npm registry and writes every lexicon
// schema it carries into lexicons/<nsid path>.json. Run through `just lexicons`.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGE = '@atproto/api';
const VERSION = process.argv[2] ?? '0.21.0';
// Every top-level folder the package writes to; Aurora's own lexicons live under `aurora/`.
const UPSTREAM_ROOTS = ['app', 'chat', 'com', 'tools'];
const out = join(process.cwd(), 'lexicons');

const work = mkdtempSync(join(tmpdir(), 'aurora-lexicons-'));
try {
  execFileSync('npm', ['pack', `${PACKAGE}@${VERSION}`, '--silent'], { cwd: work, stdio: ['ignore', 'pipe', 'inherit'] });
  const tarball = `atproto-api-${VERSION}.tgz`;
  execFileSync('tar', ['xzf', tarball], { cwd: work });
  // lexicons.js imports @atproto/lexicon only for its runtime helpers; the schema dictionary
  // itself is plain data, so the imports are replaced by inert stand-ins.
  const source = readFileSync(join(work, 'package/dist/client/lexicons.js'), 'utf8')
    .replace(/^import .*$/gm, '')
    .replace(/^export const lexicons = .*$/m, '');
  const module = join(work, 'schemas.mjs');
  writeFileSync(module, 'class ValidationError extends Error {}\nconst is$typed = () => false, maybe$typed = () => false;\n' + source);
  const { schemaDict } = await import(pathToFileURL(module).href);

  // The bundled dictionary rewrites every reference to an absolute `lex:` URI; lexicon files
  // write `#def` within a document and a bare NSID across documents, so turn them back.
  const restoreRefs = (node, id) => {
    if (Array.isArray(node)) return node.map((v) => restoreRefs(v, id));
    if (typeof node === 'string' && node.startsWith('lex:')) {
      const ref = node.slice(4);
      return ref.startsWith(id + '#') ? ref.slice(id.length) : ref;
    }
    if (node && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, restoreRefs(v, id)]));
    }
    return node;
  };

  for (const root of UPSTREAM_ROOTS) rmSync(join(out, root), { recursive: true, force: true });
  let count = 0;
  for (const bundled of Object.values(schemaDict)) {
    const doc = restoreRefs(bundled, bundled.id);
    const path = join(out, ...doc.id.split('.')) + '.json';
    if (existsSync(path)) throw new Error(`two schemas claim ${doc.id}`);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, JSON.stringify(doc, null, 2) + '\n');
    count++;
  }
  console.log(`wrote ${count} lexicons from ${PACKAGE}@${VERSION}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
