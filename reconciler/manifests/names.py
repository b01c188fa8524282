"""The names of things in desired state: environments, registries, repository path components, images.

One definition of each grammar, shared by every validator of the desired state. No I/O.
"""

from __future__ import annotations

import re

ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9]*$")
REGISTRY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
IMAGE_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
