"""The API function installs each area of routes on its first request (chalicelib/api.py, "On demand").

Each probe is a fresh interpreter running a copy of the Lambda package's app code (app.py, chalicelib/)
with the route index the packaging writes (infra/wago_infra/package.py `write_route_index`), as the
API function (AWS_LAMBDA_FUNCTION_NAME set), against moto in-process. The same requests are answered
by the whole API (no index: every area installed at import) in another probe; the answers must match.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_DIR

sys.path.append(str(PROJECT_DIR / "infra"))
from wago_infra import package  # noqa: E402

ADMIN = {"admintoken": "qwert"}
# (method, path, headers, body): each reaches a different area, or none.
REQUESTS = [
    ("GET", "/server/ok", {}, None),
    ("DELETE", "/server/ok", {}, None),  # 405 from the index alone
    ("POST", "/sim/scan", ADMIN, "{}"),  # the simulator, under the neonize driver: 404 saying why
    ("POST", "/session/init", ADMIN, json.dumps({"Name": "A", "Token": "atoken", "Os": "Chrome"})),
    ("GET", "/session/status", {"token": "atoken"}, None),
    ("GET", "/session/status", {"token": "nope"}, None),
    ("POST", "/send/text", {"token": "atoken"}, "{not json"),
    ("OPTIONS", "/webhook/redrive", {}, None),  # Chalice's own 405: its Allow lists the path's routes in order
    (["GET"], "/server/ok", {}, None),  # a malformed httpMethod (direct invocation): Chalice's own answer
]

PROBE = """
import json, sys
sys.path.insert(1, {project!r})  # after this directory (the package code): local_gateway, tests
from moto import mock_aws
with mock_aws():
    from local_gateway import provision
    provision.ensure_all()
    from tests.lambda_events import proxy_event
    import app
    def areas():
        return sorted(name for name in app.api.AREAS + (app.api.SIMULATOR,)
                      if name.split(":")[0] in sys.modules and name.split(":")[0] != "chalicelib.api")
    at_import = areas()
    answers = []
    for method, path, headers, body in json.loads(sys.argv[1]):
        event = proxy_event(method if isinstance(method, str) else "GET", path, headers=headers, body=body)
        event["requestContext"]["httpMethod"] = method
        response = app.app(event, None)
        answers.append([response["statusCode"], json.loads(response["body"]), response["headers"].get("Allow")])
    print(json.dumps({{"at_import": at_import, "after": areas(), "answers": answers,
                      "on_demand": app.app.on_demand is not None}}))
"""


def _probe(code_dir, *, in_lambda: bool, requests: list = REQUESTS) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA", "_HANDLER", "AWS_CHALICE"))}
    env.update(STAGE="test", ADMIN_TOKEN="qwert", AWS_DEFAULT_REGION="us-east-1", _HANDLER="app.app",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", PYTHONDONTWRITEBYTECODE="1")
    if in_lambda:
        env["AWS_LAMBDA_FUNCTION_NAME"] = "wago-test-APIHandler"
    done = subprocess.run([sys.executable, "-c", PROBE.format(project=str(PROJECT_DIR)), json.dumps(requests)],
                          cwd=code_dir, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    found["log"] = done.stdout  # Powertools writes its JSON log lines to stdout, as in Lambda
    return found


@pytest.fixture(scope="module")
def package_code(tmp_path_factory):
    """app.py and chalicelib/ as the package holds them, with the route index."""
    code = tmp_path_factory.mktemp("lambda-code")
    shutil.copy(PROJECT_DIR / "app.py", code / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", code / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    package.write_route_index(code)
    return code


def test_an_area_is_imported_on_its_first_request_only(package_code):
    found = _probe(package_code, in_lambda=True)
    assert found["on_demand"] is True
    assert found["at_import"] == []  # no area at import: only routing, auth, settings and the table models
    assert found["after"] == sorted(["chalicelib.routes.server:router", "chalicelib.routes.admin_sessions:router",
                                     "chalicelib.routes.session:router", "chalicelib.routes.send:router",
                                     "chalicelib.routes.webhook:router"])


def test_on_demand_answers_as_the_whole_api(package_code):
    on_demand = _probe(package_code, in_lambda=True)
    whole = _probe(package_code, in_lambda=False)  # the same code and index, outside Lambda: all at import
    assert whole["on_demand"] is False and len(whole["at_import"]) == len(whole["after"]) > 10
    assert on_demand["answers"] == whole["answers"]
    statuses = [answer[0] for answer in on_demand["answers"]]
    assert statuses == [200, 405, 404, 200, 200, 401, 400, 405, 500]
    assert on_demand["answers"][1][2] == "GET"
    assert on_demand["answers"][7][2].startswith("POST, ")
    assert "WHATSAPP_DRIVER=sim" in on_demand["answers"][2][1]["error"]


def test_the_route_index_names_every_route_of_every_area():
    """The index is derived from the routers (route_index), so it cannot miss one; this checks the
    derivation against the whole install, the simulator's routes included."""
    from chalicelib import api

    index = api.route_index()
    declared = {(spec.method, spec.path) for name in (*api.AREAS, api.SIMULATOR) for spec in api.area(name).specs}
    assert {(method, path) for path, methods in index.items() for method in methods} == declared
    assert index["/session/status"] == {"GET": "chalicelib.routes.session:router"}


def test_an_area_that_fails_to_import_answers_a_logged_500_and_the_others_still_work(package_code, tmp_path):
    broken = tmp_path / "code"
    shutil.copytree(package_code, broken)
    calls = broken / "chalicelib" / "routes" / "calls.py"
    calls.write_text(calls.read_text() + "\nraise RuntimeError('broken area')\n")
    requests = [("POST", "/call/make", {"token": "atoken"}, "{}"), ("GET", "/server/ok", {}, None),
                ("POST", "/call/make", {"token": "atoken"}, "{}")]
    found = _probe(broken, in_lambda=True, requests=requests)
    assert [answer[:2] for answer in found["answers"]] == [
        [500, {"code": 500, "error": "internal server error", "success": False}],
        [200, {"code": 200, "data": {"status": "ok"}, "success": True}],
        [500, {"code": 500, "error": "internal server error", "success": False}],
    ]
    assert found["after"] == ["chalicelib.routes.server:router"]
    assert found["log"].count("could not install the routes of a path") == 2 and "broken area" in found["log"]
