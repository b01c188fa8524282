"""Test-only helpers: skopeo wrapper, token server, fault proxy. Imported as ``support.*`` (conftest puts
``tests/`` on ``sys.path``). Nothing here is imported by the product."""
