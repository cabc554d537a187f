"""The Lambda deployment package: built for the Lambda runtime, whatever Python builds it.

Why not plain `chalice package`: Chalice 1.34 derives a function's runtime from the interpreter that
runs it (`chalice.config.Config.lambda_python_version` is `python{major}.{minor}` of `sys.version_info`)
and picks wheels for that version's ABI (`packager._RUNTIME_TO_ABI`, then `pip download` for the local
interpreter and a `--platform manylinux2014_x86_64 --abi cpXY` retry for what does not fit). On a
Python 3.11 machine that is a `python3.11` function with cp311 wheels, and AWS blocks creating
python3.11 functions since 2026-07-31 (Lambda's runtime deprecation table).

So the two halves are separated:

- `vendor_dependencies`: pip installs `requirements.txt` for the target, not for the running
  interpreter: `--platform manylinux2014_x86_64 --python-version 3.13 --implementation cp
  --only-binary=:all:` into a directory cached under `.data/lambda-build/` and keyed by the
  requirements' content and the target (no sdist is ever built on this machine);
- `stage_app`: a directory holding what Chalice packages (`app.py`, `chalicelib/`,
  `.chalice/config.json`), an empty `requirements.txt` and `vendor/` = those dependencies. Chalice
  copies `vendor/` into the zip root as is (`packager._add_vendor_files`) and, with nothing in
  `requirements.txt`, downloads nothing;
- the stack (`stack.py`) points Chalice's CDK construct at that directory and sets `Runtime` on every
  function explicitly to `LAMBDA_RUNTIME`.

`build_lambda_zip` builds the same zip the CDK construct deploys (Chalice's
`LambdaDeploymentPackager` on the staged directory) without CDK or node: `bench/` and the tests use it.
Every compiled module in it carries `TARGET_ABI` (`extension_modules` lists them with their tags).

Byte code: Lambda unpacks the zip into a read-only /var/task, so Python cannot cache what it compiles
and a zip without `.pyc` files compiles every module it imports on every cold start. Where a CPython
`TARGET_PYTHON` is on this machine (`find_interpreter`), the dependencies and chalicelib/ are
compiled with it into `__pycache__/` as *unchecked-hash* pycs (PEP 552: used without comparing the
source's mtime, which a zip keeps at 2-second resolution); without one the zip carries source only
(correct, slower to start). WAGO_LAMBDA_BYTECODE=0 builds source only on purpose.
Needs pip and PyPI (or PIP_FIND_LINKS) on the first build of a requirements set; later builds are
offline.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = REPO_ROOT / ".data" / "lambda-build"

# AWS Lambda's python3.13 runtime: Amazon Linux 2023, x86_64 (the functions' default architecture).
LAMBDA_RUNTIME = "python3.13"
TARGET_PYTHON = "3.13"
TARGET_ABI = "cp313"
TARGET_PLATFORM = "manylinux2014_x86_64"
# Lambda's quota on a function's code, unzipped, layers included: "250 MB" (262,144,000 bytes).
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
MIB = 1024 * 1024

# What Chalice packages from the project (its `_iter_app_filenames` + the stage config it reads).
APP_FILES = ("app.py", "chalicelib", ".chalice/config.json")
# What `make assets` copies from the pinned swagger-ui-dist (web/package.json) for /docs; not in git.
DOCS_ASSETS = ("chalicelib/static/docs/swagger-ui-bundle.js", "chalicelib/static/docs/swagger-ui.css")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
# Part of the staged directory's cache key: raise it when stage_app lays the directory out differently.
_STAGE_LAYOUT = (b"3: vendor/ holds the byte code of app.py and Chalice's runtime files; "
                 b"chalicelib/routes/index.json is the route index")


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _publish(tmp: Path, final: Path) -> Path:
    """Move a finished build into its content-keyed place; a concurrent identical build may win."""
    try:
        os.replace(tmp, final)
    except OSError:  # `final` already exists (non-empty): the other build is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def byte_code_interpreter(python_version: str = TARGET_PYTHON) -> str | None:
    """The CPython `python_version` that compiles the package's byte code, or None (source only).

    WAGO_LAMBDA_BYTECODE=0 turns byte code off (None)."""
    if os.environ.get("WAGO_LAMBDA_BYTECODE", "1") == "0":
        return None
    return find_interpreter(python_version)


def compile_byte_code(directory: Path, interpreter: str) -> None:
    """Compile every .py under `directory` into __pycache__/ with `interpreter`, as unchecked-hash pycs
    (deterministic: no timestamps, so the same sources give the same zip)."""
    subprocess.run([interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
                    str(directory)], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)


def vendor_dependencies(requirements: Path = REPO_ROOT / "requirements.txt", *,
                        python_version: str = TARGET_PYTHON, build_root: Path = BUILD_ROOT) -> Path:
    """Install `requirements` for Lambda's `python_version` (CPython, manylinux2014 x86_64) into a cached dir.

    Returns the directory (a flat site-packages: packages at its top level). Wheels only, no console
    scripts; byte code compiled by `byte_code_interpreter` when there is one (never by the running
    interpreter, whose .pyc would be for the wrong version).
    Raises subprocess.CalledProcessError when pip cannot find a wheel for the target.
    """
    compiler = byte_code_interpreter(python_version)
    key = _digest(requirements.read_bytes(), python_version.encode(), TARGET_PLATFORM.encode(),
                  b"unchecked-hash-pyc" if compiler else b"source-only")
    final = build_root / f"deps-py{python_version}-{key}"
    if (final / "requirements.txt").exists():  # written last: the install finished
        return final / "site"
    build_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="deps-", dir=build_root))
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--platform", TARGET_PLATFORM, "--python-version", python_version, "--implementation", "cp",
         "--only-binary=:all:", "--target", str(site), "-r", str(requirements)],
        check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts: nothing in Lambda runs them
    if compiler:
        compile_byte_code(site, compiler)
    (tmp / "requirements.txt").write_text(requirements.read_text())
    return _publish(tmp, final) / "site"


def _app_digest(project_dir: Path) -> bytes:
    h = hashlib.sha256()
    for name in APP_FILES:
        path = project_dir / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix != ".pyc") if path.is_dir() else [path]
        for file in files:
            h.update(str(file.relative_to(project_dir)).encode() + b"\0" + file.read_bytes())
    return h.digest()


def stage_app(project_dir: Path = REPO_ROOT, *, python_version: str = TARGET_PYTHON,
              build_root: Path = BUILD_ROOT) -> Path:
    """A Chalice project directory for the Lambda package: app code, empty requirements, vendor/ deps.

    Content-keyed (app files + dependency dir), so it is reused until something changes and two
    concurrent builds cannot trample each other. Returns its path.
    """
    for asset in DOCS_ASSETS:  # /docs without Swagger UI would ship broken, and say nothing
        if not (project_dir / asset).is_file():
            raise FileNotFoundError(f"{asset} is missing: run `make assets` (Swagger UI for /docs, from web/) "
                                    "before packaging the Lambda function")
    vendor = vendor_dependencies(project_dir / "requirements.txt", python_version=python_version,
                                 build_root=build_root)
    key = _digest(_app_digest(project_dir), vendor.parent.name.encode(), _STAGE_LAYOUT, _WRITE_ROUTE_INDEX.encode(),
                  str(byte_code_interpreter(python_version) is not None).encode())
    final = build_root / f"app-py{python_version}-{key}"
    if (final / "app.py").exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix="app-", dir=build_root))
    for name in APP_FILES:
        source, target = project_dir / name, tmp / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=_IGNORED)
        else:
            shutil.copy2(source, target)
    write_route_index(tmp)
    (tmp / "requirements.txt").write_text(
        "# Empty on purpose: the dependencies are in vendor/, installed for the Lambda runtime\n"
        "# by infra/wago_infra/package.py from the repository's requirements.txt.\n")
    compiler = byte_code_interpreter(python_version)
    if compiler:
        compile_byte_code(tmp / "chalicelib", compiler)
        _vendor_with_entry_byte_code(tmp, vendor, compiler, python_version)
    else:
        (tmp / "vendor").symlink_to(vendor, target_is_directory=True)
    staged = _publish(tmp, final)
    _prune(build_root, f"app-py{python_version}-", keep=staged)
    return staged


_COMPILE_FILES = """
import py_compile, sys
args = sys.argv[1:]
for source, cfile, shown in zip(args[0::3], args[1::3], args[2::3]):
    py_compile.compile(source, cfile=cfile, dfile=shown, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
"""


def _vendor_with_entry_byte_code(staged: Path, site: Path, compiler: str, python_version: str) -> None:
    """`staged`/vendor: the dependencies (symlinked) plus the byte code of the files Chalice zips from
    outside the project's chalicelib/ (app.py, and chalice/app.py + chalice/__init__.py from the
    installed Chalice), which Chalice adds as source only. Chalice copies vendor/ into the zip root."""
    import chalice
    import chalice.app

    vendor = staged / "vendor"
    vendor.mkdir()
    for entry in site.iterdir():
        if entry.name != "__pycache__":
            (vendor / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (vendor / "__pycache__").mkdir()
    for cached in (site / "__pycache__").glob("*.pyc") if (site / "__pycache__").is_dir() else ():
        (vendor / "__pycache__" / cached.name).symlink_to(cached)
    tag = f"cpython-{python_version.replace('.', '')}"
    sources = {"app.py": staged / "app.py", "chalice/app.py": _source_of(chalice.app),
               "chalice/__init__.py": _source_of(chalice)}
    args: list[str] = []
    for shown, source in sources.items():
        cfile = vendor / Path(shown).parent / "__pycache__" / f"{Path(shown).stem}.{tag}.pyc"
        cfile.parent.mkdir(parents=True, exist_ok=True)
        args += [str(source), str(cfile), shown]
    subprocess.run([compiler, "-c", _COMPILE_FILES, *args], check=True, stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, timeout=120)


_WRITE_ROUTE_INDEX = """
import json, sys
sys.path.insert(0, sys.argv[1])
from chalicelib import api
api.ROUTE_INDEX.write_text(json.dumps(api.route_index(), indent=1) + "\\n")
"""


def write_route_index(staged: Path) -> Path:
    """Write `staged`'s route index (chalicelib/api.py `route_index`, at `ROUTE_INDEX`): the API function
    then imports each area of routes on its first request instead of all at import. Derived from the
    staged routers themselves by this (the build's) interpreter, writing no byte code, in an environment
    of its own: the index holds every area whatever the settings, so the build shell's variables (a
    STAGE, a driver) neither change it nor fail it. Returns its path."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-B", "-c", _WRITE_ROUTE_INDEX, str(staged)], cwd=staged, text=True,
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not build the route index of {staged}:\n{done.stdout[-4000:]}")
    return staged / "chalicelib" / "routes" / "index.json"


