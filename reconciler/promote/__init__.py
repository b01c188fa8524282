"""Promotion by merge request: pin edits, a branch and a commit, a push, and the forge's merge request.

It edits the desired-state repository (never a registry) and talks to GitLab or GitHub through their REST
APIs; it never prints a token.
"""
