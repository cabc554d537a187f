"""WhatsApp drivers: `sim` (simulated network) now; `neonize` (the real one) is not built yet."""

from __future__ import annotations

from session_host.drivers.base import Driver, DriverCallbacks, DriverError

NEONIZE_MISSING = (
    "WHATSAPP_DRIVER=neonize: the neonize driver is not implemented in this build yet; "
    "set WHATSAPP_DRIVER=sim to run the simulated WhatsApp network (local runs and tests)"
)


class DriverUnavailable(RuntimeError):
    pass


def load_driver(name: str, callbacks: DriverCallbacks, settings) -> Driver:
    if name == "sim":
        from session_host.drivers.sim import SimDriver

        return SimDriver(callbacks, settings)
    if name == "neonize":
        raise DriverUnavailable(NEONIZE_MISSING)
    raise DriverUnavailable(f"unknown WHATSAPP_DRIVER {name!r}: use neonize or sim")


__all__ = ["Driver", "DriverCallbacks", "DriverError", "DriverUnavailable", "load_driver"]