def _source_of(module) -> Path:
    path = inspect.getfile(module)
    return Path(path[:-1] if path.endswith(".pyc") else path)


def _prune(build_root: Path, prefix: str, keep: Path, kept: int = 3, min_age_seconds: float = 3600) -> None:
    """Remove older staged copies (each holds a ~20 MB zip): all but the newest `kept`, if idle for an hour."""
    others = sorted((p for p in build_root.glob(f"{prefix}*") if p != keep and p.is_dir()),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[kept:]:
        if time.time() - old.stat().st_mtime > min_age_seconds:
            shutil.rmtree(old, ignore_errors=True)


def build_lambda_zip(project_dir: Path = REPO_ROOT, *, python_version: str = TARGET_PYTHON,
                     build_root: Path = BUILD_ROOT) -> Path:
    """The deployment zip of the API and fan-out functions, as the CDK stack deploys it.

    Chalice's own packager (LambdaDeploymentPackager, what `chalice package` and its CDK construct
    run) on `stage_app`'s directory: app.py, chalicelib/, Chalice's runtime files and the vendored
    dependencies at the zip root. Cached by Chalice in the staged dir's .chalice/deployments/.
    """
    from chalice.deploy.packager import DependencyBuilder, LambdaDeploymentPackager
    from chalice.utils import UI, OSUtils

    staged = stage_app(project_dir, python_version=python_version, build_root=build_root)
    osutils = OSUtils()
    packager = LambdaDeploymentPackager(osutils=osutils, dependency_builder=DependencyBuilder(osutils),
                                        ui=UI(out=io.StringIO()), architecture="x86_64")
    return Path(packager.create_deployment_package(str(staged), f"python{python_version}"))


def unpack(zip_path: Path, dest: Path) -> int:
    """Extract the zip into `dest`; returns the unzipped size in bytes (what Lambda's 250 MB quota counts)."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
        return sum(info.file_size for info in archive.infolist())


def extension_modules(zip_path: Path) -> dict[str, str]:
    """Every compiled module in the zip → its ABI tag (`cpython-313-x86_64-linux-gnu`, `abi3`, or `untagged`)."""
    found = {}
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            base = name.rsplit("/", 1)[-1]
            if ".libs/" in name:  # auditwheel-bundled C libraries, not Python modules
                continue
            if base.endswith(".so"):
                parts = base.split(".")
                found[name] = parts[1] if len(parts) > 2 and parts[-1] == "so" else "untagged"
    return found


def abi_matches(tag: str, python_version: str = TARGET_PYTHON) -> bool:
    """True when an extension module's tag loads on CPython `python_version` for Linux x86_64."""
    digits = python_version.replace(".", "")
    return tag == "abi3" or tag == f"cpython-{digits}-x86_64-linux-gnu"


def _boto3_pin(project_dir: Path = REPO_ROOT) -> str:
    for line in (project_dir / "requirements-host.txt").read_text().splitlines():
        if line.strip().lower().startswith("boto3=="):
            return line.strip()
    raise LookupError("requirements-host.txt pins no boto3")


def runtime_libraries(python_version: str = TARGET_PYTHON, *, build_root: Path = BUILD_ROOT) -> Path:
    """What Lambda's Python runtime adds to sys.path after the package: boto3 and botocore (+ s3transfer,
    jmespath, dateutil, urllib3), installed for `python_version` at the boto3 pin of requirements-host.txt.

    The package ships its own botocore (pynamodb's dependency), which comes first on sys.path, as in Lambda.
    """
    build_root.mkdir(parents=True, exist_ok=True)
    pin = build_root / f"runtime-{_boto3_pin()}.txt"
    pin.write_text(_boto3_pin() + "\n")
    return vendor_dependencies(pin, python_version=python_version, build_root=build_root)


@functools.cache
def find_interpreter(python_version: str = TARGET_PYTHON) -> str | None:
    """A CPython `python_version` on this machine (LAMBDA_PYTHON, PATH, pyenv, /usr), or None."""
    candidates = [os.environ.get("LAMBDA_PYTHON"), shutil.which(f"python{python_version}"),
                  *sorted(str(p) for p in
                          Path.home().glob(f".pyenv/versions/{python_version}*/bin/python{python_version}")),
                  f"/usr/bin/python{python_version}", f"/usr/local/bin/python{python_version}"]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30, check=False)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == python_version:
            return candidate
    return None


