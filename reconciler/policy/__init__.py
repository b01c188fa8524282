"""Policy: image gates, the Dockerfile linter and trust rules, as pure functions over data.

Nothing here does I/O: the engine fetches manifests and configs and hands them in; the CLI reads
Dockerfiles and hands their text in. A rule returns findings; it never raises to say "no".
"""
