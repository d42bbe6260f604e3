// TypeScript types from an AsyncAPI document with AsyncAPI Modelina, as the README shows integrators.
// Usage: node generate-typescript.mjs <asyncapi.json> <out.ts>
import { readFileSync, writeFileSync } from "node:fs";
import { TypeScriptGenerator } from "@asyncapi/modelina";

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error("usage: node generate-typescript.mjs <asyncapi.json> <out.ts>");
  process.exit(2);
}
// rawPropertyNames: keep `type` (else `reservedType`); enumType union: string values fit; mapType record: plain objects.
const generator = new TypeScriptGenerator({ modelType: "interface", enumType: "union", rawPropertyNames: true,
                                            mapType: "record" });
const models = await generator.generate(JSON.parse(readFileSync(source, "utf8")));
writeFileSync(target, models.map((m) => m.result).join("\n\n") + "\n");
console.log(`${models.length} types`);
