"""The HTTP edge of admission: a request body read in chunks and never buffered beyond the 1 MiB limit."""

from __future__ import annotations

from starlette.requests import Request

from services.platform.admission.outcome import MAX_VALUE_BYTES


async def read_bounded_body(request: Request, limit: int = MAX_VALUE_BYTES) -> bytes | None:
    """The body, or None once it passes `limit` bytes (the rest is never read into memory)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
