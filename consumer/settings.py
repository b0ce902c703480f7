"""Every option of the service, in one class, read from `OCPP_*` environment variables.

Each field's description is the text of the README's configuration table; keep the two in step.

A setup that cannot work is refused here, before anything connects, with one message naming the variable to fix
(`ConfigurationError`): credentials the chosen protocol would ignore, a SASL protocol without its mechanism or
credentials, a certificate, key or secret file that does not exist or cannot be read, a password in the DSN
that a URL parser would split. Secrets may come from files (`OCPP_…_FILE`, as container orchestrators mount
them); they are read once, here, and never appear in the settings' repr.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Literal
from urllib.parse import parse_qsl

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# libpq's sslmode values (asyncpg takes the same).
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# DSN parameters that name a file asyncpg will read.
_DSN_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl", "passfile")


class ConfigurationError(ValueError):
    """A setting that cannot work, named as the operator sets it (`variable`); the message never quotes a secret."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OCPP_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port."
    )
    kafka_topics: str = Field("ocpp.events", description="Topics to consume, comma-separated.")
    kafka_group_id: str = Field("ocpp-state", min_length=1, description="Consumer group shared by all replicas.")
    kafka_client_id: str = Field("ocpp-state", description="Client id reported to the broker.")
    kafka_auto_offset_reset: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a group with no committed offset starts."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="Kafka security protocol: `SASL_SSL` (managed Kafka), `SSL` (TLS, with a client certificate "
                    "for mutual TLS), `SASL_PLAINTEXT`, or `PLAINTEXT`.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None,
        description="SASL mechanism, required with a `SASL_*` protocol: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.",
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name, required with a `SASL_*` protocol.")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password, required with a `SASL_*` protocol (or `OCPP_KAFKA_SASL_PASSWORD_FILE`)."
    )
    kafka_sasl_password_file: str | None = Field(
        None, description="File holding the SASL password instead (a mounted secret); one trailing newline is ignored."
    )
    kafka_ssl_cafile: str | None = Field(
        None,
        description="CA file (PEM) that signs the brokers' certificates, with `SSL` or `SASL_SSL`; unset, the "
                    "system's CAs are trusted.",
    )
    kafka_ssl_certfile: str | None = Field(
        None, description="Client certificate (PEM) for mutual TLS, with `SSL` or `SASL_SSL`; may also hold its key."
    )
    kafka_ssl_keyfile: str | None = Field(None, description="Private key (PEM) of the client certificate.")
    kafka_ssl_key_password: SecretStr | None = Field(None, description="Password of an encrypted client key.")
    kafka_ssl_key_password_file: str | None = Field(
        None, description="File holding the client key's password instead; one trailing newline is ignored."
    )
    kafka_fetch_min_bytes: int = Field(
        65_536, ge=1,
        description="A fetch returns once this many bytes are ready, or after OCPP_KAFKA_FETCH_MAX_WAIT_MS: at a "
                    "live rate, fewer and larger fetches and writes for less CPU; `1` returns each record at once. "
                    "At most OCPP_BATCH_MAX_BYTES counts.",
    )
    # At most 10 s: a fetch the broker holds longer than the client's request timeout (aiokafka's 40 s) fails.
    kafka_fetch_max_wait_ms: int = Field(
        50, ge=1, le=10_000,
        description="Longest a fetch waits for OCPP_KAFKA_FETCH_MIN_BYTES: the most it adds to an event's latency.",
    )
    kafka_max_poll_interval_ms: int = Field(
        300_000, ge=1000,
        description="A replica that does not poll for this long is taken out of the group (it polls, paused, "
                    "while a batch waits on the database).",
    )
    dlq_topic: str = Field("ocpp.events.dlq", min_length=1, description="Dead-letter topic for invalid records.")

    database_url: SecretStr = Field(
        SecretStr("postgresql://ocpp:ocpp@127.0.0.1:5433/ocpp"),
        description="PostgreSQL DSN. Over TLS: `?sslmode=verify-full&sslrootcert=/path/ca.pem`. A password in it "
                    "must be percent-encoded (`/` as `%2F`); or leave it out and use `OCPP_DATABASE_PASSWORD`.",
    )
    database_password: SecretStr | None = Field(
        None, description="Password of the DSN's user, as is (no URL encoding); instead of one in the DSN."
    )
    database_password_file: str | None = Field(
        None,
        description="File holding the database password instead (a mounted secret); one trailing newline is ignored.",
    )
    database_pool_size: int = Field(2, ge=1, le=64, description="Connections per replica.")
    database_statement_timeout_seconds: float = Field(
        60, gt=0,
        description="A statement that takes longer (a lock, a dead connection) is cancelled and retried.",
    )
    database_statement_cache_size: int = Field(
        100, ge=0,
        description="Prepared statements cached per connection; `0` behind PgBouncer in transaction or statement "
                    "pooling mode, which cannot keep them.",
    )

    max_clock_skew_seconds: float = Field(
        300, ge=0,
        description="A charger timestamp more than this after `received_at` is replaced by `received_at`; a "
                    "`received_at` more than this after the Kafka record's timestamp, by that timestamp.",
    )
    max_delivery_delay_seconds: float = Field(
        604_800, gt=0,
        description="A charger timestamp this far before `received_at` is a reset clock: `received_at` is used instead.",
    )
    presence_window_seconds: float = Field(
        600, gt=0, le=86_400,
        description="Each valid event shows its charge point connected from its `received_at` for this long "
                    "(charge_point_presence; the uptime report counts a charge point without presence as offline).",
    )
    max_record_bytes: int = Field(
        1_000_000, ge=1024,
        description="Larger record values are dead-lettered as `too_large` (without their value).",
    )

    batch_max_records: int = Field(20000, ge=1, description="Most records fetched for one batch.")
    batch_max_bytes: int = Field(
        4_194_304, ge=1024,
        description="Most bytes fetched per partition at a time; one fetch returns at most twice this. The replica "
                    "holds up to this much per partition it owns, and about 3 copies of a fetch while reading it. "
                    "The batch fetched while another is written takes in more records until it holds this much.",
    )
    # At least 1: a zero wait makes an idle fetch return without ever yielding to the event loop.
    batch_max_wait_ms: int = Field(
        200, ge=1,
        description="How long an idle replica waits for records before its idle work (committing past the last "
                    "record, the probes).",
    )

    retry_max_seconds: float = Field(
        30, gt=0, description="Longest wait between two retries of a database or broker call."
    )
    startup_timeout_seconds: float = Field(
        120, gt=0,
        description="How long start-up waits for PostgreSQL and Kafka to answer before it exits with one line saying which.",
    )
    stall_timeout_seconds: float = Field(
        300, gt=0,
        description="/readyz turns 503 when the replica has lag and has committed nothing for this long (a stall).",
    )
    shutdown_timeout_seconds: float = Field(
        30, gt=0, description="On SIGTERM/SIGINT, how long the in-flight batch may take to finish."
    )
    metrics_port: int = Field(9108, ge=0, le=65535, description="Port of /metrics, /healthz, /readyz; 0 turns it off.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")

    # The secrets as used: from the variable or from its file (read once, at validation).
    _secrets: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("kafka_topics")
    @classmethod
    def _topics_not_empty(cls, value: str) -> str:
        if not [t for t in value.split(",") if t.strip()]:
            raise ValueError("names no topic")
        return value

    @model_validator(mode="after")
    def _check_setup(self) -> Settings:
        """Refuse a setup that cannot work, before anything connects (first problem only: one line to fix)."""
        secrets = {
            name: _secret(self, name) for name in ("kafka_sasl_password", "kafka_ssl_key_password", "database_password")
        }
        _check_kafka(self, secrets)
        _check_database(self, secrets)
        self._secrets.update({name: value for name, value in secrets.items() if value is not None})
        return self

    @property
    def topics(self) -> list[str]:
        return [t.strip() for t in self.kafka_topics.split(",") if t.strip()]

    @property
    def kafka_password(self) -> str | None:
        """The SASL password, from OCPP_KAFKA_SASL_PASSWORD or its file."""
        return self._secrets.get("kafka_sasl_password")

    @property
    def kafka_key_password(self) -> str | None:
        """The client key's password, from OCPP_KAFKA_SSL_KEY_PASSWORD or its file."""
        return self._secrets.get("kafka_ssl_key_password")

    @property
    def database_password_value(self) -> str | None:
        """The database password given apart from the DSN (OCPP_DATABASE_PASSWORD or its file), if any."""
        return self._secrets.get("database_password")

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")


