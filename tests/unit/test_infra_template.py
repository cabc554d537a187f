"""The CDK stack (infra/) has what the design depends on.

Synthesizes the `dev` stack once per module with aws_cdk.App + WagoStack + Template.from_stack, in a
child Python process (SYNTH below), and inspects the CloudFormation template. A child, because
app.py can be imported only once per process (Chalice blueprints register on one app) and this
test session has already imported it for the `test` stage, while the stack must package it with the
`dev` stage's literal queue name. Needs node (jsii runs aws-cdk-lib in it); no AWS credentials, no
Docker. The Lambda package's dependencies are pip-installed for python3.13 into .data/lambda-build/
(wago_infra/package.py): from PyPI on the first run, cached afterwards. The package itself is
checked here too: cdk-nag's AwsSolutions findings (an unacknowledged error fails the synth, as
`make synth` does), every function's Runtime, the ABI of every compiled module in the zip CDK
deploys, and (where a Python 3.13 exists on the machine) importing its handler with that Python.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
INFRA_DIR = PROJECT_DIR / "infra"
STAGE = "dev"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="aws-cdk-lib needs node (jsii)")

# Actions that may name Resource "*" (they cannot be scoped to a resource).
UNSCOPABLE_ACTIONS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                      "cloudwatch:PutMetricData"}
ADMIN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")

SYNTH = """
import json, sys
from pathlib import Path

import aws_cdk
import cdk_nag
from aws_cdk.assertions import Template

from wago_infra.stack import StageConfig, WagoStack

