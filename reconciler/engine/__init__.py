"""The reconcile engine: observe the registries, plan (a pure function), execute, report.

* ``plan``      the planner, pure: (desired, observed) -> ordered, typed actions; also says what the
                observer must look up (``tag_lookups``, ``manifest_lookups``).
* ``observe``   resolves those lookups concurrently through a ``RegistryAccess``.
* ``execute``   runs a plan: bounded concurrency, dependencies, per-image failure isolation, progress.
* ``reconcile`` one pass: observe -> plan -> [dry run returns here] -> execute -> audit.
* ``access``    the four registry operations the engine needs; ``registries`` implements them on
                ``reconciler.registry``.
* ``report``    plans and results as plain data for the CLI and the controller.

The engine imports ``model``, ``registry`` (only in ``registries``, lazily) and
``audit``; it never imports the CLI, never prints (progress bars on a terminal excepted) and never maps
errors to exit codes.
"""
