"""WhatsApp keeps running while the gateway is down: a sim phone messages an account, offline.

`python -m tests.integration.offline_network STATE_DIR FROM_PHONE TO_PHONE BODY` loads a stopped
gateway's state directory into an in-process moto, lets the sim network (the simulated WhatsApp)
deliver one text, and writes the state back: what WhatsApp's servers would hold for the account's
devices when the gateway comes back. Prints the message id.
"""

from __future__ import annotations

import os
import sys

os.environ.update(STAGE="local", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_DEFAULT_REGION="us-east-1")
os.environ.pop("AWS_ENDPOINT_URL", None)


def main(state_dir: str, from_phone: str, to_phone: str, body: str) -> int:
    from moto import mock_aws

    with mock_aws():
        from chalicelib.core.events import EventPublisher
        from chalicelib.core.settings import get_settings
        from local_gateway import provision
        from local_gateway.state import Backends, Durable, LocalState
        from session_host.sim.network import SimNetwork

        settings = get_settings()
        provision.ensure_all(settings)
        state = LocalState(state_dir, Durable.from_settings(settings), Backends(settings.region))
        state.acquire()
        try:
            state.restore()
            network = SimNetwork(EventPublisher(settings).publish)
            network.account(from_phone, "Offline sender", create=True)
            sent = network.send_text(from_phone, to_phone, body)
            state.snapshot_all()
        finally:
            state.release()
    print(sent["Id"])
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
