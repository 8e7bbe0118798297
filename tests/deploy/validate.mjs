// Validates deploy/kubernetes/ offline, as an API server with strict field
// validation would, and runs `mailhook check` on the ConfigMap's config.
//
//   node validate.mjs MANIFEST_DIR MAILHOOK_BINARY      exit 0 = all passed
//
// 1. Schema: every document against the Kubernetes OpenAPI schema of its
//    apiVersion/kind (kubernetes-models: JSON schemas compiled with ajv; the
//    ServiceMonitor against the prometheus-operator CRD's schema). Types,
//    required fields, enums and formats.
// 2. Unknown fields: those schemas allow extra properties, the API server
//    (kubectl's default --validate=strict) does not. Every document is written
//    as a TypeScript constant of the model's interface and type-checked:
//    excess-property checks reject a misspelt or misplaced field.
// 3. Cross-manifest facts the schemas cannot see (state_dir on the volume,
//    the HTTP port, secret keys, the security settings, probes, one replica).
// 4. `mailhook check` on the ConfigMap's mailhook.yml, with the secret files
//    of secret.example.yaml in a temporary directory.
// 5. `mailhook run` on it (moved to loopback): the probes' answers and the
//    stop time that the StatefulSet relies on.
// Each step also runs on deliberately broken copies and must reject them, so
// a validator that accepts everything fails this test.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const [manifestDir, mailhook] = process.argv.slice(2);
if (!manifestDir || !mailhook) {
  console.error("usage: node validate.mjs MANIFEST_DIR MAILHOOK_BINARY");
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(ok, what, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok   ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}${detail ? `\n     ${detail.split("\n").join("\n     ")}` : ""}`);
  }
}

// --------------------------------------------------------------- the models
// apiVersion -> the npm module path prefix of its models.
function modelModule(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  }
  if (/^[a-z0-9.]*\/?v[0-9a-z]+$/.test(apiVersion)) return `kubernetes-models/${apiVersion}/${kind}`;
  return null;
}

async function schemaErrors(doc) {
  const mod = modelModule(doc?.apiVersion ?? "", doc?.kind ?? "");
  if (!mod) return [`no schema for apiVersion "${doc?.apiVersion}" kind "${doc?.kind}"`];
  let Model;
  try {
    Model = (await import(mod))[doc.kind];
  } catch {
    return [`no schema for apiVersion "${doc.apiVersion}" kind "${doc.kind}" (${mod})`];
  }
  try {
    new Model(structuredClone(doc)).validate();
    return [];
  } catch (e) {
    return [e.message];
  }
}

// Type-checks every {label, doc} at once; returns label -> [messages].
function unknownFieldErrors(items) {
  const gen = fs.mkdtempSync(path.join(here, "node_modules", ".mailhook-gen-"));
  try {
    const byFile = new Map();
    items.forEach(({ label, doc }, i) => {
      const mod = modelModule(doc.apiVersion, doc.kind);
      const file = path.join(gen, `doc${i}.mts`);
      fs.writeFileSync(
        file,
        `import type { I${doc.kind} } from "${mod}";\n` +
          `export const doc: I${doc.kind} = ${JSON.stringify(doc, null, 2)};\n`,
      );
      byFile.set(`doc${i}.mts`, label);
    });
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    const r = spawnSync(
      process.execPath,
      [tsc, "--noEmit", "--strict", "--skipLibCheck", "--pretty", "false", "--target", "es2022",
        "--module", "nodenext", "--moduleResolution", "nodenext", ...[...byFile.keys()].map((f) => path.join(gen, f))],
      { encoding: "utf8" },
    );
    const out = new Map(items.map(({ label }) => [label, []]));
    for (const line of (r.stdout + r.stderr).split("\n")) {
      const m = /([^/\s]+\.mts)\(\d+,\d+\): (.*)/.exec(line);
      if (m && byFile.has(m[1])) out.get(byFile.get(m[1])).push(m[2]);
      else if (line.includes("error TS")) out.get(items[0].label).push(`tsc: ${line}`);
    }
    if (r.status !== 0 && [...out.values()].every((v) => v.length === 0)) {
      out.get(items[0].label).push(`tsc failed without a message (status ${r.status})`);
    }
    return out;
  } finally {
    fs.rmSync(gen, { recursive: true, force: true });
  }
}

// ------------------------------------------------------- a pod-like daemon
const until = async (what, fn, ms = 20000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const httpStatus = (port, p) =>
  new Promise((resolve) => {
    http.get({ host: "127.0.0.1", port, path: p, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on("error", (e) => resolve(e.message));
  });
const closedPort = () =>
  new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });

async function runLikeThePod(text) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mailhook-k8s-run-"));
  const out = { detail: "" };
  let child;
  try {
    const doc = YAML.parseDocument(text.split(`${secretMount}/`).join(`${tmp}/`));
    for (const [k, v] of Object.entries(secretExample?.stringData ?? {})) fs.writeFileSync(path.join(tmp, k), v);
    doc.set("state_dir", path.join(tmp, "state"));
    doc.setIn(["http", "listen"], "127.0.0.1:0");
    const imapPort = await closedPort();
    doc.get("accounts").items.forEach((a) => {
      a.set("host", "127.0.0.1");
      a.set("port", imapPort);
    });
    fs.writeFileSync(path.join(tmp, "mailhook.yml"), doc.toString());
    let log = "";
    child = spawn(mailhook, ["run", "-c", path.join(tmp, "mailhook.yml")], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.on("data", (d) => (log += d));
    const exited = new Promise((resolve) => {
      child.on("exit", (code) => resolve(code));
      child.on("error", (e) => resolve(e.message));
    });
    const portFile = path.join(tmp, "state", "http.port");
    const port = await until("the port file", () => fs.existsSync(portFile) && Number(fs.readFileSync(portFile, "utf8")));
    await until("a refused IMAP connect in the log", () => /imap\.reconnect .*Connection refused/.test(log));
    out.healthz = await httpStatus(port, "/healthz");
    out.readyz = await httpStatus(port, "/readyz");
    const t0 = Date.now();
    child.kill("SIGTERM");
    out.exit = await exited;
    out.stopMs = Date.now() - t0;
    child = null;
    out.detail = log.split("\n").slice(-4).join("\n");
  } catch (e) {
    out.detail = e.message;
  } finally {
    if (child) child.kill("SIGKILL");
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return out;
}

// ------------------------------------------------------------ the manifests
// YAML 1.1, as Kubernetes reads it (sigs.k8s.io/yaml): 0400 is octal there.
function parseManifests(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { version: "1.1", uniqueKeys: true });
  const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
  return { docs: docs.map((d) => d.toJS()).filter((d) => d != null), errors };
}

const files = fs.readdirSync(manifestDir).filter((f) => /\.ya?ml$/.test(f)).sort();
const manifests = []; // {label, file, doc}
let kustomization = null;
for (const f of files) {
  const { docs, errors } = parseManifests(path.join(manifestDir, f));
  check(errors.length === 0, `${f}: YAML`, errors.join("\n"));
  if (f === "kustomization.yaml") {
    kustomization = docs[0];
    continue;
  }
  docs.forEach((doc, i) => manifests.push({ label: `${f}#${i + 1} ${doc.kind}/${doc.metadata?.name}`, file: f, doc }));
}
check(manifests.length > 0, `manifests found in ${manifestDir}`);
const find = (kind) => manifests.find((m) => m.doc.kind === kind)?.doc;

