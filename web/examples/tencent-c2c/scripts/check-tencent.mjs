// Shows that src/app.ts is a Tencent Cloud Chat app with two lines changed, and that it uses only Tencent's
// published API:
//   1. exactly two lines are marked `// on Tencent IM: <the line for Tencent>`: the import of
//      '@duet/chat/tencent' and the `TencentCloudChat.create(…)` call; nothing else names Duet's package;
//   2. the Tencent version (each marked line replaced by its comment's code) is written to build/tencent/
//      and compiled with `tsc --noEmit` against @tencentcloud/chat's types;
//   3. the Duet version (src/app.ts as it is) is compiled against @duet/chat's types.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const here = new URL('..', import.meta.url).pathname;
const MARK = /^(?<code>.*?)\s*\/\/ on Tencent IM: (?<tencent>.*)$/;

function fail(message) {
  console.error(`check:tencent: ${message}`);
  process.exit(1);
}

const lines = readFileSync(`${here}src/app.ts`, 'utf8').split('\n');
const marked = [];
const tencent = lines.map((line, i) => {
  const m = MARK.exec(line);
  if (!m) return line;
  marked.push({ n: i + 1, duet: m.groups.code, tencent: m.groups.tencent });
  return m.groups.tencent;
});

if (marked.length !== 2) {
  fail(`src/app.ts must mark exactly two lines with '// on Tencent IM:', found ${marked.length}`);
}
const [imports, create] = marked;
if (!/from '@duet\/chat\/tencent';$/.test(imports.duet) || !/from '@tencentcloud\/chat';$/.test(imports.tencent)) {
  fail(`line ${imports.n}: the first marked line must import '@duet/chat/tencent' where Tencent's imports '@tencentcloud/chat'`);
}
if (imports.duet.replace('@duet/chat/tencent', '@tencentcloud/chat') !== imports.tencent) {
  fail(`line ${imports.n}: the import must differ from Tencent's in the module name only`);
}
if (!create.duet.includes('TencentCloudChat.create(') || !create.tencent.includes('TencentCloudChat.create(')) {
  fail(`line ${create.n}: the second marked line must be the TencentCloudChat.create(…) call`);
}
const elsewhere = tencent.findIndex((line) => /@duet\//.test(line));
if (elsewhere >= 0) fail(`line ${elsewhere + 1}: names Duet's package outside the two marked lines`);

for (const { n, duet, tencent: t } of marked) {
  console.log(`line ${n}\n  - ${t}\n  + ${duet}`);
}

// The Tencent version, compiled with the example's compiler settings against Tencent's types.
const out = `${here}build/tencent`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(`${out}/app.ts`, tencent.join('\n'));
writeFileSync(`${out}/tsconfig.json`, JSON.stringify({ extends: '../../tsconfig.json', include: ['app.ts'] }, null, 2));

const tsc = `${here}node_modules/.bin/tsc`;
function typecheck(project, what) {
  try {
    execFileSync(tsc, ['--noEmit', '-p', project], { stdio: 'inherit' });
  } catch {
    fail(`${what} does not compile`);
  }
  console.log(`ok: ${what} compiles`);
}
typecheck(`${out}/tsconfig.json`, 'the Tencent version (build/tencent/app.ts) against @tencentcloud/chat');
typecheck(`${here}tsconfig.json`, 'the Duet version (src/app.ts) against @duet/chat');
