"""Test-only helpers: the loopback HTTP kit (``httpserver``, ``http11``, ``certs``) and the fakes built on it
(``fakeregistry``, ``tokenserver``, ``faultproxy``), the skopeo wrapper, registry fixtures' types. Imported
as ``support.*`` (conftest puts ``tests/`` on ``sys.path``). Nothing here is imported by the product."""
