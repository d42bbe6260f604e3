// Bundles the spec's React hook example (../use_websocket.tsx, verbatim) for the browser test.
// The file exports useWebSocket only; its example component is exported by an appended line, not an edit.
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const spec = readFileSync(new URL("../use_websocket.tsx", import.meta.url), "utf8");
await build({
  stdin: {
    contents: spec + `
export { MarketDataComponent };
export { createElement } from "react";
export { createRoot } from "react-dom/client";
`,
    loader: "tsx",
    resolveDir: new URL(".", import.meta.url).pathname,
    sourcefile: "use_websocket.tsx",
  },
  bundle: true,
  format: "iife",
  globalName: "SpecReact",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  outfile: new URL("dist/bundle.js", import.meta.url).pathname,
  logLevel: "warning",
});
