"""reconciler: a GitOps reconciler for container images.

The desired image state of every environment lives in a Git repository; a reconcile pass compares it
with the OCI registries and copies, retags, archives or restores images until they match.

Data flows one way: desired state (Git) -> model -> observed state (registries) -> plan -> policy ->
execute -> report/audit. Lower layers never import upper ones: ``model`` imports nothing of ours,
``manifests`` and ``registry`` import ``model``, ``engine`` imports those, and only ``cli`` and
``controller`` turn errors into exit codes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
