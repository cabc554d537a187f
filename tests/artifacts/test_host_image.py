"""The session host runs from its own image's environment, built the way session_host/Dockerfile builds it.

No Docker: the Dockerfile is read (COPY, ENV, the `RUN pip install` line, CMD) and replayed: a fresh venv
holding requirements-host.txt alone (cached under .data/host-image/, keyed by the requirement files, the
Dockerfile and the Python version), and an app directory holding only the files the COPY lines copy.
`python -m session_host` runs there with the sim driver against a moto server, registers, takes a
connect and a /send/text sent by the API from this test's environment, publishes the events, and drains
and exits on SIGTERM.

An import audit in the host process (a sitecustomize.py on PYTHONPATH) records every import that host
code (the copied app files) attempts and no installed distribution or standard module satisfies: a host
code path that needs chalice, or any API module or package outside requirements-host.txt, fails the test
even if the code swallows the ImportError. Every module the process loaded must also come from the image
venv, the standard library or the app directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.artifacts.stack import PROJECT_DIR, Child, LocalAws, api_server, wait_host_registered
from tests.conftest import free_port

# The first run builds the image venv from PyPI (a minute or two); later runs reuse it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DOCKERFILE = PROJECT_DIR / "session_host" / "Dockerfile"
CACHE = PROJECT_DIR / ".data" / "host-image"
STAGE = "local"
ADMIN = {"admintoken": "qwert"}  # WaGo's default, accepted in the local stage only

AUDIT = textwrap.dedent('''
    """Import audit (tests/artifacts/test_host_image.py): not part of the image."""
    import atexit, json, os, sys

    _APP = os.environ["IMPORT_AUDIT_APP"].rstrip("/") + "/"
    _OUT = os.environ["IMPORT_AUDIT_OUT"]
    _missing = []

    class _LastFinder:
        """Last on sys.meta_path: asked only when no installed or standard module matched."""

        def find_spec(self, name, path=None, target=None):
            frame = sys._getframe(1)
            while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                         or "/importlib/" in frame.f_code.co_filename):
                frame = frame.f_back
            importer = frame.f_code.co_filename if frame is not None else "?"
            if importer.startswith(_APP):
                _missing.append({"module": name, "importer": importer[len(_APP):], "line": frame.f_lineno})
            return None

    sys.meta_path.append(_LastFinder())

    def _dump():
        origins = {}
        for name, module in list(sys.modules.items()):
            origin = getattr(module, "__file__", None)
            if origin:
                origins[name] = origin
        with open(_OUT, "w") as out:
            json.dump({"missing": _missing, "origins": origins, "prefix": sys.prefix,
                       "base_prefix": sys.base_prefix}, out)

    atexit.register(_dump)
''')


# -- the Dockerfile, read --------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comment lines dropped (Docker's rules)."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current = f"{current} {stripped}" if current else stripped
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def replay_copies(instructions, context: Path, app_dir: Path) -> list[str]:
    """Copy what each COPY line copies (relative to WORKDIR) into app_dir; returns the copied paths."""
    copied = []
    for keyword, rest in instructions:
        if keyword != "COPY":
            continue
        args = [a for a in shlex.split(rest) if not a.startswith("--")]
        sources, dest = args[:-1], args[-1]
        target = app_dir / dest.lstrip("./").lstrip("/") if dest not in ("./", ".") else app_dir
        for source in sources:
            path = context / source.rstrip("/")
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                destination = target / path.name if dest.endswith("/") or len(sources) > 1 else target
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
            copied.append(source)
    return copied


def image_env(instructions) -> dict[str, str]:
    env = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def pip_install_args(instructions) -> list[str]:
    """The arguments of the Dockerfile's `RUN pip install ...` (exactly one)."""
    runs = [shlex.split(rest) for keyword, rest in instructions if keyword == "RUN" and "pip install" in rest]
    assert len(runs) == 1, runs
    words = runs[0]
    return words[words.index("install") + 1:]


# -- the image's environment -----------------------------------------------------------------------


