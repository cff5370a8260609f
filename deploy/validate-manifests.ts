/**
 * Validates every Kubernetes manifest under deploy/kubernetes/ against the Kubernetes API schemas:
 * `npm run lint:deploy` (CI runs it). The schemas come bundled in kubernetes-models (generated
 * from the official OpenAPI document, compiled to ajv validators), so this works offline and the
 * same on every machine: nothing is fetched at run time.
 *
 * What it checks: each document's apiVersion/kind is a known built-in type, required fields are
 * there, and every field has the right type, enum value and format (int-or-string, quantities…).
 * What it cannot: like kubeconform without -strict, fields the schema does not know are not
 * flagged (Kubernetes' OpenAPI leaves objects open), so test/unit/deploy-manifests.test.ts pins
 * the settings that matter (probes, grace, HPA figures) by name.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

/** One manifest document, as parsed, with where it came from. */
export interface Manifest {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly body: Record<string, unknown>;
}

/** The Kubernetes manifests shipped with the service. */
export const KUBERNETES_DIR = fileURLToPath(new URL("./kubernetes/", import.meta.url));

/** Every document of every .yaml file in `dir`, parsed (a YAML syntax error throws, naming the file). */
export async function loadManifests(dir: string = KUBERNETES_DIR): Promise<Manifest[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml") || f.endsWith(".yml")).sort();
  const manifests: Manifest[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(join(dir, file), "utf8"))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      const body = doc.toJS() as Record<string, unknown> | null;
      if (body === null) continue;
      const metadata = (body["metadata"] ?? {}) as { name?: unknown };
      manifests.push({ file, apiVersion: String(body["apiVersion"]), kind: String(body["kind"]), name: String(metadata.name), body });
    }
  }
  return manifests;
}

type ModelClass = new (data: Record<string, unknown>) => { validate(): void };

/** The problems of one manifest against its schema; empty when it validates. */
export async function validateManifest(manifest: Manifest): Promise<string[]> {
  const where = `${manifest.file}: ${manifest.kind}/${manifest.name}`;
  let models: Record<string, unknown>;
  try {
    // kubernetes-models has one module per API group/version: "v1", "apps/v1", "autoscaling/v2"…
    const specifier = `kubernetes-models/${manifest.apiVersion}`;
    models = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>;
  } catch {
    return [`${where}: unknown apiVersion ${manifest.apiVersion}`];
  }
  const Model = models[manifest.kind] as ModelClass | undefined;
  if (typeof Model !== "function") return [`${where}: unknown kind ${manifest.kind} in ${manifest.apiVersion}`];
  try {
    new Model(manifest.body).validate();
    return [];
  } catch (error) {
    const details = (error as { errors?: Array<{ instancePath?: string; message?: string }> }).errors;
    if (details === undefined) return [`${where}: ${String(error)}`];
    return details.map((d) => `${where}: ${d.instancePath || "/"} ${d.message ?? "is invalid"}`);
  }
}

async function main(): Promise<void> {
  const manifests = await loadManifests();
  const problems = (await Promise.all(manifests.map(validateManifest))).flat();
  for (const m of manifests) console.log(`checked ${m.file}: ${m.apiVersion} ${m.kind}/${m.name}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(p);
    console.error(`${problems.length} problem(s) in deploy/kubernetes`);
    process.exit(1);
  }
  console.log(`${manifests.length} manifests valid against the Kubernetes schemas`);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
