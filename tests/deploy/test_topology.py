"""deploy/Procfile is the source of truth for process kinds: every kind has a Deployment in the
k8s base and a service in compose.yaml that runs the same command (the image's entrypoint looks the
kind up in the Procfile), and each kind has what operating it needs (probes, PDB, HPA, metrics)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .support import BASE, DEPLOY, ROOT, NO_KUSTOMIZE, OVERLAYS, WORKER_COMPONENTS, api_port, base_resources, by_kind, \
    component, compose, config_literals, jobfile, kustomization, kustomize_bin, kustomize_build, procfile

# Every variable platformkit reads (platformkit/config.py, auth.py, kafka_io.py, metrics) must be
# set by both deployments (repository.py's REPOSITORY_RETRY_SECONDS has a default).
PLATFORM_ENV = {"KAFKA_BOOTSTRAP_SERVERS", "MONGO_URL", "DB_PREFIX", "TOPIC_PREFIX", "TOPIC_PARTITIONS",
                "TOKEN_SECRET", "TOKEN_SECRET_PREVIOUS", "WEB_WORKERS", "WEB_THREADS"}
SECRET_ENV = {"TOKEN_SECRET", "TOKEN_SECRET_PREVIOUS"}
PROCESS_COMPONENTS = ("api", *WORKER_COMPONENTS)

KINDS = procfile()
DOCS = base_resources()
DEPLOYMENTS = by_kind(DOCS, "Deployment")
SERVICE_NAMES = compose()["services"]


def container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def selects(selector: dict, deployment: dict) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_procfile_has_the_process_kinds():
    assert KINDS, "deploy/Procfile lists no process kind"
    for kind in KINDS:
        assert component(kind) in PROCESS_COMPONENTS, f"{kind}: unknown kind of process"


# ---------------------------------------------------------------- kubernetes


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_process_kind_has_a_deployment_running_it(kind):
    assert kind in DEPLOYMENTS, f"no Deployment {kind} in deploy/k8s/base"
    dep = DEPLOYMENTS[kind]
    c = container(dep)
    assert c["image"] == "congdoan-platform"
    assert c["args"] == [kind], f"{kind}: the entrypoint must be given the Procfile name"
    assert "command" not in c, f"{kind}: keep the image's entrypoint (it reads the Procfile)"
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == component(kind)
    refs = {e.get("configMapRef", {}).get("name") or e.get("secretRef", {}).get("name") for e in c["envFrom"]}
    assert refs == {"congdoan-config", "congdoan-token-keys"}
    assert c["resources"]["requests"] and c["resources"]["limits"]
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_every_deployment_is_a_procfile_kind():
    extra = sorted(set(DEPLOYMENTS) - set(KINDS))
    assert not extra, f"Deployments with no line in deploy/Procfile: {extra}"


@pytest.mark.parametrize("kind", sorted(DEPLOYMENTS))
def test_every_deployment_has_a_pod_disruption_budget(kind):
    pdbs = [p for p in by_kind(DOCS, "PodDisruptionBudget").values() if selects(p["spec"]["selector"], DEPLOYMENTS[kind])]
    assert len(pdbs) == 1, f"{kind}: {len(pdbs)} PodDisruptionBudgets"


@pytest.mark.parametrize("kind", sorted(k for k in KINDS if component(k) == "api"))
def test_every_api_has_probes_a_service_and_an_hpa(kind):
    port = api_port(KINDS[kind])
    c = container(DEPLOYMENTS[kind])
    assert c["ports"] == [{"name": "http", "containerPort": port}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "cpu" in c["resources"]["requests"], "the HPA scales on CPU utilisation of the request"
    annotations = DEPLOYMENTS[kind]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(port)
    svc = by_kind(DOCS, "Service")[kind]
    assert svc["spec"]["selector"] == DEPLOYMENTS[kind]["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == port and svc["spec"]["ports"][0]["targetPort"] == "http"
    hpas = [h for h in by_kind(DOCS, "HorizontalPodAutoscaler").values() if h["spec"]["scaleTargetRef"]["name"] == kind]
    assert len(hpas) == 1, f"{kind}: {len(hpas)} HPAs"
    assert hpas[0]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert hpas[0]["spec"]["minReplicas"] >= 2


def test_only_apis_have_services_and_hpas():
    apis = {k for k in DEPLOYMENTS if component(k) == "api"}
    assert set(by_kind(DOCS, "Service")) == apis
    assert {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(DOCS, "HorizontalPodAutoscaler").values()} == apis


@pytest.mark.parametrize("kind", sorted(k for k in KINDS if component(k) in WORKER_COMPONENTS))
def test_every_other_process_exposes_metrics_on_metrics_port(kind):
    dep = DEPLOYMENTS[kind]
    c = container(dep)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    assert env.get("METRICS_PORT") == "9100"
    assert {"name": "metrics", "containerPort": 9100} in c["ports"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": "9100", "prometheus.io/path": "/metrics"}
    assert "9100" in " ".join(c["livenessProbe"]["exec"]["command"]) or "METRICS_PORT" in " ".join(
        c["livenessProbe"]["exec"]["command"])


def test_the_projector_has_a_scaled_object_up_to_the_partition_count():
    projectors = [k for k in DEPLOYMENTS if component(k) == "projector"]
    assert projectors, "no projector Deployment"
    partitions = int(config_literals(kustomization(BASE))["TOPIC_PARTITIONS"])
    scaled = by_kind(DOCS, "ScaledObject")
    for kind in projectors:
        so = next(s for s in scaled.values() if s["spec"]["scaleTargetRef"]["name"] == kind)
        assert so["spec"]["maxReplicaCount"] == partitions
        # Current limit (docs/operations.md): one projector instance per consumer group.
        assert so["metadata"]["annotations"]["autoscaling.keda.sh/paused-replicas"] == "1"
        assert DEPLOYMENTS[kind]["spec"]["replicas"] == 1
        assert DEPLOYMENTS[kind]["spec"]["strategy"]["type"] == "Recreate"
        assert "consumer_lag" in so["spec"]["triggers"][0]["metadata"].get("query", "") or \
            so["spec"]["triggers"][0]["type"] == "kafka"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_overlay_scales_the_projector_to_its_partitions(overlay):
    if not kustomize_bin():
        pytest.skip(NO_KUSTOMIZE)
    docs = list(kustomize_build(overlay))
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("congdoan-config"))
    partitions = int(cm["data"]["TOPIC_PARTITIONS"])
    so = next(d for d in docs if d["kind"] == "ScaledObject")
    assert so["spec"]["maxReplicaCount"] == partitions
    for d in docs:
        if d["kind"] == "Deployment" and component(d["metadata"]["name"]) == "consumer":
            assert d["spec"]["replicas"] <= partitions
    if overlay.name == "large-province":
        assert partitions == 12
        assert not [d for d in docs if d["kind"] == "Secret"], "production overlays provision the keys out of band"


def test_config_and_secret_cover_the_platform_environment():
    literals = config_literals(kustomization(BASE))
    secret = by_kind(DOCS, "Secret")["congdoan-token-keys"]
    assert set(secret["stringData"]) == SECRET_ENV
    assert not SECRET_ENV & set(literals), "token keys belong in the Secret"
    assert PLATFORM_ENV - SECRET_ENV <= set(literals), PLATFORM_ENV - SECRET_ENV - set(literals)
    assert literals["BIND_HOST"] == "0.0.0.0"
    assert int(literals["TOPIC_PARTITIONS"]) >= 1


def test_topics_job_and_rebuild_template_run_the_jobfile_entries():
    jobs = jobfile()
    assert jobs["topics"] == "python -m platformkit.run topics"
    assert jobs["rebuild"] == "python -m platformkit.run job reporting rebuild"
    topics = by_kind(DOCS, "Job")["topics"]
    assert topics["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics"]
    rebuild = by_kind(DOCS, "CronJob")["reporting-rebuild"]
    assert rebuild["spec"]["suspend"] is True, "a template, never scheduled"
    assert rebuild["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["rebuild"]


def test_scheduled_unit_changes_are_applied_daily_by_the_jobfile_entry():
    assert jobfile()["membership-apply-due"] == "python -m platformkit.run job membership apply-due"
    due = by_kind(DOCS, "CronJob")["membership-apply-due"]
    assert due["spec"].get("suspend") is False and due["spec"]["concurrencyPolicy"] == "Forbid"
    assert due["spec"]["schedule"] == "5 17 * * *"  # 00:05 in Vietnam (UTC+7)
    assert due["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["membership-apply-due"]


# ---------------------------------------------------------------- compose


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_process_kind_has_a_compose_service_running_it(kind):
    spec = compose()
    assert kind in spec["services"], f"no service {kind} in deploy/compose.yaml"
    svc = spec["services"][kind]
    assert svc["command"] == [kind]
    assert "entrypoint" not in svc
    assert svc["image"] == spec["services"]["topics"]["image"]
    assert set(svc["environment"]) >= PLATFORM_ENV
    assert svc["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "replicaSet=" in svc["environment"]["MONGO_URL"]
    assert svc["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    check = " ".join(svc["healthcheck"]["test"])
    if component(kind) == "api":
        port = api_port(KINDS[kind])
        assert f"127.0.0.1:{port}/healthz" in check
        assert svc["ports"] == [f"{port}:{port}"]
    else:
        assert "METRICS_PORT" in check and svc["environment"]["METRICS_PORT"] == "9100"


def test_every_compose_process_service_is_a_procfile_kind():
    infra_and_jobs = {"kafka", "mongo"} | set(jobfile())
    extra = sorted(set(SERVICE_NAMES) - set(KINDS) - infra_and_jobs)
    assert not extra, f"compose services with no line in deploy/Procfile: {extra}"
    spec = compose()
    assert spec["services"]["topics"]["command"] == ["topics"]
    assert spec["services"]["rebuild"]["command"] == ["rebuild"]
    assert spec["services"]["rebuild"]["profiles"] == ["jobs"], "run on demand only"


def test_compose_infrastructure():
    spec = compose()
    services = spec["services"]
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            assert source in spec["volumes"], f"{name}: volume {source} not declared"
        if name not in set(jobfile()):
            assert "healthcheck" in svc, f"{name} has no healthcheck"
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_LOG_RETENTION_MS"] == "-1"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka["environment"]["CLUSTER_ID"]), "KRaft needs a base64 UUID"
    mongo = services["mongo"]
    assert mongo["image"] == "mongo:7"
    assert "--replSet" in mongo["command"]
    rs = mongo["command"][mongo["command"].index("--replSet") + 1]
    assert "rs.initiate" in " ".join(mongo["healthcheck"]["test"])
    assert f"replicaSet={rs}" in services["membership-api"]["environment"]["MONGO_URL"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_compose_file_is_valid_against_the_compose_spec():
    """The Compose Specification's JSON schema, as vendored by check-jsonschema (offline)."""
    out = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
                          str(DEPLOY / "compose.yaml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------- the runner


def runner_kinds() -> dict[str, str]:
    """What the service descriptions say should run, as Procfile name -> command."""
    from platformkit.run import SERVICES, describe
    want = {}
    for service in SERVICES:
        d = describe(service)
        port = {"membership": 8001, "training": 8002, "welfare": 8003, "reporting": 8004}[service]
        want[f"{service}-api"] = (f"gunicorn -c deploy/gunicorn.conf.py -b 127.0.0.1:${{{service.upper()}_PORT:-{port}}} "
                                  f"'platformkit.run:app(\"{service}\")'")
        if d.relay_routes:
            want[f"{service}-relay"] = f"python -m platformkit.run relay {service}"
        for c in d.consumers:
            kind = f"{service}-{'projector' if c.main else 'consumer'}"
            want[kind] = f"python -m platformkit.run consumer {service} {c.name}"
    return want


def test_every_process_kind_is_the_runner_given_a_service_description():
    assert KINDS == runner_kinds()


def test_the_jobs_are_the_runner_too():
    from platformkit.run import describe
    jobs = jobfile()
    assert jobs["topics"] == "python -m platformkit.run topics"
    assert set(describe("reporting").jobs) == {"rebuild"}
    for name, command in jobs.items():
        assert command.startswith("python -m platformkit.run "), name


def test_the_runner_describes_every_service():
    out = subprocess.run([sys.executable, "-m", "platformkit.run", "describe"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    for kind, command in KINDS.items():
        service = kind.split("-")[0]
        assert f"{service}: api" in out.stdout
        if command.startswith("python -m platformkit.run consumer"):
            assert f"consumer {command.split()[-1]}" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "platformkit.run", "consumer", "membership"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert bad.returncode != 0 and "membership has consumers []" in bad.stderr


def test_the_runner_passes_a_jobs_arguments_on():
    out = subprocess.run([sys.executable, "-m", "platformkit.run", "job", "reporting", "rebuild", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "--no-swap" in out.stdout, "the rebuild's own options"
