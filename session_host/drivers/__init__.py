"""WhatsApp drivers: `neonize` (real WhatsApp, the default) and `sim` (a simulated network)."""

from __future__ import annotations

from chalicelib.core.errors import DomainError
from session_host.drivers.base import Driver, DriverCallbacks


class DriverUnavailable(RuntimeError):
    pass


def load_driver(name: str, callbacks: DriverCallbacks, settings) -> Driver:
    if name == "sim":
        from session_host.sim.driver import SimDriver

        return SimDriver(callbacks, settings)
    if name == "neonize":
        try:
            from session_host.drivers.neonize import NeonizeDriver
        except ImportError as exc:  # neonize or its system libraries (libmagic1) missing
            raise DriverUnavailable(f"WHATSAPP_DRIVER=neonize: cannot load neonize: {exc}") from None
        return NeonizeDriver(callbacks, settings)
    raise DriverUnavailable(f"unknown WHATSAPP_DRIVER {name!r}: use neonize or sim")


__all__ = ["Driver", "DriverCallbacks", "DomainError", "DriverUnavailable", "load_driver"]
