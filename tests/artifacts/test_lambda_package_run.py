"""The Lambda package, run: the zip CDK deploys, unpacked, serving the API and the fan-out on a moto server.

The zip is Chalice's own package of the staged project (infra/wago_infra/package.py, the same
directory the CDK construct packages; tests/unit/test_infra_template.py checks the two are the same
files). A child interpreter sees only the unpacked zip and the runtime's boto3/botocore
(`python -I -S`, infra/wago_infra/lambda_runner.py), as Lambda's python3.13 runtime does; the API
handler gets API Gateway REST proxy events and a Lambda context, the fan-out an SQS batch. A sim
session host (from the source tree) owns the sessions; the `dev` stage's settings are in force, so the
6 MB request cap is too.

Where no Python 3.13 is installed, the same package is built for this machine's Python and run with
it, and the test says so in its output.
"""

from __future__ import annotations

import base64
import json
import sys
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest

from tests.artifacts.stack import ADMIN_TOKEN, PROJECT_DIR, Child, LocalAws, wait_host_registered
from tests.http_server import LocalHTTPServer
from tests.lambda_events import proxy_event

sys.path.append(str(PROJECT_DIR / "infra"))
from wago_infra import package

# The first run pip-installs the package's dependencies for the target Python; later runs reuse them.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

STAGE = "dev"
ADMIN = {"admintoken": ADMIN_TOKEN}


class Api:
    def __init__(self, child: package.LambdaProcess):
        self.child = child

    def call(self, method: str, path: str, body=None, *, token: str | None = None, admin: bool = False,
             raw: str | None = None) -> tuple[int, dict]:
        headers = dict(ADMIN) if admin else {}
        if token:
            headers["token"] = token
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        answer = self.child.invoke("app", proxy_event(method, path, headers=headers, body=payload),
                                   function=f"wago-{STAGE}-APIHandler")
        return answer["statusCode"], json.loads(answer["body"])

    def ok(self, method: str, path: str, body=None, **kw) -> dict:
        status, answer = self.call(method, path, body, **kw)
        assert (status, answer["success"]) == (200, True), (path, status, answer)
        return answer["data"]


