"""An HTTPS receiver that offers HTTP/2 (ALPN) gets one multiplexed connection from the fan-out: a batch's
concurrent POSTs are streams of it, and the next batch reuses it. The receiver is a real TLS + h2 server
on 127.0.0.1 (the h2 library's server side, a certificate made for the test)."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded

from tests.unit.test_webhook_fanout import _batch_of
from tests.unit.webhook_helpers import make_session, stack, wire_event

__all__ = ["stack"]  # fixture


def _certificate(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class H2Receiver:
    """TLS on 127.0.0.1 offering only h2; answers every request 200 `ok`; counts connections and streams."""

    def __init__(self, cert_path, key_path):
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_path, key_path)
        self.context.set_alpn_protocols(["h2"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.streams = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        try:
            conn_sock = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        h2 = H2Connection(H2Configuration(client_side=False))
        h2.initiate_connection()
        conn_sock.sendall(h2.data_to_send())
        try:
            while True:
                data = conn_sock.recv(65536)
                if not data:
                    return
                for event in h2.receive_data(data):
                    if isinstance(event, DataReceived):
                        h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, StreamEnded):
                        with self.lock:
                            self.streams += 1
                        h2.send_headers(event.stream_id, [(":status", "200"), ("content-length", "2")])
                        h2.send_data(event.stream_id, b"ok", end_stream=True)
                    elif isinstance(event, ConnectionTerminated):
                        return
                    elif isinstance(event, RequestReceived):
                        pass
                conn_sock.sendall(h2.data_to_send())
        except (ssl.SSLError, OSError):
            return
        finally:
            conn_sock.close()

    def close(self):
        self.stopping = True
        self.sock.close()


@pytest.fixture
def trusted(tmp_path, monkeypatch):
    """The receiver's certificate as the CA bundle httpx loads (certifi's), so the fan-out's own clients,
    unchanged, verify it."""
    import certifi

    from chalicelib.webhooks import fanout

    cert_path, key_path = _certificate(tmp_path)
    monkeypatch.setattr(certifi, "where", lambda: str(cert_path))
    fanout.reset()  # no client made before the bundle changed
    yield cert_path, key_path
    fanout.reset()


def test_an_h2_receiver_gets_one_multiplexed_connection(stack, trusted):
    from app import deliver_events
    from local_gateway.poller import LambdaContext

    receiver = H2Receiver(*trusted)
    try:
        make_session("t1", f"https://localhost:{receiver.port}/hook")
        for _ in range(2):
            for seq in range(10):
                stack.put(wire_event("t1", seq=seq))
            assert deliver_events(_batch_of(stack, 10), LambdaContext("f")) == {"batchItemFailures": []}
    finally:
        receiver.close()
    assert receiver.streams == 20
    assert receiver.connections == 1
