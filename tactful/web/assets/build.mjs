// Builds ../static/garden.css from the Zendesk Garden CSS packages pinned in package.json
// (their dist/index.css, in this order). Run `npm ci && npm run build` here, then commit
// the result: the Python package ships the built file and fetches nothing at run time.
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const PACKAGES = ["bedrock", "buttons", "forms", "callouts", "tags", "tables"];

const parts = PACKAGES.map((name) => {
  const pkg = `@zendeskgarden/css-${name}`;
  const { version } = require(`${pkg}/package.json`);
  const css = readFileSync(require.resolve(`${pkg}/dist/index.css`), "utf8");
  return `/* ${pkg}@${version} */\n${css.trim()}\n`;
});
const header = "/* Built by tactful/web/assets/build.mjs from Zendesk Garden (Apache-2.0). */\n";
writeFileSync(new URL("../static/garden.css", import.meta.url), header + parts.join("\n"));
console.log(`garden.css: ${PACKAGES.length} packages`);
