"""`make run`'s settings from the environment (API_PORT, MOTO_PORT, LOCAL_SNAPSHOT_SECONDS) are checked
like the flags: a bad value is argparse's usage error (exit 2) naming the setting, never a traceback."""

from __future__ import annotations

import pytest

from local_gateway.__main__ import _parse_args


def test_environment_defaults_are_typed(monkeypatch):
    monkeypatch.setenv("API_PORT", "18001")
    monkeypatch.setenv("MOTO_PORT", "18002")
    monkeypatch.setenv("LOCAL_SNAPSHOT_SECONDS", "2")
    args = _parse_args([])
    assert (args.api_port, args.aws_port, args.snapshot_seconds) == (18001, 18002, 2.0)


@pytest.mark.parametrize(("variable", "flag"), [("API_PORT", "--api-port"), ("MOTO_PORT", "--aws-port"),
                                                ("LOCAL_SNAPSHOT_SECONDS", "--snapshot-seconds")])
def test_a_malformed_environment_value_is_a_usage_error(monkeypatch, capsys, variable, flag):
    monkeypatch.setenv(variable, "abc")
    with pytest.raises(SystemExit) as exit_info:
        _parse_args([])
    assert exit_info.value.code == 2
    assert f"argument {flag}: invalid" in capsys.readouterr().err
