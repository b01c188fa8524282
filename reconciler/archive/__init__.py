"""The archive store: retired images kept as an OCI image layout on offline storage.

Archive, verify, restore, destroy, export and import. The layout implements ``ImageStore``
(``reconciler.model.store``), so the registry copier moves images into and out of it; this package never
talks to a registry itself and never deletes from one.

Public API (docs/archive.md describes the format and the guarantees):

* ``OciLayout(path)`` the store: the ``ImageStore`` methods, plus ``entries``/``entry``, ``add_entry``
  (name a copied image, with ``provenance`` annotations), ``remove_entries`` then ``collect_garbage``
  (destroy), ``verify`` (whole layout) and ``verify_entry`` (one image, before a registry delete);
* ``export`` / ``import_archive`` write and read ``oci-archive`` tarballs;
* value types: ``ArchiveEntry``, ``VerifyReport``, ``EntryVerification``, ``VerifyProblem``,
  ``GarbageReport``, ``ExportReport``, ``ImportReport``; annotation keys ``REF_NAME``, ``ARCHIVED_AT``,
  ``SOURCE_REGISTRY``, ``SOURCE_REPOSITORY``, ``SOURCE_COMMIT``.

Modules: ``layout`` (the store), ``directory`` (layout files, index, lock), ``files`` (paths, atomic
writes, the lock, OS error mapping), ``streams`` (blob I/O in worker threads), ``index`` (``index.json`` as a
value), ``verify`` and ``maintenance`` (verification, garbage collection), ``tarball`` (export, import).
"""

from __future__ import annotations

from reconciler.archive.index import (
    ARCHIVED_AT,
    REF_NAME,
    SOURCE_COMMIT,
    SOURCE_REGISTRY,
    SOURCE_REPOSITORY,
    ArchiveEntry,
    entry_name,
    provenance,
    split_entry_name,
)
from reconciler.archive.layout import DEFAULT_LOCK_TIMEOUT, OciLayout
from reconciler.archive.maintenance import GarbageReport
from reconciler.archive.tarball import ExportReport, ImportReport, export, import_archive
from reconciler.archive.verify import EntryVerification, VerifyProblem, VerifyReport

__all__ = [
    "ARCHIVED_AT",
    "DEFAULT_LOCK_TIMEOUT",
    "REF_NAME",
    "SOURCE_COMMIT",
    "SOURCE_REGISTRY",
    "SOURCE_REPOSITORY",
    "ArchiveEntry",
    "EntryVerification",
    "ExportReport",
    "GarbageReport",
    "ImportReport",
    "OciLayout",
    "VerifyProblem",
    "VerifyReport",
    "entry_name",
    "export",
    "import_archive",
    "provenance",
    "split_entry_name",
]