// kustomization.yaml has no published schema here: its own keys, by hand.
check(
  kustomization?.apiVersion === "kustomize.config.k8s.io/v1beta1" && kustomization?.kind === "Kustomization",
  "kustomization.yaml: apiVersion and kind",
);
for (const r of kustomization?.resources ?? []) {
  check(fs.existsSync(path.join(manifestDir, r)), `kustomization.yaml: resource ${r} exists`);
}
for (const f of new Set(manifests.map((m) => m.file))) {
  const optional = ["secret.example.yaml", "servicemonitor.yaml"].includes(f);
  if (!optional) check(kustomization?.resources?.includes(f), `kustomization.yaml lists ${f}`);
}

// --------------------------------------------------- broken copies (must fail)
const sts = find("StatefulSet");
const monitor = find("ServiceMonitor");
const container = sts?.spec?.template?.spec?.containers?.[0];
function broken(doc, edit) {
  const copy = structuredClone(doc);
  edit(copy);
  return copy;
}
const brokenSchema = [
  ["StatefulSet with containerPort \"8025\" (a string)", broken(sts, (d) => {
    d.spec.template.spec.containers[0].ports[0].containerPort = "8025";
  }), /containerPort must be integer/],
  ["StatefulSet without spec.selector", broken(sts, (d) => delete d.spec.selector), /selector/],
  ["ServiceMonitor with endpoints as a map", broken(monitor, (d) => {
    d.spec.endpoints = { port: "http" };
  }), /endpoints must be array/],
  ["Service with protocol TCPP", broken(find("Service"), (d) => {
    d.spec.ports[0].protocol = "TCPP";
  }), /protocol/],
];
const brokenFields = [
  ["StatefulSet with a misspelt imagePullPolicyy", broken(sts, (d) => {
    d.spec.template.spec.containers[0].imagePullPolicyy = "Always";
  }), /imagePullPolicyy/],
  ["StatefulSet with runAsUser under the container's resources", broken(sts, (d) => {
    d.spec.template.spec.containers[0].resources.runAsUser = 10001;
  }), /runAsUser/],
  ["ServiceMonitor with a misspelt endpoint key", broken(monitor, (d) => {
    d.spec.endpoints[0].intervall = "30s";
  }), /intervall/],
];

