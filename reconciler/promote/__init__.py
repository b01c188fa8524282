"""Promotion by merge request: pin edits, a branch and a commit, a push, and the forge's merge request.

It edits the desired-state repository (never a registry) and talks to GitLab or GitHub through their REST
APIs; it never prints a token.

- ``files``: ``promote_in_file`` / ``write_atomically``: read, edit (``reconciler.manifests.edit``) and
  atomically write ``environments/<env>.yaml``;
- ``forge``: ``open_merge_request(settings, spec)`` opens or updates the merge request (GitLab) or pull
  request (GitHub, GitHub Enterprise Server), mapping every failure to ``ForgeError``;
- ``forgeconfig``: ``resolve_forge_settings(remote_url, environ)`` picks the forge, API URL, project and
  token from the Git remote and the environment variables (precedence in docs/promotion.md).
"""
