"""Lambda cold start: `import app` vs `import boto3`, both from the Lambda package's own contents.

The package is the deployment zip the CDK stack deploys (`infra/wago_infra/package.py`
`build_lambda_zip`: requirements.txt installed for the Lambda runtime's CPython 3.13, Chalice's
runtime files, `app.py`, `chalicelib/`), unpacked, followed on the path by what Lambda's runtime adds
(boto3 and botocore, `runtime_libraries`), run by a CPython 3.13 (`find_interpreter`). Without a 3.13
on this machine the bench falls back to the same contents built for the running Python (`pip install
--target` of requirements.txt + boto3, Chalice's runtime files, app.py, chalicelib/) and says so.
The dev venv is never on the path: each sample is a fresh `python -S -E -B` process whose import path
is those directories and the standard library, so a package the zip lacks fails here as in Lambda,
and, as in Lambda's read-only /var/task, nothing it compiles is cached for the next sample: the byte
code the zip ships (package.py) is all there is.

Per round, interleaved (so machine noise hits all alike):
  baseline   `import boto3` (what every Python Lambda pays anyway)
  API        `import app` as the API function: the areas of routes are installed on their first
             request (chalicelib/api.py, "On demand"), so this is what every request needs
  + area     the same, then the area a first `GET /session/status` or `POST /send/text` installs
  whole API  `import app` with every area at import (as before the route index; as outside Lambda)
  fan-out    `import app` as the fan-out function
  libraries  the third-party modules the API function imports, alone
Prints the medians, the ratios to boto3, the libraries' own split (each measured after the ones
before it, in one process), the AWS calls made at import (must be 0), and the slowest top-level
imports of `app` (python -X importtime) to show where the rest goes.

The installed dependencies are cached under --cache (keyed by requirements.txt); the app's own
files are copied afresh on every run.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "wago-lambda-package"

_TIMED = """
import sys, time
sys.path[:0] = {path!r}
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""

# Count AWS requests made while importing app: every botocore request goes through Endpoint.make_request.
_COUNT_CALLS = """
import sys
sys.path[:0] = {path!r}
import botocore.endpoint
calls = []
original = botocore.endpoint.Endpoint.make_request
def counting(self, model, request_dict):
    calls.append(model.name)
    return original(self, model, request_dict)
botocore.endpoint.Endpoint.make_request = counting
import app
print(len(calls), ",".join(calls))
"""


def lambda_package(cache: Path) -> tuple[str, list[str], str]:
    """(interpreter, import path, what it is): the deployed zip on CPython 3.13 when this machine has
    one, else the same contents for the running interpreter."""
    sys.path.insert(0, str(PROJECT_DIR / "infra"))
    from wago_infra import package

    interpreter = package.find_interpreter()
    if interpreter is None:
        built = build_package(cache)
        return sys.executable, [str(built)], f"{built} (fallback: no CPython {package.TARGET_PYTHON} here)"
    zip_path = package.build_lambda_zip()
    unpacked = cache / f"zip-{zip_path.stat().st_mtime_ns}"
    if not unpacked.exists():  # as shipped: the zip's own byte code (package.py), nothing compiled here
        package.unpack(zip_path, unpacked)
    runtime = package.runtime_libraries()
    return interpreter, [str(unpacked), str(runtime)], f"{zip_path.name} unpacked, CPython {package.TARGET_PYTHON}"