// ----------------------------------------------------------------- 1 and 2
for (const m of manifests) {
  const errs = await schemaErrors(m.doc);
  check(errs.length === 0, `${m.label}: schema`, errs.join("\n"));
}
for (const [what, doc, expect] of brokenSchema) {
  const errs = await schemaErrors(doc);
  check(errs.some((e) => expect.test(e)), `rejected (schema): ${what}`, `got: ${JSON.stringify(errs)}`);
}
const strictItems = [
  ...manifests.filter((m) => modelModule(m.doc.apiVersion, m.doc.kind)).map((m) => ({ label: m.label, doc: m.doc })),
  ...brokenFields.map(([what, doc]) => ({ label: `broken: ${what}`, doc })),
];
const strict = unknownFieldErrors(strictItems);
for (const m of manifests) {
  const errs = strict.get(m.label) ?? ["not type-checked"];
  check(errs.length === 0, `${m.label}: no unknown fields`, errs.join("\n"));
}
for (const [what, , expect] of brokenFields) {
  const errs = strict.get(`broken: ${what}`);
  check(errs.some((e) => expect.test(e)), `rejected (unknown field): ${what}`, `got: ${JSON.stringify(errs)}`);
}

// ----------------------------------------------------------------------- 3
const podSpec = sts?.spec?.template?.spec ?? {};
const mounts = Object.fromEntries((container?.volumeMounts ?? []).map((v) => [v.name, v]));
const volumes = Object.fromEntries((podSpec.volumes ?? []).map((v) => [v.name, v]));
const configMap = find("ConfigMap");
const configText = configMap?.data?.["mailhook.yml"] ?? "";
const config = YAML.parse(configText) ?? {};
const secretExample = find("Secret");
const secretMount = mounts.secrets?.mountPath;

check(sts?.spec?.replicas === 1, "one replica (the state dir is locked by one daemon)");
check(
  sts?.spec?.volumeClaimTemplates?.some((t) => t.metadata.name === "state") &&
    mounts.state?.mountPath === config.state_dir,
  "state_dir is the PersistentVolumeClaim's mount path",
  `state_dir ${config.state_dir}, mount ${mounts.state?.mountPath}`,
);
const configArg = container?.args?.[container.args.indexOf("-c") + 1] ?? "";
check(
  volumes.config?.configMap?.name === configMap?.metadata?.name &&
    path.dirname(configArg) === mounts.config?.mountPath && path.basename(configArg) === "mailhook.yml",
  "run -c names the ConfigMap's mailhook.yml at its mount path",
);
const port = container?.ports?.find((p) => p.name === "http")?.containerPort;
check(config.http?.listen === `0.0.0.0:${port}`, "http.listen is 0.0.0.0 on the container's http port",
  `${config.http?.listen} vs ${port}`);
const probe = (p) => p?.httpGet?.port === "http" ? p.httpGet.path : undefined;
check(probe(container?.livenessProbe) === "/healthz" && probe(container?.startupProbe) === "/healthz" &&
    probe(container?.readinessProbe) === "/readyz", "startup and liveness probe /healthz, readiness /readyz");
const psc = podSpec.securityContext ?? {};
const csc = container?.securityContext ?? {};
check(psc.runAsUser === 10001 && psc.runAsGroup === 10001 && psc.fsGroup === 10001 && psc.runAsNonRoot === true &&
    psc.seccompProfile?.type === "RuntimeDefault", "pod runs as 10001:10001, fsGroup 10001, seccomp RuntimeDefault");
