"""The local API server runs the stage the launcher runs: `STAGE=dev make run` started the API with
Chalice's `local` stage configuration, whose environment set STAGE=local in the API process, so the API
used wago-local-* tables (never created: a 500 on every route) and local-only rules (the `qwert` admin
token, loopback webhooks, no Lambda payload caps), while the launcher and the host ran `dev`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.error import HTTPError

import pytest

from tests.conftest import PROJECT_DIR, free_port


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_api_server_runs_the_stage_in_its_environment(stage):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "ADMIN_TOKEN_SECRET_ARN")}
    env.update(STAGE=stage, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
               AWS_DEFAULT_REGION="us-east-1")
    process = subprocess.Popen([sys.executable, "-m", "local_gateway.api_server", "--port", str(port)],
                               cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "api_server did not listen"
                time.sleep(0.1)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/session/all", headers={"admintoken": "qwert"})
        with pytest.raises(HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        body = json.loads(caught.value.read())
        # dev/prod without ADMIN_TOKEN: the admin token is not `qwert`, and the answer says what to set
        # (run as `local`, `qwert` was taken and the scan of wago-local-sessions failed instead)
        assert caught.value.code == 500
        assert body["error"].startswith("server misconfigured: ") and "ADMIN_TOKEN" in body["error"], body
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
