"""Half-configured security is refused before anything connects: one line naming the variable, exit 2. Secrets
come from files as orchestrators mount them, and no secret is in the settings' repr or an error line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from consumer.cli import load_settings
from consumer.clients import database_connect_options, kafka_options
from tests.secure_stack import error_lines, run_command, service_env

SECRET = "pa/ss#wo?rd@50%:x"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """Only what each test sets: not the OCPP_* variables `make test` exports."""
    import os

    for name in [n for n in os.environ if n.startswith("OCPP_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def pem(tmp_path) -> dict[str, Path]:
    """A CA, a certificate it signed and that certificate's key, plain and encrypted (password 'key-pass')."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
            "-out", "ca.pem", "-subj", "/CN=test CA")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=client")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", "client.pem")
    openssl("pkey", "-in", "client.key", "-aes256", "-passout", "pass:key-pass", "-out", "client-encrypted.key")
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    return {"ca": tmp_path / "ca.pem", "client": tmp_path / "client.pem", "garbage": tmp_path / "garbage.pem",
            "client_key": tmp_path / "client.key", "encrypted_key": tmp_path / "client-encrypted.key"}


def _refused(monkeypatch, capsys, **env: str) -> str:
    """load_settings with these variables exits 2 with exactly one line; that line."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings()
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"OCPP_KAFKA_SASL_USERNAME": "u"}, "OCPP_KAFKA_SASL_USERNAME", "PLAINTEXT, which sends no credentials"),
        ({"OCPP_KAFKA_SASL_PASSWORD": SECRET}, "OCPP_KAFKA_SASL_PASSWORD", "sends no credentials"),
        ({"OCPP_KAFKA_SASL_MECHANISM": "PLAIN", "OCPP_KAFKA_SECURITY_PROTOCOL": "SSL"}, "OCPP_KAFKA_SASL_MECHANISM",
         "SSL, which sends no credentials"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "OCPP_KAFKA_SASL_MECHANISM", "say which mechanism"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "OCPP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
         "OCPP_KAFKA_SASL_USERNAME", "a SASL user name is needed"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "OCPP_KAFKA_SASL_MECHANISM": "PLAIN",
          "OCPP_KAFKA_SASL_USERNAME": "u"}, "OCPP_KAFKA_SASL_PASSWORD", "a SASL password is needed"),
        ({"OCPP_KAFKA_SSL_CAFILE": "/etc/hostname"}, "OCPP_KAFKA_SSL_CAFILE", "does not use TLS"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "OCPP_KAFKA_SASL_MECHANISM": "PLAIN",
          "OCPP_KAFKA_SASL_USERNAME": "u", "OCPP_KAFKA_SASL_PASSWORD": SECRET,
          "OCPP_KAFKA_SSL_CERTFILE": "/etc/hostname"}, "OCPP_KAFKA_SSL_CERTFILE", "does not use TLS"),
    ],
)
def test_half_configured_kafka_is_one_line_naming_the_variable(monkeypatch, capsys, env, variable, words):
    line = _refused(monkeypatch, capsys, **env)
    assert line.startswith(f"ocpp-consumer: configuration error: {variable}: ")
    assert words in line and SECRET not in line


def test_files_that_do_not_exist_or_cannot_be_read(monkeypatch, capsys, tmp_path, pem):
    sasl = {"OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "OCPP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "OCPP_KAFKA_SASL_USERNAME": "u"}
    missing = tmp_path / "missing"
    cases = [
        ({**sasl, "OCPP_KAFKA_SASL_PASSWORD_FILE": str(missing)}, "OCPP_KAFKA_SASL_PASSWORD_FILE",
         f"cannot read {missing}: No such file or directory"),
        ({**sasl, "OCPP_KAFKA_SASL_PASSWORD_FILE": str(tmp_path)}, "OCPP_KAFKA_SASL_PASSWORD_FILE",
         f"cannot read {tmp_path}: Is a directory"),
        ({**sasl, "OCPP_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "empty")}, "OCPP_KAFKA_SASL_PASSWORD_FILE",
         "is empty"),
        ({**sasl, "OCPP_KAFKA_SASL_PASSWORD": SECRET, "OCPP_KAFKA_SASL_PASSWORD_FILE": str(pem["ca"])},
         "OCPP_KAFKA_SASL_PASSWORD_FILE", "set either OCPP_KAFKA_SASL_PASSWORD or OCPP_KAFKA_SASL_PASSWORD_FILE"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CAFILE": str(missing)}, "OCPP_KAFKA_SSL_CAFILE",
         f"cannot read {missing}"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CAFILE": str(pem["garbage"])},
         "OCPP_KAFKA_SSL_CAFILE", "holds no usable CA certificate"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CERTFILE": str(pem["client"]),
          "OCPP_KAFKA_SSL_KEYFILE": str(missing)}, "OCPP_KAFKA_SSL_KEYFILE", f"cannot read {missing}"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_KEYFILE": str(pem["client_key"])},
         "OCPP_KAFKA_SSL_KEYFILE", "without OCPP_KAFKA_SSL_CERTFILE"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CERTFILE": str(pem["client"])},
         "OCPP_KAFKA_SSL_CERTFILE", "cannot load the client certificate"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CERTFILE": str(pem["client"]),
          "OCPP_KAFKA_SSL_KEYFILE": str(pem["encrypted_key"])}, "OCPP_KAFKA_SSL_CERTFILE",
         "OCPP_KAFKA_SSL_KEY_PASSWORD"),
        ({"OCPP_KAFKA_SECURITY_PROTOCOL": "SSL", "OCPP_KAFKA_SSL_CERTFILE": str(pem["client"]),
          "OCPP_KAFKA_SSL_KEYFILE": str(pem["encrypted_key"]), "OCPP_KAFKA_SSL_KEY_PASSWORD": "wrong"},
         "OCPP_KAFKA_SSL_CERTFILE", "OCPP_KAFKA_SSL_KEY_PASSWORD"),
        ({"OCPP_DATABASE_PASSWORD_FILE": str(missing)}, "OCPP_DATABASE_PASSWORD_FILE", f"cannot read {missing}"),
        ({"OCPP_DATABASE_URL": f"postgresql://u@h/db?sslmode=verify-full&sslrootcert={missing}"}, "OCPP_DATABASE_URL",
         f"cannot read sslrootcert {missing}: No such file or directory"),
        ({"OCPP_DATABASE_URL": f"postgresql://u@h/db?sslmode=require&sslkey={missing}"}, "OCPP_DATABASE_URL",
         f"cannot read sslkey {missing}"),
    ]
    (tmp_path / "empty").write_text("\n")
    for env, variable, words in cases:
        with monkeypatch.context() as scope:
            line = _refused(scope, capsys, **env)
        assert line.startswith(f"ocpp-consumer: configuration error: {variable}: "), line
        assert words in line, line
        assert SECRET not in line


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        (f"postgresql://u:{SECRET}@127.0.0.1:5432/db", "not percent-encoded"),
        ("postgresql://u:pa%zz@127.0.0.1:5432/db", "does not start a %XX escape"),
        ("postgresql://u:p@127.0.0.1/db?sslmode=verify-full", "add sslrootcert=/path/ca.pem"),
        ("postgresql://u:p@127.0.0.1/db?sslmode=sometimes", "sslmode=sometimes is not one of"),
        ("mysql://u:p@127.0.0.1/db", "must be a URL that starts with postgresql://"),
    ],
)
def test_a_dsn_that_cannot_work_is_refused_without_quoting_it(monkeypatch, capsys, dsn, words, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt to fall back on
    line = _refused(monkeypatch, capsys, OCPP_DATABASE_URL=dsn)
    assert line.startswith("ocpp-consumer: configuration error: OCPP_DATABASE_URL: ") and words in line
    assert "pa/ss" not in line and "rd@50" not in line and "pa%zz" not in line


def test_a_password_in_the_dsn_and_apart_is_refused(monkeypatch, capsys):
    line = _refused(monkeypatch, capsys, OCPP_DATABASE_URL="postgresql://u:p@h/db", OCPP_DATABASE_PASSWORD=SECRET)
    assert line == ("ocpp-consumer: configuration error: OCPP_DATABASE_PASSWORD: is set but OCPP_DATABASE_URL holds "
                    "a password too: keep one")


def test_secrets_from_files_are_used_as_given(monkeypatch, tmp_path, pem):
    """Mounted secret files end in a newline more often than not; the one trailing newline is not the secret's."""
    (tmp_path / "kafka").write_text(SECRET + "\n")
    (tmp_path / "db").write_text(SECRET + "\r\n")
    (tmp_path / "key").write_text("key-pass\n")
    for name, value in {
        "OCPP_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "OCPP_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "OCPP_KAFKA_SASL_USERNAME": "u", "OCPP_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka"),
        "OCPP_KAFKA_SSL_CAFILE": str(pem["ca"]), "OCPP_KAFKA_SSL_CERTFILE": str(pem["client"]),
        "OCPP_KAFKA_SSL_KEYFILE": str(pem["encrypted_key"]),
        "OCPP_KAFKA_SSL_KEY_PASSWORD_FILE": str(tmp_path / "key"),
        "OCPP_DATABASE_URL": "postgresql://u@127.0.0.1:5432/db", "OCPP_DATABASE_PASSWORD_FILE": str(tmp_path / "db"),
        "OCPP_DATABASE_STATEMENT_CACHE_SIZE": "0",
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    options = kafka_options(settings)
    assert options["sasl_plain_password"] == SECRET and options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_context"].check_hostname
    assert database_connect_options(settings) == {"password": SECRET, "statement_cache_size": 0}
    assert settings.kafka_key_password == "key-pass"
    assert SECRET not in repr(settings) and SECRET not in str(settings) and "key-pass" not in repr(settings)


def test_a_configuration_error_from_the_command_is_exit_2_and_one_line():
    """The same from the command an operator runs, and from `migrate` as from `run`."""
    for command in ("run", "migrate"):
        done = run_command(["consumer", command], service_env(OCPP_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
                                                              OCPP_KAFKA_SASL_USERNAME="u"), timeout=60)
        assert done.returncode == 2
        assert error_lines(done.stderr) == [
            "ocpp-consumer: configuration error: OCPP_KAFKA_SASL_MECHANISM: OCPP_KAFKA_SECURITY_PROTOCOL is SASL_SSL: "
            "say which mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
        ]
