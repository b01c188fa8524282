"""The controller image (``Dockerfile``) and its Kubernetes deployment (``examples/deploy``), checked offline:
schemas, the controller's real command line, hadolint and the project's own Dockerfile linter."""
