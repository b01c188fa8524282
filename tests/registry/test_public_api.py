"""The public API of reconciler.registry is a contract (the engine codes against it): guard it."""

from __future__ import annotations

import inspect

from reconciler import registry
from reconciler.registry import RegistryClient

EXPECTED = {
    "DEFAULT_DEADLINE_SECONDS",
    "DEFAULT_MAX_CONCURRENCY",
    "BlobOpener",
    "BlobOutcome",
    "Copier",
    "CopyProgress",
    "CopyReport",
    "CredentialResolver",
    "Credentials",
    "Descriptor",
    "ImageSource",
    "ImageStore",
    "Manifest",
    "Platform",
    "RegistryClient",
    "RequestStats",
    "RetryPolicy",
    "UploadOutcome",
    "client_for",
    "copy_image",
    "credentials_for",
    "default_resolver",
    "host_env_prefix",
    "is_loopback",
    "normalize_registry_url",
    "registry_env_prefix",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(registry.__all__) == EXPECTED
    for name in registry.__all__:
        assert hasattr(registry, name), name


def test_client_constructor_is_keyword_only() -> None:
    parameters = inspect.signature(RegistryClient.__init__).parameters
    for name in ("url", "credentials", "insecure", "ca_bundle", "max_concurrency", "retry", "transport"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_client_methods_exist_with_their_shapes() -> None:
    for name in (
        "ping",
        "head_manifest",
        "get_manifest",
        "put_manifest",
        "delete_manifest",
        "list_tags",
        "catalog",
        "head_blob",
        "blob_exists",
        "get_blob",
        "upload_blob",
        "mount_blob",
    ):
        assert inspect.iscoroutinefunction(getattr(RegistryClient, name)), name
    assert list(inspect.signature(RegistryClient.put_manifest).parameters) == [
        "self",
        "repository",
        "reference",
        "raw",
        "media_type",
    ]