class Receiver:
    """A webhook receiver on 127.0.0.1: /ok answers 200, /fail 503; records what arrived."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append({"path": self.path, "type": self.headers.get("Content-Type"), "body": body})
                self.send_response(200 if self.path == "/ok" else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = LocalHTTPServer(Handler).start()
        self.url = f"http://127.0.0.1:{self.server.port}"

    def close(self) -> None:
        self.server.close()


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    interpreter = package.find_interpreter(package.TARGET_PYTHON)
    version = package.TARGET_PYTHON
    if interpreter is None:
        version = "{}.{}".format(*sys.version_info[:2])
        interpreter = sys.executable
    zip_path = package.build_lambda_zip(python_version=version)
    task = tmp_path_factory.mktemp("task")
    size = package.unpack(zip_path, task)
    return {"interpreter": interpreter, "version": version, "task": task, "size": size, "zip": zip_path,
            "runtime": package.runtime_libraries(version)}


def _lambda_env(aws: LocalAws, function: str, handler: str, task, **extra) -> dict[str, str]:
    return aws.env(STAGE, AWS_LAMBDA_FUNCTION_NAME=function, _HANDLER=handler, LAMBDA_TASK_ROOT=str(task),
                   AWS_EXECUTION_ENV=f"AWS_Lambda_{package.LAMBDA_RUNTIME}", WEBHOOK_ALLOW_LOOPBACK="true",
                   POWERTOOLS_SERVICE_NAME="wago-gateway", **extra)


def test_the_deployed_zip_serves_the_api_and_the_fanout(unpacked, capsys):
    aws, receiver, host = LocalAws(), Receiver(), None
    try:
        aws.provision(aws.env(STAGE))
        # The host needs no admin token (settings.validate_runnable("host")): none is given to it.
        host = Child("sim-host", [sys.executable, "-m", "session_host"], PROJECT_DIR, aws.env(STAGE))
        wait_host_registered(aws, STAGE, host)
        # As the stack gives it: the secret's ARN, read on the first admin request (not at import).
        secret = aws.client("secretsmanager").create_secret(Name=f"wago-{STAGE}-admin-token", SecretString=ADMIN_TOKEN)
        api_env = _lambda_env(aws, f"wago-{STAGE}-APIHandler", "app.app", unpacked["task"],
                              ADMIN_TOKEN_SECRET_ARN=secret["ARN"])
        with package.LambdaProcess(unpacked["interpreter"], unpacked["task"], unpacked["runtime"], api_env) as child:
            assert child.sys_path[:2] == [str(unpacked["task"]), str(unpacked["runtime"])]
            assert not any("site-packages" in p for p in child.sys_path), child.sys_path
            api = Api(child)
            assert api.ok("GET", "/server/ok") == {"status": "ok"}
            phones = {"alice": "15550008001", "bob": "15550008002"}
            for token, phone in phones.items():
                assert api.ok("POST", "/session/init", {"Name": token, "Token": token, "Os": "Chrome"},
                              admin=True)["token"] == token
                api.ok("POST", "/session/connect", {"Subscribe": ["All"], "Immediate": True}, token=token)
                api.ok("POST", "/sim/scan", {"Token": token, "Phone": phone}, admin=True)
            status = api.ok("GET", "/session/status", token="alice")
            assert (status["Connected"], status["LoggedIn"], status["Jid"]["User"]) == (True, True, phones["alice"])
            api.ok("POST", "/webhook", {"WebhookURL": f"{receiver.url}/fail"}, token="alice")
            api.ok("POST", "/webhook", {"WebhookURL": f"{receiver.url}/ok"}, token="bob")
            sent = api.ok("POST", "/send/text", {"Phone": phones["bob"], "Body": "from the zip"}, token="alice")
            assert sent["Details"] == "Sent" and sent["Id"]

            assert api.call("GET", "/no/such/route") == (404, {"code": 404, "error": "Not Found", "success": False})
            status_code, answer = api.call("POST", "/send/text", raw='{"Phone": "1555', token="alice")
            assert (status_code, answer["code"], answer["success"]) == (400, 400, False)
            assert answer["error"].startswith("Could not decode Payload"), answer
            # The dev stage's 6 MB cap, in the deployed code: a 5 MB image as a data URL.
            png = b"\x89PNG\r\n\x1a\n" + b"\0" * (5_000_000 - 8)
            status_code, answer = api.call("POST", "/send/image", {
                "Phone": phones["bob"], "Image": "data:image/png;base64," + base64.b64encode(png).decode()},
                token="alice")
            assert status_code == 413 and "POST /media/upload" in answer["error"] and "MediaKey" in answer["error"]
            api_init_ms = child.init_ms

        def batch_ready(messages):
            bodies = [json.loads(m["Body"]) for m in messages]
            return (any(b["token"] == "bob" and b["type"] == "Message" and b["event"]["Info"]["ID"] == sent["Id"]
                        for b in bodies) and any(b["token"] == "alice" for b in bodies))

        messages = aws.drain_events(f"wago-{STAGE}-events", batch_ready)
        bob = next(m for m in messages if json.loads(m["Body"])["token"] == "bob"
                   and json.loads(m["Body"])["type"] == "Message")
        alice = next(m for m in messages if json.loads(m["Body"])["token"] == "alice")
        from local_gateway.poller import to_lambda_event

        sqs = aws.client("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=f"wago-{STAGE}-events")["QueueUrl"],
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        batch = to_lambda_event([bob, alice], queue_arn, "us-east-1")
        # The fan-out reads no admin token (settings.validate_runnable("fanout")): none is given to it.
        fanout_env = _lambda_env(aws, f"wago-{STAGE}-DeliverEvents", "app.deliver_events", unpacked["task"])
        with package.LambdaProcess(unpacked["interpreter"], unpacked["task"], unpacked["runtime"],
                                   fanout_env) as fanout:
            result = fanout.invoke("deliver_events", batch, function=f"wago-{STAGE}-DeliverEvents", timeout_ms=60_000)
            fanout_init_ms = fanout.init_ms
        assert result == {"batchItemFailures": [{"itemIdentifier": alice["MessageId"]}]}
        delivered = [r for r in receiver.received if r["path"] == "/ok"]
        assert len(delivered) == 1 and delivered[0]["type"] == "application/x-www-form-urlencoded"
        form = parse_qs(delivered[0]["body"].decode())
        assert form["token"] == ["bob"]
        document = json.loads(form["jsonData"][0])  # WaGo's form: token + jsonData
        assert document["type"] == "Message" and document["event"]["Info"]["ID"] == sent["Id"]
        assert [r["path"] for r in receiver.received].count("/fail") == 1  # tried once, reported for a retry

        assert host.terminate(timeout=60) == 0, host.output()
        with capsys.disabled():
            ran = (f"Python {unpacked['version']}" if unpacked["version"] == package.TARGET_PYTHON else
                   f"this machine's Python {unpacked['version']} (NO Python {package.TARGET_PYTHON} here: the "
                   f"{package.TARGET_PYTHON} package was not run)")
            print(f"\n[lambda zip] ran on {ran}: unzipped {unpacked['size'] / package.MIB:.1f} MiB of Lambda's "
                  f"{package.UNZIPPED_LIMIT_BYTES / package.MIB:.0f} MiB "
                  f"(zip {unpacked['zip'].stat().st_size / package.MIB:.1f} "
                  f"MiB); handler init {api_init_ms:.0f} ms (API), {fanout_init_ms:.0f} ms (fan-out)")
    finally:
        if host is not None:
            host.terminate(timeout=30)
            host.stop()
        receiver.close()
        aws.close()
