/**
 * deploy/kubernetes/: every manifest validates against the bundled Kubernetes schemas (the same
 * check as `npm run lint:deploy`), a broken one does not, and the settings an operator relies on
 * are what the seed and the service's own shutdown need.
 */
import { describe, expect, it } from "vitest";
import { loadManifests, validateManifest, type Manifest } from "../../deploy/validate-manifests.js";
import { loadConfig } from "../../src/config.js";

const manifests = await loadManifests();

function find(kind: string, name = "mplp-context"): Manifest {
  const m = manifests.find((x) => x.kind === kind && x.name === name);
  if (!m) throw new Error(`no ${kind}/${name} in deploy/kubernetes`);
  return m;
}

/** The value at a dotted path ("spec.template.spec"), indices as numbers. */
function at(value: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

describe("deploy/kubernetes", () => {
  it("validates every manifest against the Kubernetes schemas", async () => {
    expect(manifests.map((m) => `${m.apiVersion} ${m.kind}`).sort()).toEqual([
      "apps/v1 Deployment",
      "autoscaling/v2 HorizontalPodAutoscaler",
      "policy/v1 PodDisruptionBudget",
      "v1 ConfigMap",
      "v1 Secret",
      "v1 Service",
      "v1 Service",
    ]);
    for (const m of manifests) expect(await validateManifest(m), `${m.file} ${m.kind}`).toEqual([]);
  });

  it("reports a wrong type, an unknown kind and an unknown apiVersion", async () => {
    const hpa = find("HorizontalPodAutoscaler");
    const broken = { ...hpa, body: { ...hpa.body, spec: { ...(hpa.body["spec"] as object), minReplicas: "three" } } };
    expect((await validateManifest(broken)).join("\n")).toContain("/spec/minReplicas");
    expect(await validateManifest({ ...hpa, kind: "HorizontalPodScaler" })).toEqual([expect.stringContaining("unknown kind")]);
    expect(await validateManifest({ ...hpa, apiVersion: "autoscaling/v9" })).toEqual([expect.stringContaining("unknown apiVersion")]);
  });

  it("probes gRPC health, drains before SIGTERM and gives shutdown more time than it needs", () => {
    const pod = at(find("Deployment").body, "spec.template.spec") as Record<string, unknown>;
    const container = (pod["containers"] as Array<Record<string, unknown>>)[0]!;
    for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"]) expect(at(container, `${probe}.grpc.port`), probe).toBe(50051);
    const preStop = at(container, "lifecycle.preStop.exec.command") as string[];
    expect(preStop[0]).toBe("sleep");
    const configMap = find("ConfigMap").body["data"] as Record<string, string>;
    const config = loadConfig({ ...configMap, AUTH_JWT_SECRET: "x".repeat(32) });
    const needed = Number(preStop[1]) + config.shutdownGraceMs / 1000;
    expect(pod["terminationGracePeriodSeconds"]).toBeGreaterThan(needed);
    expect(config).toMatchObject({ grpcHost: "0.0.0.0", grpcPort: 50051, metricsHost: "0.0.0.0", metricsPort: 9464 });
    const ports = (container["ports"] as Array<{ containerPort: number }>).map((p) => p.containerPort);
    expect(ports).toEqual([50051, 9464]);
    const env = (container["env"] as Array<{ name: string }>).map((e) => e.name);
    expect(env).toEqual(expect.arrayContaining(["DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL", "AUTH_JWT_SECRET"]));
    expect(at(container, "resources.requests.cpu")).toBeDefined();
    expect(at(container, "resources.requests.memory")).toBeDefined();
  });

  it("autoscales as the seed sets it: 3–20 pods, CPU 70 %, memory 80 %, +50 % or +2 pods a minute, −10 % a minute after 300 s", () => {
    const spec = find("HorizontalPodAutoscaler").body["spec"];
    expect(at(spec, "minReplicas")).toBe(3);
    expect(at(spec, "maxReplicas")).toBe(20);
    const targets = (at(spec, "metrics") as Array<{ resource: { name: string; target: { averageUtilization: number } } }>).map((m) => [
      m.resource.name,
      m.resource.target.averageUtilization,
    ]);
    expect(targets).toEqual([
      ["cpu", 70],
      ["memory", 80],
    ]);
    expect(at(spec, "behavior.scaleUp")).toMatchObject({
      stabilizationWindowSeconds: 60,
      selectPolicy: "Max",
      policies: [
        { type: "Percent", value: 50, periodSeconds: 60 },
        { type: "Pods", value: 2, periodSeconds: 60 },
      ],
    });
    expect(at(spec, "behavior.scaleDown")).toMatchObject({ stabilizationWindowSeconds: 300, policies: [{ type: "Percent", value: 10, periodSeconds: 60 }] });
    expect(at(find("PodDisruptionBudget").body, "spec.maxUnavailable")).toBe(1);
    expect(at(find("Service").body, "spec.ports.0")).toMatchObject({ name: "grpc", port: 50051, appProtocol: "grpc" });
  });
});
