"""examples/deploy against the Kubernetes schemas (offline, strict) and against itself.

kubernetes-validate ships the JSON Schemas of the Kubernetes API, so every core manifest is validated
strictly (an unknown field, a typo like ``livenesProbe``, is an error) with no cluster and no network.
It knows no CustomResourceDefinition: the ServiceMonitor (Prometheus Operator) is checked against
``SERVICEMONITOR_SCHEMA`` below, a subset of the operator's CRD schema written for the fields this
deployment may use, with the real Kubernetes definitions for ``metadata`` and ``selector``; the
Kustomization is checked by what it must list. The rest are the consistency checks no schema can make:
selectors that select, mounts that exist, placeholders that stay fake, the security posture.
"""

from __future__ import annotations

import base64
import copy
import json
from importlib import resources as package_files
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import referencing
import yaml

from .helpers import (
    DEPLOY,
    KUBERNETES_VERSION,
    NAMESPACE,
    ROOT,
    RUN_GID,
    RUN_UID,
    container_env,
    controller,
    documents,
    duration_seconds,
    find,
    kustomization,
    listen_port,
    manifest_files,
    mount_for,
    mounts,
    pod_labels,
    pod_spec,
    quantity,
    resources,
    selects,
    split_args,
    statefulset,
    volumes,
)

CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
"""Kinds kubernetes-validate has no schema for; each is checked by a schema of our own below."""

DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
"""The Prometheus Operator's Duration pattern (``30s``, ``1m30s``)."""

_K8S = "/api/_definitions.json#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1."

SERVICEMONITOR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://kubernetes.io/api/servicemonitor/monitoring/v1",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"$ref": _K8S + "ObjectMeta"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"$ref": _K8S + "LabelSelector"},
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "targetLabels": {"type": "array", "items": {"type": "string"}},
                "podTargetLabels": {"type": "array", "items": {"type": "string"}},
                "sampleLimit": {"type": "integer", "minimum": 0},
                "targetLimit": {"type": "integer", "minimum": 0},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https", "HTTP", "HTTPS"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                            "honorLabels": {"type": "boolean"},
                            "honorTimestamps": {"type": "boolean"},
                            "relabelings": {"type": "array", "items": {"type": "object"}},
                            "metricRelabelings": {"type": "array", "items": {"type": "object"}},
                            "params": {"type": "object"},
                            "tlsConfig": {"type": "object"},
                        },
                    },
                },
            },
        },
    },
}
"""What this deployment may write in a ServiceMonitor: the shape of the operator's CRD (field names, types,
the Duration pattern, required ``selector`` and ``endpoints``) for the fields listed; any other field is
refused, so a typo fails here instead of being silently dropped by the API server's pruning. Add a field
(from the operator's API reference) when the example starts using it."""


