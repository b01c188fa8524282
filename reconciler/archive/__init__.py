"""The archive store: retired images kept as an OCI image layout on offline storage.

Archive, verify, restore, destroy, export and import. The layout implements ``ImageStore``
(``reconciler.model.store``), so the registry copier moves images into and out of it; this package never
talks to a registry itself and never deletes from one.
"""