work, stage = Path(sys.argv[1]), sys.argv[2]
app = aws_cdk.App(outdir=str(work / "cdk.out"))
stack = WagoStack(app, f"wago-{stage}", StageConfig(stage=stage))
# As infra/cdk_app.py: cdk-nag's AwsSolutions pack, where an unacknowledged error fails the synth.
aws_cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app))
app.synth()
(work / "template.json").write_text(json.dumps(Template.from_stack(stack).to_json()))
"""


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    import aws_cdk  # noqa: F401 - requirements-infra.txt, installed by make test: a missing one must fail
    work = tmp_path_factory.mktemp("infra")
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1", AWS_DEFAULT_REGION="us-east-1",
               JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="18,20",
               PYTHONPATH=os.pathsep.join([str(PROJECT_DIR), str(INFRA_DIR)]))
    for var in ("STAGE", "AWS_ENDPOINT_URL", "CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION"):
        env.pop(var, None)
    # A build shell that looks like a Lambda function (its variables left set) must not change what is
    # packaged: app.py would install its routes on demand, or none as the fan-out (stack._importing_app_for).
    env.update(AWS_LAMBDA_FUNCTION_NAME="a-build-shell", _HANDLER="app.deliver_events")
    # cwd: chalice.cdk writes ./chalice.out
    done = subprocess.run([sys.executable, "-c", SYNTH, str(work), STAGE], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    return {"template": json.loads((work / "template.json").read_text()), "outdir": work / "cdk.out"}


@pytest.fixture(scope="module")
def resources(synth):
    return synth["template"]["Resources"]


def of_type(resources: dict, kind: str) -> dict:
    return {lid: r for lid, r in resources.items() if r["Type"] == kind}


def props(resource: dict) -> dict:
    return resource.get("Properties", {})


def stage_settings():
    from chalicelib.core.settings import Settings

    return Settings(stage=STAGE)


# -- names: what app.py and chalicelib derive --------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_stack_names_equal_what_settings_derive(stage):
    sys.path.append(str(INFRA_DIR))
    from chalicelib.core.settings import Settings
    from wago_infra.naming import Names

    env = Names(stage).environment()
    settings = Settings(stage=stage)
    assert env["STAGE"] == stage
    assert env["EVENTS_QUEUE"] == settings.events_queue_name == f"wago-{stage}-events"
    assert env["EVENTS_DLQ"] == settings.events_dlq_name
    for var, prop in [("SESSIONS_TABLE", "sessions_table_name"), ("SESSION_NAMES_TABLE", "session_names_table_name"),
                      ("COUNTERS_TABLE", "counters_table_name"), ("HOSTS_TABLE", "hosts_table_name"),
                      ("REPLIES_TABLE", "replies_table_name"),
                      ("SIM_TABLE", "sim_table_name"), ("CALLS_TABLE", "calls_table_name")]:
        assert env[var] == getattr(settings, prop)
    assert settings.host_queue_name("abc").startswith(Names(stage).host_queue_pattern.rstrip("*"))


# -- fan-out -----------------------------------------------------------------------------------------


def test_fanout_event_source_reports_partial_batch_failures(resources):
    functions = of_type(resources, "AWS::Serverless::Function")
    sources = [(lid, event["Properties"]) for lid, fn in functions.items()
               for event in props(fn).get("Events", {}).values() if event["Type"] == "SQS"]
    assert len(sources) == 1, sources
    lid, source = sources[0]
    assert lid == "DeliverEvents"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["ScalingConfig"]["MaximumConcurrency"] >= 2  # bounded (2 is SQS's minimum)
    assert source["MaximumBatchingWindowInSeconds"] >= 1
    from chalicelib.webhooks.fanout import CONCURRENCY, PREFETCH_RECORDS
    from wago_infra.stack import FANOUT_MAX_BATCH, StageConfig

    assert source["BatchSize"] == StageConfig(stage=STAGE).fanout_batch_size == 25
    assert FANOUT_MAX_BATCH <= PREFETCH_RECORDS  # one BatchGetItem per batch
    # Even when every receiver times out, the batch's POSTs (CONCURRENCY at a time) end within the timeout.
    rounds = -(-source["BatchSize"] // CONCURRENCY)
    assert rounds * stage_settings().webhook_timeout_seconds + 10 <= props(functions["DeliverEvents"])["Timeout"]
    # The literal queue name the decorator registered is the queue this stack creates.
    queue_names = {props(q)["QueueName"] for q in of_type(resources, "AWS::SQS::Queue").values()}
    assert stage_settings().events_queue_name in queue_names
    assert json.dumps(source["Queue"]).endswith(f':{stage_settings().events_queue_name}"}}')


def test_fanout_has_its_own_role_and_timeout_within_queue_visibility(resources):
    fanout, api = props(resources["DeliverEvents"]), props(resources["APIHandler"])
    assert fanout["Role"] != api["Role"]
    events_queue = next(q for q in of_type(resources, "AWS::SQS::Queue").values()
                        if props(q)["QueueName"] == stage_settings().events_queue_name)
    assert props(events_queue)["VisibilityTimeout"] >= 6 * fanout["Timeout"]
    assert api["Timeout"] <= 30  # API Gateway stops at 29 s


# -- queues ------------------------------------------------------------------------------------------


def test_every_queue_has_a_redrive_policy_except_dead_letter_queues(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    dlq_ids = {props(q)["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for q in queues.values() if "RedrivePolicy" in props(q)}
    assert dlq_ids, "no queue has a dead-letter queue"
    for lid, queue in queues.items():
        p = props(queue)
        if lid in dlq_ids:
            assert "RedriveAllowPolicy" in p
            assert p["MessageRetentionPeriod"] == 14 * 24 * 3600
        else:
            assert p["RedrivePolicy"]["maxReceiveCount"] >= 3, lid
        assert p.get("SqsManagedSseEnabled") is True, lid


# -- bucket ------------------------------------------------------------------------------------------


def test_media_bucket_is_private_encrypted_and_expires_objects(resources):
    buckets = of_type(resources, "AWS::S3::Bucket")
    assert len(buckets) == 1
    (lid, bucket), = buckets.items()
    p = props(bucket)
    assert p["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
    }
    assert p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = p["LifecycleConfiguration"]["Rules"]
    assert any(r.get("ExpirationInDays") and r["Status"] == "Enabled" for r in rules)
    assert any("AbortIncompleteMultipartUpload" in r for r in rules)
    policies = [props(r)["PolicyDocument"]["Statement"] for r in of_type(resources, "AWS::S3::BucketPolicy").values()]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for statements in policies for s in statements)


# -- tables ------------------------------------------------------------------------------------------


def test_tables_are_on_demand_with_pitr_and_match_the_models(resources):
    from chalicelib.core.models import ALL_MODELS

    tables = {props(t)["TableName"]: props(t) for t in of_type(resources, "AWS::DynamoDB::Table").values()}
    settings = stage_settings()
    expected_keys = {}
    for model in ALL_MODELS:
        if model.Meta.table_name.endswith("-sim"):
            continue  # the sim table exists only where the sim driver runs
        # Models were imported under the test stage: map their table suffix onto this stage.
        suffix = model.Meta.table_name.removeprefix("wago-test-")
        range_key = model._range_key_attribute()
        expected_keys[f"{settings.prefix}-{suffix}"] = [model._hash_key_attribute().attr_name] + (
            [range_key.attr_name] if range_key else [])
    assert set(tables) == set(expected_keys)
    expected_indexes = {}
    for model in ALL_MODELS:
        suffix = model.Meta.table_name.removeprefix("wago-test-")
        for index in model._indexes.values():
            meta = index.Meta
            expected_indexes.setdefault(f"{settings.prefix}-{suffix}", []).append({
                "IndexName": meta.index_name,
                "KeySchema": [{"AttributeName": attr.attr_name, "KeyType": "HASH" if attr.is_hash_key else "RANGE"}
                              for attr in meta.attributes.values() if attr.is_hash_key or attr.is_range_key],
                "Projection": {"ProjectionType": meta.projection.projection_type,
                               **({"NonKeyAttributes": meta.projection.non_key_attributes}
                                  if getattr(meta.projection, "non_key_attributes", None) else {})},
            })
    assert expected_indexes  # the sessions table's owner index, at least
    for name, p in tables.items():
        assert p["BillingMode"] == "PAY_PER_REQUEST", name
        assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, name
        assert p["KeySchema"] == [{"AttributeName": key, "KeyType": kind}
                                  for key, kind in zip(expected_keys[name], ("HASH", "RANGE"), strict=False)], name
        index_keys = [k["AttributeName"] for i in expected_indexes.get(name, []) for k in i["KeySchema"]]
        assert p["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}
                                             for key in expected_keys[name] + index_keys], name
        # Every model index exists in the stack, as the model declares it (no more, no less).
        assert p.get("GlobalSecondaryIndexes", []) == expected_indexes.get(name, []), name
    assert tables[settings.replies_table_name]["TimeToLiveSpecification"] == {"AttributeName": "expires_at",
                                                                             "Enabled": True}


# -- IAM ---------------------------------------------------------------------------------------------


def _statements(resources):
    for lid, r in resources.items():
        if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for s in props(r)["PolicyDocument"]["Statement"]:
                yield lid, s
        if r["Type"] == "AWS::IAM::Role":
            for policy in props(r).get("Policies", []):
                for s in policy["PolicyDocument"]["Statement"]:
                    yield lid, s


def _listify(value):
    return value if isinstance(value, list) else [value]


def test_no_wildcard_admin_iam(resources):
    statements = list(_statements(resources))
    assert statements
    for lid, s in statements:
        if s["Effect"] != "Allow":
            continue
        actions = _listify(s["Action"])
        resources_ = _listify(s.get("Resource", []))
        assert "*" not in actions, (lid, s)
        assert not any(a.endswith(":*") for a in actions), (lid, s)
        if "*" in resources_:
            assert set(actions) <= UNSCOPABLE_ACTIONS, (lid, s)
    for lid, role in of_type(resources, "AWS::IAM::Role").items():
        for arn in props(role).get("ManagedPolicyArns", []):
            assert not any(name in json.dumps(arn) for name in ADMIN_MANAGED_POLICIES), (lid, arn)


def test_host_queue_management_is_limited_to_this_stages_host_queues(resources):
    statements = [s for _, s in _statements(resources) if "sqs:CreateQueue" in _listify(s["Action"])]
    assert len(statements) == 1
    (resource,) = _listify(statements[0]["Resource"])
    assert json.dumps(resource["Fn::Join"][1][-1]) == f'":wago-{STAGE}-host-*"'
    assert "sqs:DeleteQueue" in statements[0]["Action"]


# -- secrets -----------------------------------------------------------------------------------------


def _environments(resources):
    for lid, fn in of_type(resources, "AWS::Serverless::Function").items():
        yield lid, props(fn).get("Environment", {}).get("Variables", {})
    for lid, fn in of_type(resources, "AWS::Lambda::Function").items():
        yield lid, props(fn).get("Environment", {}).get("Variables", {})
    for lid, task in of_type(resources, "AWS::ECS::TaskDefinition").items():
        for container in props(task)["ContainerDefinitions"]:
            yield lid, {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def test_secrets_live_in_secrets_manager_never_in_configuration(resources):
    secrets = of_type(resources, "AWS::SecretsManager::Secret")
    by_name = {props(s).get("Name"): lid for lid, s in secrets.items()}
    admin_lid = by_name[f"wago-{STAGE}/admin-token"]
    assert "GenerateSecretString" in props(secrets[admin_lid])
    # Webhook signing secrets are per session (POST /webhook): the stack holds no signing secret.
    assert set(by_name) == {f"wago-{STAGE}/admin-token", f"wago-{STAGE}/device-store"}
    for lid, env in _environments(resources):
        for forbidden in ("ADMIN_TOKEN", "NEONIZE_DB_PASSWORD", "NEONIZE_STORE", "WEBHOOK_SECRET"):
            assert forbidden not in env, (lid, forbidden)
    functions = of_type(resources, "AWS::Serverless::Function")
    readers = {role["Ref"] for lid, s in _statements(resources)
               if "secretsmanager:GetSecretValue" in _listify(s["Action"]) and s["Resource"] == {"Ref": admin_lid}
               for role in props(resources[lid]).get("Roles", [])}
    # Only the API reads the admin token (settings.validate_runnable per process role): only its role may.
    api_role = props(functions["APIHandler"])["Role"]["Fn::GetAtt"][0]
    assert props(functions["APIHandler"])["Environment"]["Variables"]["ADMIN_TOKEN_SECRET_ARN"] == {"Ref": admin_lid}
    assert readers == {api_role}, readers
    assert "ADMIN_TOKEN_SECRET_ARN" not in props(functions["DeliverEvents"])["Environment"]["Variables"]
    (task,) = of_type(resources, "AWS::ECS::TaskDefinition").values()
    (container,) = props(task)["ContainerDefinitions"]
    assert "ADMIN_TOKEN_SECRET_ARN" not in {e["Name"] for e in container["Environment"]}
    injected = {s["Name"] for s in container["Secrets"]}
    assert {"NEONIZE_DB_USER", "NEONIZE_DB_PASSWORD"} <= injected


# -- API Gateway -------------------------------------------------------------------------------------


def test_unknown_route_answers_wagos_404_envelope(resources):
    from chalicelib import envelope

    responses = props(resources["RestAPI"])["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["statusCode"] == "404"
    body = json.loads(missing["responseTemplates"]["application/json"])
    assert body == {"code": 404, "error": "Not Found", "success": False}
    assert body == json.loads(envelope.failure(404, "Not Found").body)


def test_the_rest_api_has_every_route_of_the_app(resources):
    """API Gateway's resources come from Chalice's route table at synth: every declared route is there."""
    from chalicelib import api

    paths = props(resources["RestAPI"])["DefinitionBody"]["paths"]
    for path, methods in api.route_index().items():
        if path.startswith("/sim/"):
            continue  # the stage runs the neonize driver: /sim/* answer 404 saying why, on every method
        assert {method.lower() for method in methods} <= set(paths[path]), path


def test_bodies_too_large_for_lambda_or_api_gateway_say_how_to_send_media(resources):
    # Over Lambda's 6 MB (502 from API Gateway) or API Gateway's 10 MB (413), the app never sees the
    # request: the gateway's own answer carries the app's advice (POST /media/upload, then MediaKey).
    from chalicelib.core.limits import UPLOAD_HINT

    responses = props(resources["RestAPI"])["DefinitionBody"]["x-amazon-apigateway-gateway-responses"]
    for kind, status in (("REQUEST_TOO_LARGE", 413), ("INTEGRATION_FAILURE", 502)):
        body = json.loads(responses[kind]["responseTemplates"]["application/json"])
        assert body["code"] == int(responses[kind]["statusCode"]) == status and body["success"] is False
        assert UPLOAD_HINT in body["error"] and "$" not in body["error"] and "#" not in body["error"]  # VTL


def test_lambdas_get_the_stage_settings_and_powertools_variables(resources):
    settings = stage_settings()
    for lid in ("APIHandler", "DeliverEvents"):
        env = props(resources[lid])["Environment"]["Variables"]
        assert env["STAGE"] == STAGE
        assert env["EVENTS_QUEUE"] == settings.events_queue_name
        assert env["SESSIONS_TABLE"] == settings.sessions_table_name
        assert env["POWERTOOLS_SERVICE_NAME"] and env["POWERTOOLS_METRICS_NAMESPACE"] and env["LOG_LEVEL"]
        assert "AWS_ENDPOINT_URL" not in env
        logging = props(resources[lid])["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        assert props(resources[logging["LogGroup"]["Ref"]])["RetentionInDays"] > 0


def test_fanout_role_reaches_only_the_sessions_and_the_delivery_log(resources):
    # Idempotency lives in the data (the delivery log keyed by event), not in a table of its own.
    functions = of_type(resources, "AWS::Serverless::Function")
    fanout_role = props(functions["DeliverEvents"])["Role"]["Fn::GetAtt"][0]
    names = {lid: props(t)["TableName"] for lid, t in of_type(resources, "AWS::DynamoDB::Table").items()}
    granted = {names[table] for lid, s in _statements(resources)
               if fanout_role in [r["Ref"] for r in props(resources[lid]).get("Roles", [])]
               for table in names if table in json.dumps(s["Resource"])}
    settings = stage_settings()
    assert granted == {settings.sessions_table_name, settings.deliveries_table_name}


def test_api_stage_has_default_throttling_and_json_access_logs(resources):
    api = props(resources["RestAPI"])
    (method,) = api["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert method["ThrottlingRateLimit"] > 0 and method["ThrottlingBurstLimit"] >= method["ThrottlingRateLimit"]
    access = api["AccessLogSetting"]
    fields = json.loads(access["Format"])  # JSON lines
    assert {"requestId", "status", "httpMethod", "resourcePath"} <= set(fields)
    assert not any("header" in value.lower() for value in fields.values())  # no token in a log line
    log_group = access["DestinationArn"]["Fn::GetAtt"][0]
    assert props(resources[log_group])["RetentionInDays"] > 0
    (account,) = of_type(resources, "AWS::ApiGateway::Account").values()
    assert "CloudWatchRoleArn" in props(account)


# -- the Lambda package ------------------------------------------------------------------------------


def _lambda_package():
    sys.path.append(str(INFRA_DIR))
    from wago_infra import package

    return package


def test_every_function_runs_on_the_target_runtime(resources):
    package = _lambda_package()
    runtimes = {lid: props(r).get("Runtime") for lid, r in resources.items()
                if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    assert len(runtimes) >= 3, runtimes
    assert set(runtimes.values()) == {package.LAMBDA_RUNTIME} == {"python3.13"}, runtimes


def test_deployed_zip_holds_only_target_abi_modules_and_imports_on_the_target_python(resources, synth, tmp_path,
                                                                                      capsys):
    package = _lambda_package()
    keys = {props(resources[lid])["CodeUri"]["Key"] for lid in ("APIHandler", "DeliverEvents")}
    (key,) = keys  # both functions deploy the one zip
    zip_path = synth["outdir"] / f"asset.{key}"
    modules = package.extension_modules(zip_path)
    assert any(name.startswith("pydantic_core/") for name in modules), modules
    wrong = {name: tag for name, tag in modules.items() if not package.abi_matches(tag)}
    assert wrong == {}, wrong
    # build_lambda_zip (bench/ and tests/artifacts run it) packages the very files CDK deploys.
    with zipfile.ZipFile(zip_path) as deployed, zipfile.ZipFile(package.build_lambda_zip()) as built:
        assert sorted((i.filename, i.CRC) for i in deployed.infolist()) == sorted(
            (i.filename, i.CRC) for i in built.infolist())
    unzipped = package.unpack(zip_path, tmp_path / "task")
    assert unzipped < package.UNZIPPED_LIMIT_BYTES
    interpreter = package.find_interpreter(package.TARGET_PYTHON)
    with capsys.disabled():
        if interpreter is None:
            print(f"\n[lambda package] no Python {package.TARGET_PYTHON} on this machine (LAMBDA_PYTHON, PATH, pyenv): "
                  f"the zip's ABI tags were checked, importing its handler with {package.TARGET_PYTHON} was NOT done")
            return
    # Byte code for the target: /var/task is read-only, so a module without its pyc compiles on every
    # cold start. Each chalicelib and dependency module has an unchecked-hash pyc (PEP 552 flags 0b01:
    # hash-based, source not checked, as a zip's 2-second mtimes cannot be trusted).
    task = tmp_path / "task"
    tag = f"cpython-{package.TARGET_ABI[2:]}"
    missing, checked = [], 0
    for source in [task / "app.py", task / "chalice" / "app.py", *(task / "chalicelib").rglob("*.py"),
                   *(task / "pydantic").rglob("*.py"), *(task / "aws_lambda_powertools").rglob("*.py")]:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        if not pyc.exists():
            missing.append(str(source.relative_to(task)))
            continue
        assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01, pyc
        checked += 1
    assert checked and not missing, missing[:10]
    env = {"PATH": os.environ.get("PATH", ""), "STAGE": STAGE, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "ADMIN_TOKEN": "import-check",
           "AWS_LAMBDA_FUNCTION_NAME": "APIHandler", "_HANDLER": "app.app"}
    with package.LambdaProcess(interpreter, tmp_path / "task", package.runtime_libraries(), env) as child:
        assert child.python.startswith(package.TARGET_PYTHON + ".")
        assert child.sys_path[0] == str(tmp_path / "task")
    # The API function imports each area of routes on its first request (chalicelib/api.py), so the
    # handler's import above loads none: every area, and the index naming them, are checked here.
    every_area = ("import json, sys; sys.path[:0] = sys.argv[1:]; import app; from chalicelib import api; "
                  "routers = [api.area(name) for name in (*api.AREAS, api.SIMULATOR)]; "
                  "print(json.dumps([app.app.on_demand is not None, sorted(api.load_route_index()), "
                  "sorted({spec.path for router in routers for spec in router.specs})]))")
    done = subprocess.run([interpreter, "-I", "-S", "-B", "-c", every_area, str(task),
                           str(package.runtime_libraries())],
                          env=env, cwd=task, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    on_demand, indexed, declared = json.loads(done.stdout.strip().splitlines()[-1])
    assert on_demand and indexed == declared and len(declared) > 70
    with capsys.disabled():
        print(f"\n[lambda package] handler imported with Python {child.python} from the unpacked zip in "
              f"{child.init_ms:.0f} ms; unzipped {unzipped / package.MIB:.1f} MiB of "
              f"{package.UNZIPPED_LIMIT_BYTES / package.MIB:.0f} MiB")


# -- session hosts -----------------------------------------------------------------------------------


def test_session_host_service_drains_scales_and_reaches_the_device_store(resources):
    (task,) = of_type(resources, "AWS::ECS::TaskDefinition").values()
    (container,) = props(task)["ContainerDefinitions"]
    assert 60 <= container["StopTimeout"] <= 120
    assert container["HealthCheck"]["Command"][0] == "CMD"
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["STAGE"] == STAGE and "NEONIZE_DB_HOST" in env
    policies = of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    metrics = [props(p)["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["MetricName"]
               for p in policies]
    assert "SessionsPerHost" in metrics
    (db,) = of_type(resources, "AWS::RDS::DBInstance").values()
    assert props(db)["StorageEncrypted"] is True and props(db)["PubliclyAccessible"] is False
    assert of_type(resources, "AWS::EC2::NatGateway") == {}  # no always-on NAT cost


def test_host_image_asset_stages_only_what_the_dockerfile_copies(synth):
    manifest = json.loads((synth["outdir"] / f"wago-{STAGE}.assets.json").read_text())
    (image,) = manifest["dockerImages"].values()
    assert image["source"]["dockerFile"] == "session_host/Dockerfile"
    staged = synth["outdir"] / image["source"]["directory"]
    names = {p.name for p in staged.iterdir()}
    assert names == {"chalicelib", "session_host", "requirements.txt", "requirements-host.txt"}
    # The host imports chalicelib.core only (tests/artifacts/test_host_image.py runs it from these files).
    assert sorted(p.name for p in (staged / "chalicelib").iterdir()) == ["__init__.py", "core"]


# -- alarms ------------------------------------------------------------------------------------------


def test_alarms_cover_dlq_fanout_errors_and_host_heartbeats(resources):
    alarms = [props(a) for a in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    metric_names = {a.get("MetricName") for a in alarms}
    assert {"ApproximateNumberOfMessagesVisible", "Errors", "MaxHeartbeatAgeSeconds"} <= metric_names
    dlq_alarm = next(a for a in alarms if a.get("MetricName") == "ApproximateNumberOfMessagesVisible")
    assert "EventsDlq" in json.dumps(dlq_alarm["Dimensions"])
    fanout_alarms = [a for a in alarms if a.get("MetricName") == "Errors"
                     and {"Ref": "DeliverEvents"} in [d["Value"] for d in a["Dimensions"]]]
    assert fanout_alarms
    assert all(a.get("AlarmActions") for a in alarms)
