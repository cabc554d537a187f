"""The seam between the API (Lambda) and the session hosts, checked both ways in fresh processes.

- A host imports only `chalicelib.core` from `chalicelib`: never Chalice, never an API module
  (routing, envelope, routes, auth, bus, webhooks, ...). Every module of `session_host` is imported
  with those blocked, so lazily imported paths (call media, drivers) are covered too.
- The API never imports host code: `app` and every `chalicelib` module import with `session_host`,
  neonize and aiortc blocked, also with the sim controls installed (WHATSAPP_DRIVER=sim): the
  simulator (session_host/sim/) is host-only, and the API reaches it through `sim.*` operations.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import PROJECT_DIR

BLOCKER = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, sys
    BLOCKED = {blocked!r}
    ALLOWED_CHALICELIB = {allowed!r}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            top = name.split(".")[0]
            if top in BLOCKED:
                raise ImportError(f"blocked import: {{name}}")
            if top == "chalicelib" and name != "chalicelib" and ALLOWED_CHALICELIB is not None \\
                    and not any(name == a or name.startswith(a + ".") for a in ALLOWED_CHALICELIB):
                raise ImportError(f"blocked import: {{name}}")
            return None

    sys.meta_path.insert(0, Block())
    imported = []
    for root in {roots!r}:
        package = importlib.import_module(root)
        imported.append(root)
        for info in pkgutil.walk_packages(getattr(package, "__path__", []), root + "."):
            importlib.import_module(info.name)
            imported.append(info.name)
    print(len(imported), "modules imported")
''')


def _run(roots: list[str], blocked: set[str], allowed_chalicelib: list[str] | None, **env_extra: str) -> str:
    code = BLOCKER.format(blocked=sorted(blocked), allowed=allowed_chalicelib, roots=roots)
    env = {"PATH": "/usr/bin:/bin", "STAGE": "test", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(PROJECT_DIR),
           **env_extra}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_host_imports_no_chalice_and_no_api_module():
    out = _run(["session_host"], {"chalice"}, ["chalicelib.core"])
    assert int(out.split()[0]) > 20, out


def test_the_api_imports_no_host_code():
    out = _run(["app", "chalicelib"], {"session_host", "neonize", "aiortc", "av", "segno", "local_gateway"}, None)
    assert int(out.split()[0]) > 40, out


def test_the_api_with_the_sim_controls_imports_no_sim_code():
    out = _run(["app", "chalicelib"], {"session_host", "neonize", "aiortc", "av", "segno", "local_gateway"}, None,
               WHATSAPP_DRIVER="sim")
    assert int(out.split()[0]) > 40, out