def image_venv(instructions, app_dir: Path) -> Path:
    """A venv from the Dockerfile's pip install alone, built once per requirements/Dockerfile/Python."""
    key = hashlib.sha256(b"".join([
        (PROJECT_DIR / "requirements.txt").read_bytes(), (PROJECT_DIR / "requirements-host.txt").read_bytes(),
        DOCKERFILE.read_bytes(), sys.version.encode()])).hexdigest()[:16]
    venv = CACHE / f"venv-{key}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time (pytest-xdist, two checkouts' runs)
        if not (venv / ".ready").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                   "--disable-pip-version-check", *pip_install_args(instructions)],
                                  cwd=app_dir, capture_output=True, text=True, timeout=1200, check=False)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            (venv / ".ready").write_text("")
    return venv


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    (workdir,) = [rest for keyword, rest in instructions if keyword == "WORKDIR"]
    app_dir = tmp_path_factory.mktemp("image") / workdir.strip("/")
    app_dir.mkdir(parents=True)
    copied = replay_copies(instructions, PROJECT_DIR, app_dir)
    venv = image_venv(instructions, app_dir)
    (base,) = [rest for keyword, rest in instructions if keyword == "FROM"]
    cmd = " ".join(rest for keyword, rest in instructions if keyword == "CMD")
    assert "python -m session_host" in cmd, cmd
    return {"app": app_dir, "venv": venv, "copied": copied, "env": image_env(instructions), "base": base,
            "python": str(venv / "bin" / "python")}


def _audited_env(image, base_env: dict[str, str], audit_dir: Path, name: str) -> tuple[dict[str, str], Path]:
    (audit_dir / "sitecustomize.py").write_text(AUDIT)
    report = audit_dir / f"{name}.json"
    env = {**base_env, **image["env"], "PYTHONPATH": str(audit_dir), "IMPORT_AUDIT_APP": str(image["app"]),
           "IMPORT_AUDIT_OUT": str(report), "VIRTUAL_ENV": str(image["venv"])}
    env["PATH"] = f"{image['venv'] / 'bin'}:{env.get('PATH', '')}"
    return env, report


def _check_audit(image, report: Path, audit_dir: Path) -> dict:
    audit = json.loads(report.read_text())
    assert audit["missing"] == [], f"host code imported modules outside requirements-host.txt: {audit['missing']}"
    allowed = (audit["prefix"], audit["base_prefix"], str(image["app"]), str(audit_dir))
    strays = {name: origin for name, origin in audit["origins"].items() if not origin.startswith(allowed)}
    assert strays == {}, f"modules loaded from outside the image: {strays}"
    assert not any(name == "chalice" or name.startswith("chalice.") for name in audit["origins"])
    return audit


def test_dockerfile_copies_only_what_the_host_imports(image):
    # The host imports chalicelib.core only: the image carries no API module.
    chalicelib = image["app"] / "chalicelib"
    assert sorted(p.name for p in chalicelib.iterdir()) == ["__init__.py", "core"]
    assert (image["app"] / "session_host" / "__main__.py").exists()
    version = "{}.{}".format(*sys.version_info[:2])
    if f"python:{version}" not in image["base"]:
        print(f"note: the image is {image['base']}, this venv is Python {version}")


def test_the_audit_catches_a_swallowed_import_from_host_code(image, tmp_path):
    # The audit itself: host code that tries chalice and swallows the ImportError is still caught.
    probe_app = tmp_path / "app"
    probe_app.mkdir()
    (probe_app / "probe.py").write_text("try:\n    import chalice\nexcept ImportError:\n    pass\nimport json\n")
    env, report = _audited_env({**image, "app": probe_app}, {"PATH": os.environ["PATH"]}, tmp_path, "probe")
    subprocess.run([image["python"], "-c", "import probe"], cwd=probe_app, env=env, check=True, timeout=60)
    with pytest.raises(AssertionError, match="outside requirements-host.txt"):
        _check_audit({**image, "app": probe_app}, report, tmp_path)
    assert json.loads(report.read_text())["missing"] == [{"module": "chalice", "importer": "probe.py", "line": 2}]