check(csc.readOnlyRootFilesystem === true && csc.allowPrivilegeEscalation === false &&
    JSON.stringify(csc.capabilities?.drop) === '["ALL"]', "read-only root, no privilege escalation, no capability");
// The namespace enforces Pod Security "restricted": what the fields above do
// not cover (volume types, host namespaces, added capabilities).
const restrictedVolume = ["configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected", "downwardAPI"];
check((podSpec.volumes ?? []).every((v) => Object.keys(v).some((k) => restrictedVolume.includes(k))) &&
    !podSpec.hostNetwork && !podSpec.hostPID && !podSpec.hostIPC && !csc.capabilities?.add &&
    find("Namespace")?.metadata?.labels?.["pod-security.kubernetes.io/enforce"] === "restricted",
  "Pod Security restricted: enforced on the namespace; volume types, no host namespaces, no added capability");
check(volumes.secrets?.secret?.defaultMode === 0o400 &&
    volumes.secrets?.secret?.secretName === secretExample?.metadata?.name, "secrets mounted 0400 from the Secret");
const service = find("Service");
check(service?.spec?.ports?.some((p) => p.port === port && p.targetPort === "http") &&
    service?.metadata?.annotations?.["prometheus.io/scrape"] === "true" &&
    service?.metadata?.annotations?.["prometheus.io/port"] === String(port),
  "Service exposes the http port with prometheus.io annotations");
const selects = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
check(selects(service?.spec?.selector, sts?.spec?.template?.metadata?.labels), "Service selects the pod");
check(selects(monitor?.spec?.selector?.matchLabels, service?.metadata?.labels) &&
    monitor?.spec?.endpoints?.every((e) => service.spec.ports.some((p) => p.name === e.port)),
  "ServiceMonitor selects the Service and its port");
const secretRefs = [...configText.matchAll(new RegExp(`${secretMount}/([A-Za-z0-9._-]+)`, "g"))].map((m) => m[1]);
check(secretRefs.length > 0 && secretRefs.every((k) => k in (secretExample?.stringData ?? {})),
  "every secret file the config reads is a key of secret.example.yaml", `config reads ${secretRefs}`);

// ----------------------------------------------------------------------- 4
// The secret files go to a temporary directory; the config's paths are
// rewritten to it (same length of lines, so reported lines stay right).
function mailhookCheck(text) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mailhook-k8s-"));
  try {
    for (const [k, v] of Object.entries(secretExample?.stringData ?? {})) fs.writeFileSync(path.join(tmp, k), v);
    const file = path.join(tmp, "mailhook.yml");
    fs.writeFileSync(file, text.split(`${secretMount}/`).join(`${tmp}/`));
    const r = spawnSync(mailhook, ["check", "-c", file], { encoding: "utf8" });
    return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
const good = mailhookCheck(configText);
check(good.status === 0 && /OK/.test(good.output), "mailhook check accepts the ConfigMap's mailhook.yml", good.output);
const bad = mailhookCheck(`${configText}unknown_key: 1\n`);
check(bad.status === 2 && /unknown_key/.test(bad.output), "rejected (mailhook check): an unknown key", bad.output);

// ----------------------------------------------------------------------- 5
// The pod's life as the manifests assume it: `mailhook run` on the
// ConfigMap's config, with the IMAP server, the listen address and state_dir
// moved to loopback and a temporary directory. The IMAP port refuses
// connections: /healthz (startup, liveness) must stay 200 after the failed
// connect, /readyz (readiness) 503; SIGTERM must end it with exit 0 well
// within terminationGracePeriodSeconds.
const grace = podSpec.terminationGracePeriodSeconds ?? 30;
const life = await runLikeThePod(configText);
check(life.healthz === 200, "after a failed IMAP connect: /healthz 200 (liveness keeps the pod)", life.detail);
check(life.readyz === 503, "after a failed IMAP connect: /readyz 503 (NotReady)", life.detail);
check(life.exit === 0 && life.stopMs < grace * 1000 / 3,
  `SIGTERM: exit 0 within a third of terminationGracePeriodSeconds (${grace} s)`,
  `exit ${life.exit} after ${life.stopMs} ms; ${life.detail}`);
if (life.stopMs !== undefined) console.log(`     (stopped in ${life.stopMs} ms)`);

console.log(`\ndeploy/kubernetes: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