class LambdaProcess:
    """The unpacked package in a child interpreter that sees only it and the runtime's boto3/botocore.

    `invoke(handler, event)` calls a handler in-process there (see lambda_runner.py for the
    protocol); `init_ms` is the package's import time. Use as a context manager.
    """

    def __init__(self, interpreter: str, package_dir: Path, runtime_dir: Path, env: dict[str, str]):
        runner = Path(__file__).with_name("lambda_runner.py")
        self.process = subprocess.Popen(
            # -B: Lambda's /var/task is read-only, so no byte code is cached between cold starts either.
            [interpreter, "-I", "-S", "-B", str(runner), "--path", str(package_dir), "--path", str(runtime_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=str(package_dir))
        hello = self._read()
        if not hello.get("ready"):
            self.close()
            raise RuntimeError(f"importing the package failed:\n{hello.get('error')}")
        self.init_ms: float = hello["init_ms"]
        self.python: str = hello["python"]
        self.sys_path: list[str] = hello["paths"]

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Lambda runner exited ({self.process.wait(timeout=10)})")
        return json.loads(line)

    def invoke(self, handler: str, event: dict, function: str = "APIHandler", timeout_ms: int = 30_000) -> dict:
        """The handler's return value; raises RuntimeError with the child's traceback if it raised."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"handler": handler, "event": event, "function": function,
                                             "timeout_ms": timeout_ms}) + "\n")
        self.process.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> int:
    """`python infra/wago_infra/package.py [PYTHON_VERSION]`: build the zip, print its path and size."""
    version = sys.argv[1] if len(sys.argv) > 1 else TARGET_PYTHON
    zip_path = build_lambda_zip(python_version=version)
    with zipfile.ZipFile(zip_path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    print(f"{zip_path}\nzipped {zip_path.stat().st_size / MIB:.1f} MiB, unzipped {unzipped / MIB:.1f} MiB "
          f"of Lambda's {UNZIPPED_LIMIT_BYTES / MIB:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main())
