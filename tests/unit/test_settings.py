"""Settings: stage-prefixed names, explicit overrides, the admin-token rule."""

from __future__ import annotations

import pytest

from chalicelib.core.settings import ConfigurationError, Settings


def test_names_carry_the_stage_prefix():
    settings = Settings(stage="dev", admin_token="x")
    assert settings.sessions_table_name == "wago-dev-sessions"
    assert settings.events_queue_name == "wago-dev-events"
    assert settings.events_dlq_name == "wago-dev-events-dlq"
    assert Settings(stage="dev", resource_prefix="acme").hosts_table_name == "acme-hosts"
    assert Settings(stage="dev", media_bucket="my-bucket-123").media_bucket_name == "my-bucket-123"


def test_default_admin_token_only_in_local_stages():
    assert Settings(stage="local").require_admin_token() == "qwert"
    assert Settings(stage="prod", admin_token=" s3cret ").require_admin_token() == "s3cret"
    with pytest.raises(ConfigurationError, match="stage 'prod' needs an admin token"):
        Settings(stage="prod").validate_runnable()
    # Only the API reads the admin token: the fan-out and the hosts start without one (and without
    # access to its secret); an unknown role is a programming error.
    Settings(stage="prod").validate_runnable("fanout")
    Settings(stage="prod").validate_runnable("host")
    with pytest.raises(ValueError, match="unknown process role"):
        Settings(stage="prod").validate_runnable("worker")


def test_unknown_stage_is_refused():
    with pytest.raises(ValueError, match="STAGE must be one of"):
        Settings(stage="staging")


def test_admin_token_from_secrets_manager(aws):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(Name="wago/admin", SecretString="from-secret\n")["ARN"]
    assert Settings(stage="prod", admin_token_secret_arn=arn).require_admin_token() == "from-secret"


def test_host_command_polling_defaults_by_stage():
    from chalicelib.core.settings import Settings

    assert Settings(stage="local").command_poll_interval == 0.05  # moto: short polls (see the field)
    assert Settings(stage="prod", admin_token="x" * 16).command_poll_interval == 0.0  # SQS: long polls
    assert Settings(stage="prod", admin_token="x" * 16, command_short_poll_seconds=0.2).command_poll_interval == 0.2


def test_the_api_starts_on_a_secret_arn_without_reading_it(aws):
    """The API function checks at start that an admin token is configured, and reads the secret on the
    first admin request: reading it at start cost every cold start boto3's import (Powertools'
    parameters), a client and a call. The secret need not exist yet: nothing is read."""
    import botocore.endpoint

    calls: list[str] = []
    original = botocore.endpoint.Endpoint.make_request

    def counting(self, model, request_dict):
        calls.append(model.name)
        return original(self, model, request_dict)

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wago-prod-admin-token-AbCdEf"
    try:
        botocore.endpoint.Endpoint.make_request = counting
        Settings(stage="prod", admin_token_secret_arn=arn).validate_runnable("api")
    finally:
        botocore.endpoint.Endpoint.make_request = original
    assert calls == []


def test_an_unreadable_or_empty_admin_token_is_a_configuration_error_without_aws_detail(aws):
    import boto3

    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:wago-prod-missing-AbCdEf"
    with pytest.raises(ConfigurationError) as raised:
        Settings(stage="prod", admin_token_secret_arn=missing).require_admin_token()
    assert str(raised.value) == ("could not read the admin token secret (ADMIN_TOKEN_SECRET_ARN): "
                                 "ResourceNotFoundException")
    empty = boto3.client("secretsmanager").create_secret(Name="wago/empty", SecretString=" \n")["ARN"]
    with pytest.raises(ConfigurationError, match="the admin token is empty"):
        Settings(stage="prod", admin_token_secret_arn=empty).require_admin_token()
    # A blank ADMIN_TOKEN is unset (`export ADMIN_TOKEN=`): the local default, or no token at all.
    assert Settings(stage="local", admin_token=" ").require_admin_token() == "qwert"
    with pytest.raises(ConfigurationError, match="stage 'prod' needs an admin token"):
        Settings(stage="prod", admin_token="   ").validate_runnable()
