"""The Lambda package (app.py, chalicelib/, requirements.txt) never pulls in host-only or test code."""

from __future__ import annotations

import ast
import re

from tests.conftest import PROJECT_DIR

HOST_OR_TEST_ONLY = {"neonize", "aiortc", "av", "segno", "moto", "pytest", "chalice", "boto3", "playwright",
                     "session_host", "local_gateway", "tests", "bench", "infra"}
# chalice is provided to the Lambda by Chalice's own packaging; boto3 by the Lambda runtime.
RUNTIME_PROVIDED = {"chalice", "boto3"}


def _requirement_names(path):
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[<>=\[; ]", line, maxsplit=1)[0].lower())
    return names


def _imported_top_level(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def test_requirements_txt_is_lean():
    names = _requirement_names(PROJECT_DIR / "requirements.txt")
    assert not names & HOST_OR_TEST_ONLY, names & HOST_OR_TEST_ONLY
    assert {"pynamodb", "aws-lambda-powertools", "pydantic"} <= names


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-host.txt", "requirements-dev.txt"):
        for line in (PROJECT_DIR / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                assert "==" in line, f"{name}: {line} is not pinned"


def test_lambda_code_imports_nothing_host_only():
    files = [PROJECT_DIR / "app.py", *sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))]
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}:{line} imports {module}"
        for path in files
        for module, line in _imported_top_level(path)
        if module in HOST_OR_TEST_ONLY - RUNTIME_PROVIDED
    ]
    assert offenders == []


def test_lambda_code_never_writes_the_sim_network():
    """The sim network (accounts, devices, messages, inboxes, groups) is written by session hosts only
    (session_host/sim/); the Lambda keeps just the table models, which provisioning lists."""
    models = PROJECT_DIR / "chalicelib" / "core" / "models"
    files = [PROJECT_DIR / "app.py", *sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))]
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}: {name}"
        for path in files if models not in path.parents
        for name in sorted(set(re.findall(r"\bSim[A-Za-z]*Model\b|\bsim_network\b|\bSimNetwork\b", path.read_text())))
    ]
    assert offenders == []


def test_the_fanout_function_loads_no_api_route():
    """Both functions import app.py; the fan-out (Lambda's _HANDLER app.deliver_events) serves SQS
    batches only, so the routes, their request models and the command bus stay unloaded."""
    import json
    import os
    import subprocess
    import sys

    probe = ("import json, sys, app; print(json.dumps([sorted(m for m in sys.modules if m.startswith(p)) "
             "for p in ('chalicelib.routes', 'chalicelib.bus', 'chalicelib.api')] + [hasattr(app, 'ROUTES')]))")
    loaded = {}
    for handler in ("app.deliver_events", "app.app"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_LAMBDA", "_HANDLER"))}
        env.update(_HANDLER=handler, STAGE="test", AWS_DEFAULT_REGION="us-east-1")
        done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        loaded[handler] = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["app.deliver_events"] == [[], [], [], False]
    routes, bus, api, has_routes = loaded["app.app"]
    assert "chalicelib.routes.send" in routes and bus and api and has_routes


def test_packaging_refuses_a_tree_without_swagger_ui(tmp_path):
    """`make assets` copies Swagger UI (not in git) for /docs: a package built without it would serve a
    broken page and say nothing, so packaging stops and says what to run."""
    import sys

    import pytest

    sys.path.insert(0, str(PROJECT_DIR / "infra"))
    from wago_infra import package

    (tmp_path / "app.py").write_text("")
    with pytest.raises(FileNotFoundError, match="make assets"):
        package.stage_app(tmp_path, build_root=tmp_path / "build")
    assert not (tmp_path / "build").exists()  # nothing installed or staged
