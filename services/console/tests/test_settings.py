"""Settings refuse nonsense at start-up, naming the variable."""

from __future__ import annotations

import subprocess

import pytest
from pydantic import ValidationError

from console_server.settings import Settings
from testkit.servers import BIN, clean_env


def settings(**env: str) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "PORT",
            "PIPELINE_ADDR",
            "PIPELINE_TLS",
            "PIPELINE_AUDIENCE",
            "CONSOLE_LISTEN_HOST",
        ):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        return Settings()  # type: ignore[call-arg]


def test_defaults_for_a_local_pipeline() -> None:
    s = settings(PIPELINE_ADDR="127.0.0.1:50051")
    assert s.port == 8080
    assert s.pipeline_tls is False
    assert s.pipeline_audience is None
    assert s.pipeline_host == "127.0.0.1"
    assert s.console_listen_host == "0.0.0.0"
    assert s.console_body_idle_timeout_seconds == 30
    assert s.console_body_timeout_seconds == 300


@pytest.mark.parametrize(
    ("host", "normalised"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("[::]", "::"), (" 0.0.0.0 ", "0.0.0.0")],
)
def test_console_listen_host_is_an_ip_address(host: str, normalised: str) -> None:
    assert settings(PIPELINE_ADDR="a:1", CONSOLE_LISTEN_HOST=host).console_listen_host == normalised


def test_cloud_run_shape() -> None:
    s = settings(
        PORT="9000",
        PIPELINE_ADDR="pipeline-abc123-ew.a.run.app:443",
        PIPELINE_TLS="true",
        PIPELINE_AUDIENCE="https://pipeline-abc123-ew.a.run.app",
    )
    assert s.port == 9000
    assert s.pipeline_tls is True
    assert s.pipeline_host == "pipeline-abc123-ew.a.run.app"
    assert s.pipeline_audience == "https://pipeline-abc123-ew.a.run.app"


@pytest.mark.parametrize("addr", ["[::1]:50051", "localhost:1", " 10.0.0.1:65535 "])
def test_accepted_addresses(addr: str) -> None:
    assert settings(PIPELINE_ADDR=addr).pipeline_addr == addr.strip()


def test_ipv6_host_loses_its_brackets() -> None:
    assert settings(PIPELINE_ADDR="[::1]:50051").pipeline_host == "::1"


def test_blank_audience_is_unset() -> None:
    assert settings(PIPELINE_ADDR="a:1", PIPELINE_AUDIENCE="  ").pipeline_audience is None


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"PIPELINE_ADDR": "https://pipeline.a.run.app"},
        {"PIPELINE_ADDR": "pipeline.a.run.app"},
        {"PIPELINE_ADDR": "host:0"},
        {"PIPELINE_ADDR": "host:70000"},
        {"PIPELINE_ADDR": "a:1", "PORT": "http"},
        {"PIPELINE_ADDR": "a:1", "PORT": "0"},
        {"PIPELINE_ADDR": "a:1", "PIPELINE_TLS": "maybe"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_CALL_TIMEOUT_SECONDS": "-1"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_READY_TIMEOUT_SECONDS": "0"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_MAX_UPLOAD_BYTES": "0"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_LISTEN_HOST": "localhost"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_LISTEN_HOST": "127.0.0.1:8080"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_BODY_IDLE_TIMEOUT_SECONDS": "0"},
        {"PIPELINE_ADDR": "a:1", "CONSOLE_BODY_TIMEOUT_SECONDS": "-5"},
    ],
)
def test_nonsense_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        settings(**env)


def test_console_server_exits_naming_the_variable() -> None:
    result = subprocess.run(
        [str(BIN / "console-server")],
        env=clean_env(PORT="8080", PIPELINE_ADDR="https://pipeline.a.run.app"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "PIPELINE_ADDR" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# --- several addresses (one round_robin channel over local pipelines) ------------


@pytest.mark.parametrize(
    ("addr", "bad"),
    [
        ("127.0.0.1:50051,127.0.0.1", "'127.0.0.1' is not host:port"),
        ("127.0.0.1:50051,127.0.0.1:0", "'127.0.0.1:0': port must be 1-65535"),
        ("127.0.0.1:50051,", "an empty entry"),
        ("127.0.0.1:50051,,127.0.0.1:50052", "an empty entry"),
        ("127.0.0.1:50051,[::1]:50052", "'[::1]:50052' is not ipv4 like '127.0.0.1:50051'"),
        ("[::1]:50051,127.0.0.1:50052", "'127.0.0.1:50052' is not ipv6 like '[::1]:50051'"),
        ("127.0.0.1:50051,localhost:50052", "'localhost:50052': with several addresses"),
        ("pipeline.a.run.app:443,127.0.0.1:1", "'pipeline.a.run.app:443': with several"),
        ("[127.0.0.1]:50051,127.0.0.1:50052", "'[127.0.0.1]:50051': IPv6 addresses take brackets"),
        ("127.0.0.1:50051,127.0.0.1:50051", "'127.0.0.1:50051' is listed twice"),
    ],
)
def test_a_bad_entry_in_a_list_is_named(addr: str, bad: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(PIPELINE_ADDR=addr)
    (error,) = caught.value.errors()
    assert error["loc"] == ("pipeline_addr",)
    assert bad in error["msg"]


def test_several_addresses_with_tls_are_refused_saying_why() -> None:
    with pytest.raises(ValidationError) as caught:
        settings(PIPELINE_ADDR="a.run.app:443,b.run.app:443", PIPELINE_TLS="true")
    (error,) = caught.value.errors()
    assert error["loc"] == ("pipeline_addr",)
    assert "2 addresses with PIPELINE_TLS=true" in error["msg"]
    assert "Cloud Run's own load balancer" in error["msg"]


@pytest.mark.parametrize(
    ("addr", "target"),
    [
        ("127.0.0.1:50051, 127.0.0.1:50052", "ipv4:127.0.0.1:50051,127.0.0.1:50052"),
        (" [::1]:50051 ,[::1]:50052,[::1]:50053", "ipv6:[::1]:50051,[::1]:50052,[::1]:50053"),
    ],
)
def test_several_addresses_make_one_balanced_target(addr: str, target: str) -> None:
    s = settings(PIPELINE_ADDR=addr)
    assert s.pipeline_target == target
    assert len(s.pipeline_addrs) == target.count(",") + 1
    assert s.pipeline_addr == target.split(":", 1)[1]


@pytest.mark.parametrize("addr", ["127.0.0.1:50051", "localhost:1", "pipeline-abc.a.run.app:443"])
def test_one_address_is_its_own_target(addr: str) -> None:
    s = settings(PIPELINE_ADDR=addr)
    assert s.pipeline_target == addr
    assert s.pipeline_addrs == (addr,)


def test_console_server_exits_naming_the_bad_entry() -> None:
    result = subprocess.run(
        [str(BIN / "console-server")],
        env=clean_env(PORT="8080", PIPELINE_ADDR="127.0.0.1:50051,localhost:50052"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "PIPELINE_ADDR" in result.stdout
    assert "localhost:50052" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
