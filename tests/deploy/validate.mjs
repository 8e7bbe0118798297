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
//
// MANIFEST_DIR/replicas (N replicas on an external PostgreSQL) gets steps 1,
// 2 and 4 and its own facts (3: Deployment, PodDisruptionBudget, spread,
// store.url_file in the Secret, probes, the StatefulSet's security contexts,
// the migration Job on the StatefulSet's claim), each also run on a copy
// broken for it. Step 4 there: a binary without the PostgreSQL store refuses
// the store block ("not supported by this build yet"); that is reported as
// PEND (not a failure) and the config without the block must pass instead.
// No step 5 for replicas: its pod needs a PostgreSQL server.
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

// One layout (a directory with its kustomization.yaml): the YAML of every
// file, the kustomization's resources, every manifest listed there unless
// optional (never applied by `kubectl apply -k`).
function loadLayout(dir, optional, prefix = "") {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort();
  const manifests = []; // {label, file, doc}
  let kustomization = null;
  for (const f of files) {
    const { docs, errors } = parseManifests(path.join(dir, f));
    check(errors.length === 0, `${prefix}${f}: YAML`, errors.join("\n"));
    if (f === "kustomization.yaml") {
      kustomization = docs[0];
      continue;
    }
    docs.forEach((doc, i) =>
      manifests.push({ label: `${prefix}${f}#${i + 1} ${doc.kind}/${doc.metadata?.name}`, file: f, doc }));
  }
  check(manifests.length > 0, `manifests found in ${dir}`);
  // kustomization.yaml has no published schema here: its own keys, by hand.
  check(
    kustomization?.apiVersion === "kustomize.config.k8s.io/v1beta1" && kustomization?.kind === "Kustomization",
    `${prefix}kustomization.yaml: apiVersion and kind`,
  );
  for (const r of kustomization?.resources ?? []) {
    check(fs.existsSync(path.join(dir, r)), `${prefix}kustomization.yaml: resource ${r} exists`);
  }
  for (const f of new Set(manifests.map((m) => m.file))) {
    if (!optional.includes(f)) check(kustomization?.resources?.includes(f), `${prefix}kustomization.yaml lists ${f}`);
  }
  return { manifests, kustomization, find: (kind) => manifests.find((m) => m.doc.kind === kind)?.doc };
}

