"""The local API server runs the stage the launcher runs: `STAGE=dev make run` started the API with
Chalice's `local` stage configuration, whose environment set STAGE=local in the API process, so the API
used wago-local-* tables (never created: a 500 on every route) and local-only rules (the `qwert` admin
token, loopback webhooks, no Lambda payload caps), while the launcher and the host ran `dev`."""

from __future__ import annotations

import json
import os
import urllib.request
from urllib.error import HTTPError

import pytest

from tests.conftest import api_server


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_api_server_runs_the_stage_in_its_environment(stage):
    env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_TOKEN", "ADMIN_TOKEN_SECRET_ARN")}
    env.update(STAGE=stage, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x",
               AWS_DEFAULT_REGION="us-east-1")
    with api_server(env) as port:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/session/all", headers={"admintoken": "qwert"})
        with pytest.raises(HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        body = json.loads(caught.value.read())
        # dev/prod without ADMIN_TOKEN: the admin token is not `qwert`, and the answer says what to set
        # (run as `local`, `qwert` was taken and the scan of wago-local-sessions failed instead)
        assert caught.value.code == 500
        assert body["error"].startswith("server misconfigured: ") and "ADMIN_TOKEN" in body["error"], body
