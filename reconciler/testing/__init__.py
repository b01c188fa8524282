"""Test and demo infrastructure: real local registries and deterministic generated images.

Used by the test suite AND by the product's demo command, so it is real, typed code. It never talks to
anything but loopback registries it was pointed at, and never touches a registry's data outside the
storage directory it was given or created.

- :mod:`reconciler.testing.localregistry` runs ``/usr/bin/docker-registry`` (CNCF distribution 2.8) on a
  free loopback port and parses its request log.
- :mod:`reconciler.testing.imagegen` builds deterministic Docker/OCI images (single platform or index),
  pushes them with plain httpx (independent of the product's registry client), and writes OCI layouts.
"""

from __future__ import annotations
