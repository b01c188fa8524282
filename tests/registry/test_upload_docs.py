"""docs/registry.md describes blob uploads as ``reconciler/registry/uploads.py`` makes them: the split upload
with its tail size, and the statuses that make an upload start over another way."""

from __future__ import annotations

from pathlib import Path

from reconciler.registry.uploads import BODY_REFUSED, PATCH_REFUSED, STREAM_TAIL_BYTES

DOC = Path(__file__).resolve().parents[2] / "docs" / "registry.md"


def _uploads_section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Blobs and uploads")
    end = text.find("\n## ", start + 1)
    return " ".join(text[start : end if end >= 0 else None].split())  # as a reader sees it: lines joined


def test_the_registry_page_describes_the_uploads_the_code_makes() -> None:
    section = _uploads_section()
    assert "Uploads are monolithic" not in section
    tail = f"{STREAM_TAIL_BYTES // 1024} KiB"
    assert f"one streaming PATCH of all but its last {tail}" in section
    assert "then the closing PUT `?digest=` carrying those last bytes" in section
    assert f"refuses the PATCH ({'/'.join(map(str, sorted(PATCH_REFUSED)))})" in section
    assert f"({'/'.join(map(str, sorted(BODY_REFUSED)))}), the upload restarts chunked" in section