def build_package(cache: Path) -> Path:
    """The Lambda package as a directory: cached site-packages + chalice runtime + app.py + chalicelib."""
    requirements = (PROJECT_DIR / "requirements.txt").read_bytes()
    import boto3  # the runtime-provided version to add (the dev venv pins the same botocore family)

    key = hashlib.sha256(requirements + boto3.__version__.encode()).hexdigest()[:16]
    site = cache / f"site-{key}"
    if not (site / ".complete").exists():
        shutil.rmtree(site, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--target", str(site), "-r", str(PROJECT_DIR / "requirements.txt"),
                        f"boto3=={boto3.__version__}"], check=True)
        (site / ".complete").touch()
    package = cache / f"package-{key}"
    shutil.rmtree(package, ignore_errors=True)
    shutil.copytree(site, package, symlinks=True, ignore=shutil.ignore_patterns(".complete"))
    import chalice
    import chalice.app

    (package / "chalice").mkdir()
    shutil.copy(inspect.getfile(chalice.app), package / "chalice" / "app.py")
    shutil.copy(inspect.getfile(chalice), package / "chalice" / "__init__.py")
    shutil.copy(PROJECT_DIR / "app.py", package / "app.py")
    shutil.copytree(PROJECT_DIR / "chalicelib", package / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    sys.path.insert(0, str(PROJECT_DIR / "infra"))
    from wago_infra.package import write_route_index

    write_route_index(package)  # as the zip carries it: the API function installs its areas on demand
    # As the zip does where a CPython 3.13 builds it (package.py): unchecked-hash byte code shipped.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                    str(package)], check=True)
    return package


API, FANOUT = "app.app", "app.deliver_events"  # the two functions' handlers (Lambda's _HANDLER)

# Every third-party module `import app` loads from the package and the runtime directories, in the
# order it loaded them (submodules included: a package's top level alone is not what the app pays).
_LIBRARIES = """
import sys
sys.path[:0] = {path!r}
before = set(sys.modules)
import app
print(" ".join(name for name in list(sys.modules) if name not in before
               and name.split(".")[0] not in ("app", "chalicelib")
               and any(str(getattr(sys.modules[name], "__file__", "") or "").startswith(p)
                       for p in sys.path[:{dirs}])))
"""


def _env(handler: str = API, *, in_lambda: bool = True) -> dict[str, str]:
    # What a Lambda function sees (no endpoint, no credentials needed at import). Outside Lambda (no
    # AWS_LAMBDA_FUNCTION_NAME) app.py installs every area at import. The admin token is a secret's
    # ARN, as the stack gives it: read on the first admin request, never at import (a read would fail
    # here, on the closed endpoint, and AWS calls at import would not be 0).
    env = {"_HANDLER": handler, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "STAGE": "dev",
           "ADMIN_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:wago-dev-admin-AbCdEf",
           "AWS_LAMBDA_FUNCTION_NAME": "wago-dev-api_handler", "POWERTOOLS_METRICS_NAMESPACE": "bench",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # any call at import would fail fast here, not reach AWS
    if not in_lambda:
        del env["AWS_LAMBDA_FUNCTION_NAME"]
    return env


def timed_import(python: str, path: list[str], statement: str, handler: str = API, in_lambda: bool = True) -> float:
    """Milliseconds to run `statement` (imports) in a fresh process as the function `handler`."""
    out = subprocess.run([python, "-S", "-E", "-B", "-c", _TIMED.format(path=path, statement=statement)],
                         env=_env(handler, in_lambda=in_lambda), cwd=path[0], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1]) * 1000


# The libraries every API request needs, in the order the split measures them (each after the ones before).
_LIBRARY_GROUPS = {
    "botocore + pynamodb": "import botocore.session, botocore.client, pynamodb.models, pynamodb.connection",
    "chalice": "import chalice.app",
    "pydantic (+ pydantic_core)": "import pydantic.main, pydantic.fields, pydantic.functional_validators",
    "Powertools (Logger, Metrics)": "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics",
    "the app's own modules": "import app",
}
_SPLIT = """
import sys, time
sys.path[:0] = {path!r}
out = []
for statement in {statements!r}:
    started = time.perf_counter()
    exec(statement)
    out.append(time.perf_counter() - started)
print(" ".join(str(s) for s in out))
"""


def library_split(python: str, path: list[str]) -> list[float]:
    """Milliseconds of each of _LIBRARY_GROUPS, imported in that order in one fresh API process."""
    code = _SPLIT.format(path=path, statements=list(_LIBRARY_GROUPS.values()))
    out = subprocess.run([python, "-S", "-E", "-B", "-c", code], env=_env(), cwd=path[0], capture_output=True,
                         text=True, check=True)
    return [float(s) * 1000 for s in out.stdout.strip().splitlines()[-1].split()]


def libraries(python: str, path: list[str]) -> list[str]:
    """The third-party packages `import app` (the API function) loads: what the app's own code adds
    to them is the part of the import time this project decides."""
    out = subprocess.run([python, "-S", "-E", "-B", "-c", _LIBRARIES.format(path=path, dirs=len(path))],
                         env=_env(), cwd=path[0], capture_output=True, text=True, check=True)
    return out.stdout.split()


def import_calls(python: str, path: list[str]) -> str:
    out = subprocess.run([python, "-S", "-E", "-B", "-c", _COUNT_CALLS.format(path=path)],
                         env=_env(), cwd=path[0], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def slowest_imports(python: str, path: list[str], top: int) -> list[tuple[int, str]]:
    out = subprocess.run([python, "-S", "-E", "-B", "-X", "importtime", "-c",
                          f"import sys; sys.path[:0] = {path!r}; import app"],
                         env=_env(), cwd=path[0], capture_output=True, text=True, check=True)
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative, name = line[len("import time:"):].split("|", 2)
        depth = len(name) - len(name.lstrip())
        if depth <= 3:  # app's own imports and their direct children
            rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--top", type=int, default=12, help="slowest imports of app to list")
    args = parser.parse_args()

    python, path, what = lambda_package(args.cache)
    third_party = libraries(python, path)
    first = "import app\napp.app.on_demand.load({!r})"
    samples: dict[str, tuple[str, str, bool]] = {  # label: (statement, handler, in Lambda)
        "baseline  import boto3": ("import boto3", API, True),
        "API       import app": ("import app", API, True),
        "  + area of GET /session/status": (first.format("/session/status"), API, True),
        "  + area of POST /send/text": (first.format("/send/text"), API, True),
        "whole API import app": ("import app", API, False),
        "fan-out   import app": ("import app", FANOUT, True),
        "libraries the API imports": ("\n".join(f"import {name}" for name in third_party), API, True),
    }
    for statement, handler, in_lambda in samples.values():  # warm the page cache
        timed_import(python, path, statement, handler, in_lambda)
    times: dict[str, list[float]] = {label: [] for label in samples}
    splits: list[list[float]] = []
    for _ in range(args.rounds):  # interleaved, so machine noise hits all alike
        for label, (statement, handler, in_lambda) in samples.items():
            times[label].append(timed_import(python, path, statement, handler, in_lambda))
        splits.append(library_split(python, path))
    medians = {label: statistics.median(values) for label, values in times.items()}
    b = medians["baseline  import boto3"]
    calls = import_calls(python, path)

    print(f"Lambda cold start (imports only), {what}, {args.rounds} fresh processes each")
    for label, values in times.items():
        print(f"{label:<32} {medians[label]:8.1f} ms (median; min {min(values):.1f}) = "
              f"{medians[label] / b:5.2f}x boto3")
    api, libs = medians["API       import app"], medians["libraries the API imports"]
    print(f"ratio API/boto3 {api / b:.2f}x, fan-out/boto3 {medians['fan-out   import app'] / b:.2f}x (target <= 1.5x)")
    packages = sorted({name.split(".")[0] for name in third_party})
    print(f"  the libraries alone ({', '.join(packages)}): {libs / b:.2f}x; the app's own modules add "
          f"{api - libs:.1f} ms ({(api - libs) / b:.2f}x)")
    print("  split of the API's import, in this order in one process (median ms, x boto3):")
    for label, column in zip(_LIBRARY_GROUPS, zip(*splits, strict=True), strict=True):
        print(f"    {label:<30} {statistics.median(column):7.1f} ms  {statistics.median(column) / b:5.2f}x")
    print(f"AWS calls at import: {calls.split(' ', 1)[0]}")
    print("slowest imports under app (cumulative ms, one sample):")
    for cumulative, name in slowest_imports(python, path, args.top):
        print(f"  {cumulative / 1000:7.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
