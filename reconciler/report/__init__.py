"""Renderings: plans, pass results, diffs, lint findings and status as text, markdown, JSON and HTML.

Shaping only: functions take data and return strings or JSON-ready dicts. No printing, no exit codes, no
I/O. The JSON shapes are part of the versioned envelope (``reconciler.report.envelope``): fields may be
added freely, never renamed or removed without bumping the envelope version.
"""
