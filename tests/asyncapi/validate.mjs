// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser): the rules of the
// specification and its JSON schemas, plus the parser's own checks. Usage: node validate.mjs <document.json>
// Prints every diagnostic; exits 1 when any is an error (severity 0), 2 on bad usage.
import { readFileSync } from "node:fs";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <asyncapi.json>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"));
for (const d of diagnostics) {
  console.log(`${DiagnosticSeverity[d.severity] ?? d.severity} ${d.code} at ${d.path.join("/")}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || document === undefined) {
  console.log(`${errors.length} error(s)`);
  process.exit(1);
}
console.log(`valid: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
  `${document.operations().length} operations, ${document.components().messages().length} messages`);
