from reconciler.cli.app import app  # noqa: F401