def _env(name: str) -> str:
    return f"OCPP_{name.upper()}"


def _secret(s: Settings, name: str) -> str | None:
    """A secret from its variable or from the file its `_FILE` variable names; both at once is a mistake."""
    value: SecretStr | None = getattr(s, name)
    path: str | None = getattr(s, f"{name}_file")
    if path is None:
        return None if value is None else value.get_secret_value()
    if value is not None:
        raise ConfigurationError(_env(f"{name}_file"), f"set either {_env(name)} or {_env(name + '_file')}, not both")
    text = _read_text(_env(f"{name}_file"), path)
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not text:
        raise ConfigurationError(_env(f"{name}_file"), f"{path} is empty")
    return text


def _read_text(variable: str, path: str) -> str:
    if not path:
        raise ConfigurationError(variable, "names no file: name one, or unset the variable")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as exc:
        raise ConfigurationError(variable, f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(variable, f"{path} is not UTF-8 text") from None


def _check_readable(variable: str, path: str, *, what: str = "") -> None:
    if not path:
        raise ConfigurationError(variable, f"names no {what}file: name one, or unset the variable")
    try:
        with open(path, "rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigurationError(variable, f"cannot read {what}{path}: {exc.strerror or exc}") from None


def _check_kafka(s: Settings, secrets: dict[str, str | None]) -> None:
    protocol = f"OCPP_KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol}"
    if not s.kafka_sasl:
        for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password", "kafka_sasl_password_file"):
            if getattr(s, name) is not None:
                raise ConfigurationError(
                    _env(name), f"is set but {protocol}, which sends no credentials: use SASL_SSL (or SASL_PLAINTEXT)"
                )
    else:
        if s.kafka_sasl_mechanism is None:
            raise ConfigurationError(
                "OCPP_KAFKA_SASL_MECHANISM", f"{protocol}: say which mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if not s.kafka_sasl_username:
            raise ConfigurationError("OCPP_KAFKA_SASL_USERNAME", f"{protocol}: a SASL user name is needed")
        if secrets["kafka_sasl_password"] is None:
            raise ConfigurationError(
                "OCPP_KAFKA_SASL_PASSWORD",
                f"{protocol}: a SASL password is needed (or OCPP_KAFKA_SASL_PASSWORD_FILE naming a file that holds it)",
            )
    tls_options = (("kafka_ssl_cafile", s.kafka_ssl_cafile), ("kafka_ssl_certfile", s.kafka_ssl_certfile),
                   ("kafka_ssl_keyfile", s.kafka_ssl_keyfile), ("kafka_ssl_key_password", s.kafka_ssl_key_password),
                   ("kafka_ssl_key_password_file", s.kafka_ssl_key_password_file))
    if not s.kafka_tls:
        for name, given in tls_options:
            if given is not None:
                raise ConfigurationError(
                    _env(name), f"is set but {protocol}, which does not use TLS: use SSL or SASL_SSL"
                )
        return
    if s.kafka_ssl_keyfile is not None and s.kafka_ssl_certfile is None:
        raise ConfigurationError(
            "OCPP_KAFKA_SSL_KEYFILE", "is set without OCPP_KAFKA_SSL_CERTFILE, the certificate it belongs to"
        )
    if secrets["kafka_ssl_key_password"] is not None and s.kafka_ssl_certfile is None:
        raise ConfigurationError(
            "OCPP_KAFKA_SSL_KEY_PASSWORD", "is set without OCPP_KAFKA_SSL_CERTFILE and OCPP_KAFKA_SSL_KEYFILE"
        )
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
        if getattr(s, name) is not None:
            _check_readable(_env(name), getattr(s, name))
    # Load them as the clients will, so that a file that is not a certificate, or a key that does not match its
    # certificate or its password, is named now rather than found at the first connection.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if s.kafka_ssl_cafile is not None:
        try:
            context.load_verify_locations(cafile=s.kafka_ssl_cafile)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigurationError(
                "OCPP_KAFKA_SSL_CAFILE", f"{s.kafka_ssl_cafile} holds no usable CA certificate: {_ssl_reason(exc)}"
            ) from None
    if s.kafka_ssl_certfile is not None:
        try:
            context.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile,
                                    password=secrets["kafka_ssl_key_password"] or _no_password)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigurationError(
                "OCPP_KAFKA_SSL_CERTFILE",
                f"cannot load the client certificate {s.kafka_ssl_certfile} with its key "
                f"{s.kafka_ssl_keyfile or '(in the same file)'}: {_ssl_reason(exc)} (a key that does not match, "
                "or an encrypted key without the right OCPP_KAFKA_SSL_KEY_PASSWORD)",
            ) from None


def _no_password() -> str:
    """Asked for only by an encrypted key: refuse at once rather than let OpenSSL prompt on the terminal."""
    raise ValueError("the key is encrypted and no OCPP_KAFKA_SSL_KEY_PASSWORD is set")


def _ssl_reason(exc: Exception) -> str:
    return getattr(exc, "reason", None) or str(exc)


# The user information of a URL ends at the first '/', '?' or '#'; an '@' after that means the password (or the
# user name) holds one of them un-encoded, and a URL parser would cut it there (and might quote the rest).
_AUTHORITY_END = re.compile(r"[/?#]")


def _check_database(s: Settings, secrets: dict[str, str | None]) -> None:
    dsn = s.database_url.get_secret_value()
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise ConfigurationError("OCPP_DATABASE_URL", "must be a URL that starts with postgresql://")
    end = _AUTHORITY_END.search(rest)
    authority = rest[: end.start()] if end else rest
    # asyncpg splits user information from the host at the first '@', so a second one is as bad.
    if ("@" not in authority and "@" in rest) or authority.count("@") > 1:
        raise ConfigurationError(
            "OCPP_DATABASE_URL",
            "the user name or password holds a '/', '?', '#' or '@' that is not percent-encoded (write them as "
            "%2F, %3F, %23, %40); or leave the password out of the URL and set OCPP_DATABASE_PASSWORD or "
            "OCPP_DATABASE_PASSWORD_FILE",
        )
    userinfo = authority.rpartition("@")[0] if "@" in authority else ""
    if re.search(r"%(?![0-9A-Fa-f]{2})", userinfo):
        raise ConfigurationError(
            "OCPP_DATABASE_URL",
            "the user name or password holds a '%' that does not start a %XX escape (write it as %25)",
        )
    if secrets["database_password"] is not None and ":" in userinfo:
        variable = "OCPP_DATABASE_PASSWORD_FILE" if s.database_password_file else "OCPP_DATABASE_PASSWORD"
        raise ConfigurationError(variable, "is set but OCPP_DATABASE_URL holds a password too: keep one")
    query = rest.partition("?")[2].partition("#")[0]
    parameters = dict(parse_qsl(query, keep_blank_values=True))
    if "password" in parameters and secrets["database_password"] is not None:
        raise ConfigurationError(
            "OCPP_DATABASE_PASSWORD", "is set but OCPP_DATABASE_URL holds a password too: keep one"
        )
    mode = parameters.get("sslmode")
    if mode is not None and mode not in _SSL_MODES:
        raise ConfigurationError("OCPP_DATABASE_URL", f"sslmode={mode} is not one of {', '.join(_SSL_MODES)}")
    for name in _DSN_FILES:
        if parameters.get(name) and not (name == "sslrootcert" and parameters[name] == "system"):
            _check_readable("OCPP_DATABASE_URL", os.path.expanduser(parameters[name]), what=f"{name} ")
    verifies = mode in ("verify-ca", "verify-full")
    if verifies and not parameters.get("sslrootcert") and not os.environ.get("PGSSLROOTCERT"):
        if not os.path.exists(os.path.expanduser("~/.postgresql/root.crt")):  # what asyncpg would fall back on
            raise ConfigurationError(
                "OCPP_DATABASE_URL",
                f"sslmode={mode} verifies the server against a CA, and none is given: add sslrootcert=/path/ca.pem "
                "(the CA of the server's certificate) to the URL",
            )