const { manifests, find } = loadLayout(manifestDir, ["secret.example.yaml", "servicemonitor.yaml"]);

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
// Every manifest against its schema and for unknown fields; each broken copy
// must be rejected with a message matching its pattern.
async function schemaAndFields(manifests, brokenSchema, brokenFields) {
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
}
await schemaAndFields(manifests, brokenSchema, brokenFields);

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
function mailhookCheck(text, secret = secretExample, mount = secretMount) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mailhook-k8s-"));
  try {
    for (const [k, v] of Object.entries(secret?.stringData ?? {})) fs.writeFileSync(path.join(tmp, k), v);
    const file = path.join(tmp, "mailhook.yml");
    fs.writeFileSync(file, text.split(`${mount}/`).join(`${tmp}/`));
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

// The facts of replicas/ that no schema sees, from its documents alone (and
// the single-node layout's, whose conventions it keeps): id -> {what, ok}.
function replicaFacts(docs) {
  const of = (kind) => docs.find((d) => d.kind === kind);
  const dep = of("Deployment");
  const pod = dep?.spec?.template?.spec ?? {};
  const labels = dep?.spec?.template?.metadata?.labels;
  const c = pod.containers?.[0];
  const mountsR = Object.fromEntries((c?.volumeMounts ?? []).map((v) => [v.name, v]));
  const volumesR = Object.fromEntries((pod.volumes ?? []).map((v) => [v.name, v]));
  const cm = of("ConfigMap");
  const text = cm?.data?.["mailhook.yml"] ?? "";
  const conf = YAML.parse(text) ?? {};
  const secret = of("Secret");
  const keys = secret?.stringData ?? {};
  const mount = mountsR.secrets?.mountPath;
  const pdb = of("PodDisruptionBudget");
  const svc = of("Service");
  const sm = of("ServiceMonitor");
  const job = of("Job");
  const httpPort = c?.ports?.find((p) => p.name === "http")?.containerPort;
  const probePath = (p) => p?.httpGet?.port === "http" || p?.httpGet?.port === httpPort ? p.httpGet.path : undefined;
  const urlFile = conf.store?.url_file ?? "";
  const refs = [...text.matchAll(new RegExp(`${mount}/([A-Za-z0-9._-]+)`, "g"))].map((m) => m[1]);
  const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);
  const f = {};
  const fact = (id, what, ok, detail) => (f[id] = { what, ok: Boolean(ok), detail });
  fact("replicas", "a Deployment of at least 2 replicas whose selector selects its pods",
    dep?.spec?.replicas >= 2 && selects(dep?.spec?.selector?.matchLabels, labels), `replicas ${dep?.spec?.replicas}`);
  fact("pdb", "the PodDisruptionBudget allows 1 unavailable and selects the Deployment's pods",
    pdb?.spec?.maxUnavailable === 1 && pdb?.spec?.selector?.matchLabels &&
      selects(pdb.spec.selector.matchLabels, labels) && same(pdb.spec.selector, dep?.spec?.selector));
  const spread = pod.topologySpreadConstraints ?? [];
  const anti = pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
  fact("spread", "pods spread across nodes (preferred): every constraint selects the Deployment's pods",
    [...spread, ...anti.map((t) => ({ ...t.podAffinityTerm, whenUnsatisfiable: "ScheduleAnyway" }))]
      .some((t) => t.topologyKey === "kubernetes.io/hostname" && t.whenUnsatisfiable === "ScheduleAnyway") &&
      spread.every((t) => selects(t.labelSelector?.matchLabels, labels)) &&
      anti.every((t) => selects(t.podAffinityTerm?.labelSelector?.matchLabels, labels)));
  fact("noVolume", "state_dir is an emptyDir (no persistent volume: the state is in PostgreSQL)",
    mountsR.state?.mountPath === conf.state_dir && volumesR.state?.emptyDir &&
      !(pod.volumes ?? []).some((v) => v.persistentVolumeClaim), `state_dir ${conf.state_dir}`);
  fact("storeSecret", "store.url_file is a key of the example Secret, mounted 0400, holding a postgresql:// URL",
    path.dirname(urlFile) === mount && /^postgres(ql)?:\/\//.test(keys[path.basename(urlFile)] ?? "") &&
      volumesR.secrets?.secret?.secretName === secret?.metadata?.name &&
      volumesR.secrets?.secret?.defaultMode === 0o400,
    `url_file ${urlFile}, mount ${mount}, keys ${Object.keys(keys)}`);
  fact("secretKeys", "every secret file the config reads is a key of the example Secret",
    refs.length > 0 && refs.every((k) => k in keys), `config reads ${refs}`);
  const arg = c?.args?.[c.args.indexOf("-c") + 1] ?? "";
  fact("config", "run -c names the ConfigMap's mailhook.yml at its mount path",
    volumesR.config?.configMap?.name === cm?.metadata?.name && path.dirname(arg) === mountsR.config?.mountPath &&
      path.basename(arg) === "mailhook.yml");
  fact("listen", "http.listen is 0.0.0.0 on the container's http port", conf.http?.listen === `0.0.0.0:${httpPort}`,
    `${conf.http?.listen} vs ${httpPort}`);
  fact("probes", "startup and liveness probe /healthz, readiness /readyz, on the http port",
    probePath(c?.startupProbe) === "/healthz" && probePath(c?.livenessProbe) === "/healthz" &&
      probePath(c?.readinessProbe) === "/readyz");
  fact("security", "pod and container security contexts are the StatefulSet's; no service account token",
    same(pod.securityContext, sts?.spec?.template?.spec?.securityContext) &&
      same(c?.securityContext, container?.securityContext) &&
      pod.automountServiceAccountToken === false &&
      (pod.volumes ?? []).every((v) => Object.keys(v).some((k) => restrictedVolume.includes(k))));
  fact("namespace", "namespace.yaml is the single-node layout's (Pod Security restricted)",
    same(of("Namespace"), find("Namespace")));
  fact("names", "ConfigMap, Secret and mount paths as in the single-node layout",
    cm?.metadata?.name === configMap?.metadata?.name && secret?.metadata?.name === secretExample?.metadata?.name &&
      mount === secretMount && mountsR.config?.mountPath === mounts.config?.mountPath);
  fact("grace", "terminationGracePeriodSeconds of at least 10 s for a clean leave",
    (pod.terminationGracePeriodSeconds ?? 30) >= 10);
  fact("service", "Service and ServiceMonitor select the pods and the http port, prometheus.io annotations",
    selects(svc?.spec?.selector, labels) &&
      svc?.spec?.ports?.some((p) => p.port === httpPort && p.targetPort === "http") &&
      svc?.metadata?.annotations?.["prometheus.io/port"] === String(httpPort) &&
      selects(sm?.spec?.selector?.matchLabels, svc?.metadata?.labels) &&
      sm?.spec?.endpoints?.every((e) => svc.spec.ports.some((p) => p.name === e.port)));
  const jpod = job?.spec?.template?.spec ?? {};
  const jc = jpod.containers?.[0];
  const jmount = (n) => jc?.volumeMounts?.find((v) => v.name === n)?.mountPath;
  const jvol = (n) => jpod.volumes?.find((v) => v.name === n);
  const ja = (flag) => jc?.args?.[jc.args.indexOf(flag) + 1];
  const claim = `${sts?.spec?.volumeClaimTemplates?.[0]?.metadata?.name}-${sts?.metadata?.name}-0`;
  fact("migrate", "the migration Job reads the StatefulSet's claim at its state_dir and writes to store_url",
    same(jc?.args?.slice(0, 2), ["store", "migrate"]) && jvol("state")?.persistentVolumeClaim?.claimName === claim &&
      ja("--from") === config.state_dir && jmount("state") === config.state_dir &&
      ja("--to-file") === urlFile && path.dirname(urlFile) === jmount("secrets") &&
      jvol("secrets")?.secret?.secretName === secret?.metadata?.name &&
      same(jpod.securityContext, pod.securityContext) && same(jc?.securityContext, c?.securityContext),
    `claim ${jvol("state")?.persistentVolumeClaim?.claimName} vs ${claim}`);
  return f;
}