def _strict_validate(resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def _servicemonitor_validator() -> jsonschema.Draft202012Validator:
    schemas = package_files.files("kubernetes_validate") / "kubernetes-json-schema"
    definitions_file = schemas / f"v{KUBERNETES_VERSION}-local-strict" / "_definitions.json"
    definitions = referencing.Resource.from_contents(json.loads(definitions_file.read_text(encoding="utf-8")))
    registry = definitions @ referencing.Registry()
    return jsonschema.Draft202012Validator(SERVICEMONITOR_SCHEMA, registry=registry)


# ---- schemas ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_every_manifest_is_valid_for_kubernetes_offline_and_strict(path: Any) -> None:
    docs = documents(path)
    assert docs, f"{path.name} holds no resource"
    for resource in docs:
        if (resource["apiVersion"], resource["kind"]) in CRD_KINDS:
            continue  # checked below with its own schema
        _strict_validate(resource)


def test_strict_validation_catches_a_misspelt_field() -> None:
    """The check above is only worth something if strict mode refuses unknown fields: prove it on a copy."""
    broken = copy.deepcopy(statefulset())
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        _strict_validate(broken)


def test_the_only_kinds_without_a_kubernetes_schema_are_known_crds() -> None:
    for name, resource in resources():
        try:
            _strict_validate(resource)
        except kubernetes_validate.SchemaNotFoundError:
            assert (resource["apiVersion"], resource["kind"]) in CRD_KINDS, name


def test_servicemonitor_has_the_operator_shape() -> None:
    validator = _servicemonitor_validator()
    monitor = find("ServiceMonitor")
    errors = sorted(validator.iter_errors(monitor), key=str)
    assert not errors, [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]
    # and the subset schema is strict: a typo or a wrong type fails
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["intervall"] = "30s"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert not validator.is_valid(broken)
    broken = copy.deepcopy(monitor)
    broken["metadata"]["labels"] = {"release": 1}
    assert not validator.is_valid(broken)


def test_servicemonitor_scrapes_metrics_of_the_metrics_service_only() -> None:
    monitor = find("ServiceMonitor")["spec"]
    metrics = find("Service", "reconciler-metrics")
    headless = find("Service", "reconciler-headless")
    assert monitor["namespaceSelector"]["matchNames"] == [metrics["metadata"]["namespace"]]
    assert selects(monitor["selector"], metrics["metadata"]["labels"])
    assert not selects(monitor["selector"], headless["metadata"]["labels"]), "each shard would be scraped twice"
    service_ports = {port["name"]: port for port in metrics["spec"]["ports"]}
    for endpoint in monitor["endpoints"]:
        assert endpoint["port"] in service_ports, f"ServiceMonitor port {endpoint['port']} is not a Service port"
        assert endpoint["path"] == "/metrics"
        interval = endpoint["interval"]
        timeout = endpoint.get("scrapeTimeout", "10s")
        assert duration_seconds(timeout) <= duration_seconds(interval)


def test_kustomization_applies_everything_but_the_secret_examples() -> None:
    """kubectl apply -k must not overwrite real Secrets with the fake examples, and must not miss a file."""
    document = kustomization()
    assert document["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert document["kind"] == "Kustomization"
    assert document["namespace"] == NAMESPACE
    listed = document["resources"]
    assert len(listed) == len(set(listed))
    expected = {path.name for path in manifest_files() if not path.name.endswith(".example.yaml")}
    assert set(listed) == expected
    assert all(path.name.startswith("secret-") for path in manifest_files() if path.name.endswith(".example.yaml"))
    assert not [r for name, r in resources() if r["kind"] == "Secret" and name in listed], "a Secret is applied"
    (image,) = document["images"]
    repository = controller()["image"].rsplit(":", 1)[0]
    assert image["name"] == repository


def test_every_resource_is_in_the_namespace_and_labelled() -> None:
    for name, resource in resources():
        metadata = resource["metadata"]
        if resource["kind"] == "Namespace":
            assert metadata["name"] == NAMESPACE
        else:
            assert metadata.get("namespace") == NAMESPACE, f"{name}: namespace"
        assert metadata["labels"]["app.kubernetes.io/name"] == "reconciler", f"{name}: labels"


# ---- the StatefulSet -------------------------------------------------------------------------------------


def test_selectors_select_the_controller_pods() -> None:
    labels = pod_labels()
    spec = statefulset()["spec"]
    assert selects(spec["selector"], labels)
    for service in ("reconciler-headless", "reconciler-metrics"):
        assert selects(find("Service", service)["spec"]["selector"], labels), service
    assert selects(find("NetworkPolicy")["spec"]["podSelector"], labels)
    assert selects(find("PodDisruptionBudget")["spec"]["selector"], labels)
    for constraint in pod_spec().get("topologySpreadConstraints", []):
        assert selects(constraint["labelSelector"], labels)


def test_statefulset_shards_match_replicas_and_start_in_parallel() -> None:
    spec = statefulset()["spec"]
    _, options = split_args(controller()["args"][1:])
    assert "--shard-from-hostname" in options, "each pod must take its shard from its ordinal"
    assert "--shard" not in options, "--shard I/N would give every replica the same shard"
    assert int(options["--shards"] or 0) == spec["replicas"] == 2
    assert spec["podManagementPolicy"] == "Parallel"
    headless = find("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True


def test_desired_state_comes_from_git() -> None:
    args = controller()["args"]
    positionals, options = split_args(args[1:])
    assert args[0] == "controller"
    assert positionals == [], "a DIR argument would override --repo"
    repo = urlsplit(options.get("--repo") or "")
    assert repo.scheme in {"ssh", "https"}, options.get("--repo")
    assert repo.hostname, options.get("--repo")
    assert options.get("--ref")
    assert repo.password is None, "no credentials in the URL: they would show in the pod spec and in ps"
    assert repo.username in {None, "git"}


def test_termination_grace_outlasts_the_controller_grace() -> None:
    _, options = split_args(controller()["args"][1:])
    grace = duration_seconds(options["--grace"] or "")
    assert pod_spec()["terminationGracePeriodSeconds"] >= grace + 10


def test_pod_security_is_restricted() -> None:
    """The Pod Security Standard "restricted", plus a read-only root filesystem and the image's own uid."""
    namespace = find("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    spec = pod_spec()
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (RUN_UID, RUN_GID, RUN_GID)
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key), key
    for container in [*spec["containers"], *spec.get("initContainers", [])]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser", RUN_UID) == RUN_UID
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context.get("privileged", False) is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert not container.get("volumeDevices")
    allowed = {"configMap", "secret", "projected", "emptyDir", "persistentVolumeClaim", "name"}
    for volume in volumes().values():
        assert set(volume) <= allowed, f"volume {volume['name']} is of a type restricted pods may not use"


def test_no_kubernetes_api_access() -> None:
    account = find("ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec()
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False, "Service variables (RECONCILER_PORT...) would shadow ours"
    assert not [r for _, r in resources() if r["kind"] in {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}]


def test_resources_have_requests_and_limits() -> None:
    limits = controller()["resources"]["limits"]
    requests = controller()["resources"]["requests"]
    for key in ("cpu", "memory"):
        assert key in requests, key
        assert key in limits, key
    for key in requests:
        assert quantity(requests[key]) <= quantity(limits[key]), key


def test_writable_paths_are_volumes_and_the_data_volume_is_per_replica() -> None:
    env = container_env()
    by_path = mounts()
    all_volumes = volumes()
    data = mount_for("/var/lib/reconciler")
    assert data["mountPath"] == "/var/lib/reconciler"
    assert "persistentVolumeClaim" in all_volumes[data["name"]], "the data must survive restarts"
    (template,) = statefulset()["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    retention = statefulset()["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert retention == {"whenDeleted": "Retain", "whenScaled": "Retain"}, "audit log and archive are records"
    # state, audit log and archive on the data volume; the Git cache and /tmp on scratch space
    for path in (env["RECONCILER_STATE_DIR"], env["RECONCILER_AUDIT_LOG"], _archive_store()):
        assert mount_for(path)["name"] == data["name"], path
    for path in (env["RECONCILER_CACHE_DIR"], "/tmp"):
        mount = mount_for(path)
        assert "emptyDir" in all_volumes[mount["name"]], path
        assert all_volumes[mount["name"]]["emptyDir"].get("sizeLimit"), f"{path}: unbounded emptyDir"
    for path in (env["RECONCILER_STATE_DIR"], env["RECONCILER_AUDIT_LOG"], env["RECONCILER_CACHE_DIR"], "/tmp"):
        assert not mount_for(path).get("readOnly"), path
    for mount in by_path.values():
        assert mount["name"] in all_volumes, f"mount of an undeclared volume {mount['name']}"


def _archive_store() -> str:
    """``archive.store`` of the project's example desired state: where the controller writes archives."""
    config = yaml.safe_load((ROOT / "examples" / "manifests" / "reconciler.yaml").read_text(encoding="utf-8"))
    store: str = config["archive"]["store"]
    return store


def test_docker_config_secret_is_mounted_read_only_at_docker_config() -> None:
    env = container_env()
    mount = mounts()[env["DOCKER_CONFIG"]]
    assert mount.get("readOnly") is True
    volume = volumes()[mount["name"]]["secret"]
    assert volume["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]
    assert volume["defaultMode"] & 0o077 == 0o040, "owner and group (fsGroup) read, nobody else"
    secret = find("Secret", volume["secretName"])
    assert secret["type"] == "kubernetes.io/dockerconfigjson"


def test_git_ssh_command_uses_the_mounted_key_and_pinned_host_key() -> None:
    command = container_env()["GIT_SSH_COMMAND"].split()
    key = command[command.index("-i") + 1]
    known_hosts = next(word.split("=", 1)[1] for word in command if word.startswith("UserKnownHostsFile="))
    assert "StrictHostKeyChecking=yes" in command
    for path in (key, known_hosts):
        mount = mount_for(path)
        assert mount.get("readOnly") is True
        projected = volumes()[mount["name"]]["projected"]
        relative = path.removeprefix(mount["mountPath"].rstrip("/") + "/")
        items = [item for source in projected["sources"] for item in next(iter(source.values()))["items"]]
        assert relative in {item["path"] for item in items}, path
    sources = volumes()[mount_for(key)["name"]]["projected"]["sources"]
    find("Secret", next(s["secret"]["name"] for s in sources if "secret" in s))
    find("ConfigMap", next(s["configMap"]["name"] for s in sources if "configMap" in s))


def test_secret_examples_hold_only_fake_values() -> None:
    """The examples show the shape; a real credential must never be committed in their place."""
    docker = find("Secret", "reconciler-docker-config")
    config = json.loads(docker["stringData"][".dockerconfigjson"])
    assert config["auths"]
    for host, entry in config["auths"].items():
        assert base64.b64decode(entry["auth"]).decode() == "REPLACE-ME:REPLACE-ME", host
    assert set(config) == {"auths"}, "no credsStore/credHelpers: the image has no docker-credential-* helper"
    registries = yaml.safe_load((ROOT / "examples" / "manifests" / "reconciler.yaml").read_text())["registries"]
    hosts = {registry["url"].split("://", 1)[1] for registry in registries.values()}
    assert set(config["auths"]) == hosts
    key = find("Secret", "reconciler-git-ssh")
    assert key["type"] == "kubernetes.io/ssh-auth"
    assert "REPLACE-ME" in key["stringData"]["ssh-privatekey"]
    assert "PRIVATE KEY" not in key["stringData"]["ssh-privatekey"]
    for path in DEPLOY.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "PRIVATE KEY-----" not in text, path.name


def test_network_policy_allows_only_what_the_controller_needs() -> None:
    policy = find("NetworkPolicy")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    _, options = split_args(controller()["args"][1:])
    port = listen_port(options)
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": port}]
    peers = ingress["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in peers
    assert {"podSelector": {}} in peers
    assert len(peers) == 2
    allowed: set[tuple[str, int]] = set()
    for rule in policy["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows every port"
        allowed |= {(p["protocol"], p["port"]) for p in rule["ports"]}
    assert allowed == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 22)}


def test_image_is_pinned_to_the_released_version() -> None:
    from reconciler import __version__

    image = controller()["image"]
    repository, _, tag = image.rpartition(":")
    assert "/" in repository, image
    assert tag == __version__, image
    assert tag not in {"latest", ""}
    assert statefulset()["metadata"]["labels"]["app.kubernetes.io/version"] == __version__
    assert pod_labels()["app.kubernetes.io/version"] == __version__
    (entry,) = kustomization()["images"]
    assert entry["newTag"] == __version__
