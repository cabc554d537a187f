"""QR payload -> PNG data URL (what WaGo's `GET /session/qr` returns)."""

from __future__ import annotations

import segno


def qr_data_url(payload: str, scale: int = 5) -> str:
    return segno.make_qr(payload, error="l").png_data_uri(scale=scale, border=2)