// ================================================================ replicas/
// deploy/kubernetes/replicas: N replicas on an external PostgreSQL. The same
// steps 1, 2 and 4; its own facts (3), each of which must fail on a broken
// copy made for it; no step 5 (a pod of it needs the PostgreSQL store).
let pending = 0;
const replicasDir = path.join(manifestDir, "replicas");
if (fs.existsSync(path.join(replicasDir, "kustomization.yaml"))) {
  const R = loadLayout(replicasDir, ["secret.example.yaml", "servicemonitor.yaml", "migrate-job.yaml"], "replicas/");
  const dep = R.find("Deployment");
  const pdb = R.find("PodDisruptionBudget");
  await schemaAndFields(R.manifests, [
    ["Deployment with replicas \"3\" (a string)", broken(dep, (d) => {
      d.spec.replicas = "3";
    }), /replicas must be integer/],
    ["PodDisruptionBudget with a string selector", broken(pdb, (d) => {
      d.spec.selector = "app.kubernetes.io/name=mailhook";
    }), /selector must be object/],
    ["PodDisruptionBudget with unhealthyPodEvictionPolicy Always", broken(pdb, (d) => {
      d.spec.unhealthyPodEvictionPolicy = "Always";
    }), /unhealthyPodEvictionPolicy/],
  ], [
    ["PodDisruptionBudget with a misspelt maxUnavailible", broken(pdb, (d) => {
      d.spec.maxUnavailible = 1;
    }), /maxUnavailible/],
    ["Deployment with topologySpreadConstraints under the container", broken(dep, (d) => {
      d.spec.template.spec.containers[0].topologySpreadConstraints = d.spec.template.spec.topologySpreadConstraints;
    }), /topologySpreadConstraints/],
  ]);

  const facts = replicaFacts(R.manifests.map((m) => m.doc));
  for (const f of Object.values(facts)) check(f.ok, `replicas: ${f.what}`, f.detail ?? "");
  // Each fact must fail on a copy broken for it (the others may fail too).
  const withDoc = (kind, edit, name) => R.manifests.map((m) =>
    m.doc.kind === kind && (!name || m.doc.metadata.name === name) ? broken(m.doc, edit) : m.doc);
  const podOf = (d) => d.spec.template.spec;
  const brokenFacts = [
    ["storeSecret", "the example Secret without store_url", withDoc("Secret", (d) => delete d.stringData.store_url)],
    ["pdb", "a PDB selecting component: other", withDoc("PodDisruptionBudget", (d) => {
      d.spec.selector.matchLabels["app.kubernetes.io/component"] = "other";
    })],
    ["listen", "containerPort 8026 (the config listens on 8025)", withDoc("Deployment", (d) => {
      podOf(d).containers[0].ports[0].containerPort = 8026;
    })],
    ["probes", "readiness on /healthz", withDoc("Deployment", (d) => {
      podOf(d).containers[0].readinessProbe.httpGet.path = "/healthz";
    })],
    ["noVolume", "state_dir on a PersistentVolumeClaim", withDoc("Deployment", (d) => {
      podOf(d).volumes.find((v) => v.name === "state").persistentVolumeClaim = { claimName: "state" };
      delete podOf(d).volumes.find((v) => v.name === "state").emptyDir;
    })],
    ["security", "a writable root filesystem", withDoc("Deployment", (d) => {
      podOf(d).containers[0].securityContext.readOnlyRootFilesystem = false;
    })],
    ["spread", "a spread constraint selecting other pods", withDoc("Deployment", (d) => {
      podOf(d).topologySpreadConstraints[0].labelSelector.matchLabels = { app: "other" };
    })],
    ["migrate", "the migration Job on another claim", withDoc("Job", (d) => {
      podOf(d).volumes.find((v) => v.name === "state").persistentVolumeClaim.claimName = "state-mailhook-1";
    })],
  ];
  for (const [id, what, docs] of brokenFacts) {
    const f = replicaFacts(docs)[id];
    check(f && !f.ok, `rejected (fact "${f?.what ?? id}"): ${what}`);
  }

  // 4: the whole config, the PostgreSQL store included, must pass `mailhook
  // check`. A build that does not have the PostgreSQL store yet refuses the
  // store block with "not supported by this build yet": reported as PENDING,
  // and the config without the block must then pass, so the rest of it is
  // checked all the same.
  const rConfigText = R.find("ConfigMap")?.data?.["mailhook.yml"] ?? "";
  const rSecret = R.find("Secret");
  const rMount = podOf(dep).containers[0].volumeMounts.find((v) => v.name === "secrets")?.mountPath;
  const full = mailhookCheck(rConfigText, rSecret, rMount);
  const notYet = /PostgreSQL is not supported by this build yet/;
  if (full.status !== 0 && notYet.test(full.output) && full.output.trim().split("\n").length === 1) {
    pending++;
    console.log(`PEND replicas: mailhook check accepts the ConfigMap's mailhook.yml: this binary has no ` +
      `PostgreSQL store yet\n     ${full.output}`);
    const withoutStore = YAML.parseDocument(rConfigText);
    withoutStore.delete("store");
    const rest = mailhookCheck(withoutStore.toString(), rSecret, rMount);
    check(rest.status === 0 && /OK/.test(rest.output),
      "replicas: mailhook check accepts the ConfigMap's mailhook.yml without its store block", rest.output);
  } else {
    check(full.status === 0 && /OK/.test(full.output), "replicas: mailhook check accepts the ConfigMap's mailhook.yml",
      full.output);
  }
  const rBad = mailhookCheck(`${rConfigText}unknown_key: 1\n`, rSecret, rMount);
  check(rBad.status === 2 && /unknown_key/.test(rBad.output), "rejected (mailhook check, replicas): an unknown key",
    rBad.output);
}

console.log(`\ndeploy/kubernetes: ${passed} passed, ${failed} failed` +
  (pending ? `, ${pending} pending (see PEND)` : ""));
process.exit(failed === 0 ? 0 : 1);