def test_every_host_module_imports_in_the_image_environment(image, tmp_path):
    # Import-time paths of every module, the neonize driver's included (libmagic1 from Debian, as in the image).
    env, report = _audited_env(image, {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
                               tmp_path, "import-all")
    script = ("import importlib, pkgutil, session_host\n"
              "for info in pkgutil.walk_packages(session_host.__path__, 'session_host.'):\n"
              "    importlib.import_module(info.name)\n")
    done = subprocess.run([image["python"], "-c", script], cwd=image["app"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    audit = _check_audit(image, report, tmp_path)
    assert "session_host.drivers.neonize" in audit["origins"] and "chalicelib.core.settings" in audit["origins"]


def test_host_from_its_image_serves_a_send_and_drains_on_sigterm(image, tmp_path, capsys):
    aws = LocalAws()
    host = None
    try:
        base_env = aws.env(STAGE)
        aws.provision(base_env)
        env, report = _audited_env(image, base_env, tmp_path, "host")
        host = Child("image-host", [image["python"], "-m", "session_host"], image["app"], env)
        host_id = wait_host_registered(aws, STAGE, host)
        with api_server(aws, base_env, free_port()) as api:
            phones = {"alice": "15550007001", "bob": "15550007002"}
            for token, phone in phones.items():
                assert api.post("/session/init", headers=ADMIN,
                                json={"Name": token, "Token": token, "Os": "Chrome"}).status_code == 200
                connected = api.post("/session/connect", headers={"token": token},
                                     json={"Subscribe": ["All"], "Immediate": True})
                assert connected.status_code == 200, connected.text
                scanned = api.post("/sim/scan", headers=ADMIN, json={"Token": token, "Phone": phone})
                assert scanned.status_code == 200, scanned.text
            sent = api.post("/send/text", headers={"token": "alice"},
                            json={"Phone": phones["bob"], "Body": "hello from the image"})
            assert sent.status_code == 200, sent.text
            message_id = sent.json()["data"]["Id"]
            sessions = aws.table(f"wago-{STAGE}-sessions")
            assert sessions.get_item(Key={"token": "bob"}, ConsistentRead=True)["Item"]["owner_host"] == host_id

        def bobs_message(messages):
            return [m for m in messages if (body := json.loads(m["Body"]))["token"] == "bob"
                    and body["type"] == "Message" and body["event"]["Info"]["ID"] == message_id]

        published = aws.drain_events(f"wago-{STAGE}-events", bobs_message)
        assert {json.loads(m["Body"])["token"] for m in published} >= {"bob"}

        assert host.terminate(timeout=90) == 0, host.output()
        assert aws.table(f"wago-{STAGE}-hosts").scan(ConsistentRead=True)["Items"] == []  # deregistered
        for token in phones:
            row = sessions.get_item(Key={"token": token}, ConsistentRead=True)["Item"]
            assert row.get("owner_host") == "released", row  # handed over: another host finds it by the owner index
        queues = aws.client("sqs").list_queues(QueueNamePrefix=f"wago-{STAGE}-host-").get("QueueUrls", [])
        assert queues == []  # its command queue deleted
        _check_audit(image, report, tmp_path)
        packages = subprocess.run([image["python"], "-m", "pip", "list", "--format=freeze",
                                   "--disable-pip-version-check"], capture_output=True, text=True, timeout=120,
                                  check=True).stdout.split()
        assert not any(p.lower().startswith(("chalice==", "moto==", "pytest==")) for p in packages), packages
        with capsys.disabled():
            print(f"\n[host image] {image['base']}, COPY {' '.join(image['copied'])}; "
                  f"{len(packages)} installed packages: {' '.join(packages)}")
    finally:
        if host is not None:
            with contextlib.suppress(Exception):
                host.terminate(timeout=30)
            host.stop()
        aws.close()
