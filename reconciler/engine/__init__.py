"""The reconcile engine: observe the registries, plan (a pure function), execute, record.

* ``access``       the registry operations a pass needs, as one small interface (``RegistryAccess``).
* ``audit``        the audit log: one JSON line per action or refusal, appended atomically, never rewritten.
* ``execute``      runs a plan: bounded concurrency, dependencies, per-image failure isolation, progress.
* ``gates``        policy gates in a pass: judges each image about to enter a gated environment.
* ``housekeeping`` the lifecycle half of a pass: reads what retention needs, plans archive/delete/destroy.
* ``inventory``    what the registries hold in each environment's repositories (the retention input).
* ``journal``      a pass's audit trail: intent before each registry write, outcome after.
* ``lifecycle``    lifecycle actions, pure: retirements and expired archive entries -> plan actions.
* ``lineage``      where a version has been: environment files' Git history joined with the audit log.
* ``observe``      resolves the planner's lookups (tags, then digests) concurrently through ``access``.
* ``plan``         the planner, pure: (desired, observed) -> ordered, typed actions.
* ``reconcile``    one pass: load -> observe -> plan -> [plan stops here] -> execute -> audit.
* ``registries``   ``RegistryAccess`` on ``reconciler.registry``: one client per registry, one copier.
* ``retention``    retention, pure: which undeclared versions an environment retires, by which rule.
* ``retire``       performs the lifecycle actions: archive, delete, restore, destroy.
* ``shards``       which images a controller replica owns (``--shard I/N``, a stable hash of the name).
* ``travellers``   what travels with each copy: the signatures, SBOMs and attestations its source holds.
* ``trusted``      commit-signature trust for a pass: verifies the desired state's history.

The engine imports only the layers below it (``manifests``, ``registry``, ``archive``, ``policy``,
``source``, ``errors``, ``model``; ``registry`` only lazily, in ``registries``); it never imports the
CLI, the controller or the reports, never prints (progress bars on a terminal excepted) and never maps
errors to exit codes.
"""
