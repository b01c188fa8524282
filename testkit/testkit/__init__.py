"""The test kit of reconciler: real local registries, deterministic images, the demo.

A separate distribution (``testkit/pyproject.toml``, ``reconciler-testkit``) so that a production install
of reconciler (the controller image) carries only what it runs. The test suite, the benchmarks and the
``reconciler demo`` command import it; the ``reconciler`` package itself never does (a contract test
keeps it so).

- :mod:`testkit.localregistry` runs ``/usr/bin/docker-registry`` (CNCF distribution 2.8) on a free
  loopback port and parses its request log.
- :mod:`testkit.imagegen` builds deterministic Docker/OCI images (single platform or index);
  :mod:`testkit.imagepush` pushes them with plain httpx (independent of the product's registry client)
  and writes OCI layouts.
- :mod:`testkit.registrywalk` walks a registry and checks that every tag points at a complete image.
- :mod:`testkit.demo` the demo: local registries for the bundled example, seeded, then
  validate / plan / apply / plan; and ``write_chain_state`` for desired states of any size.

It never talks to anything but loopback registries it was pointed at, and never touches a registry's data
outside the storage directory it was given or created.
"""
