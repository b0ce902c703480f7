"""`ocpp-consumer`: one entry point for operators (run, migrate) and gateway developers (validate, schema).

Each subcommand imports its module only when chosen, so `validate` and `schema` start fast and need no
broker or database. Exit statuses: 0 success, 1 the work found a problem (invalid records, a failed run),
2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys


def load_settings(**overrides):
    """The settings, or exit 2 with one line per bad variable, named as the operator would set it."""
    from pydantic import ValidationError

    from consumer.settings import ConfigurationError, Settings

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            # A setup that cannot work as a whole (settings.ConfigurationError) names its own variable.
            problem = error.get("ctx", {}).get("error")
            if isinstance(problem, ConfigurationError):
                name, message = problem.variable, problem.message
            else:
                name, message = "OCPP_" + "_".join(str(p) for p in error["loc"]).upper(), error["msg"]
            print(f"ocpp-consumer: configuration error: {name}: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(args: argparse.Namespace) -> int:
    # Until the service installs its own handlers, SIGTERM means "stop before starting": nothing is in hand yet,
    # so exit at once, cleanly, rather than die by the signal while modules are still importing.
    signal.signal(signal.SIGTERM, _exit_before_start)
    from consumer.service import run_service

    return run_service(load_settings())


def _datetime(text: str):
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _roles(args: argparse.Namespace) -> int:
    from consumer.roles import main as roles_main

    return roles_main(args.simulate_args)


def _dlq_replay(args: argparse.Namespace) -> int:
    """Print one line per kind, then a total; exit 0 (nothing to replay is not an error)."""
    import asyncio

    from consumer.replay import replay

    settings = load_settings()
    with _reaching(f"Kafka at {settings.kafka_bootstrap_servers}", LookupError):
        report = asyncio.run(replay(settings, kinds=set(args.kind), since=args.since, dry_run=args.dry_run))
    verb = "would send" if args.dry_run else "sent"
    for kind in sorted(set(args.kind)):
        skipped = report.without_value[kind]
        note = f" ({skipped} without a value, not replayable)" if skipped else ""
        print(f"{kind}: {verb} {report.sent[kind]}{note}")
    print(f"total: {verb} {sum(report.sent.values())}; {report.other_kinds} dead letter(s) of other kinds left alone")
    return 0


def _exit_before_start(signum, frame) -> None:
    raise SystemExit(0)


def _migrate(args: argparse.Namespace) -> int:
    import asyncio

    import asyncpg

    from consumer.clients import database_connect_options, describe_database
    from consumer.migrate import MigrationError, migrate

    settings = load_settings()
    with _reaching(f"PostgreSQL at {describe_database(settings)}", MigrationError):
        try:
            applied = asyncio.run(migrate(settings.database_url.get_secret_value(),
                                          **database_connect_options(settings)))
        except asyncpg.InsufficientPrivilegeError as exc:
            # Typically the least-privilege writer (docs/security.md): changing the schema is the owner's job.
            raise UserError(f"the user of {describe_database(settings)} may not change the schema ({exc}); run "
                            "migrate as the owner of the tables, not as a member of ocpp_writer", status=2) from exc
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


class UserError(Exception):
    """An error the user can fix, reported by `main` as one line: `ocpp-consumer: COMMAND: message`; exit 1, or 2
    for what only configuration fixes (a name that does not resolve, TLS, credentials, privileges)."""

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@contextlib.contextmanager
def _reaching(server: str, *user_errors: type[BaseException]):
    """A failure to connect or log in becomes a UserError naming `server` (password masked by the caller) and the
    cause; `user_errors` (the command's own, such as MigrationError) become UserErrors as they are."""
    try:
        yield
    except user_errors as exc:
        raise UserError(str(exc)) from exc
    except Exception as exc:
        if not _is_connection_error(exc):
            raise
        from consumer.clients import FatalConnectionError, fatal_database_error

        if isinstance(exc, FatalConnectionError):
            fatal = str(exc)
        else:
            fatal = fatal_database_error(exc) if server.startswith("PostgreSQL") else None
        raise UserError(f"cannot reach {server}: {fatal or _cause(exc)}", status=2 if fatal else 1) from exc


def _is_connection_error(exc: BaseException) -> bool:
    """Could not connect or log in (not listening, no such host, refused login, TLS): the user's to fix."""
    import asyncpg
    from aiokafka.errors import KafkaConnectionError

    from consumer.clients import FatalConnectionError

    return isinstance(exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidAuthorizationSpecificationError,
                            asyncpg.InvalidPasswordError, asyncpg.InvalidCatalogNameError,
                            asyncpg.ClientConfigurationError, KafkaConnectionError, TimeoutError,
                            FatalConnectionError))


def _cause(exc: BaseException) -> str:
    text, name = str(exc), type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def _fail(command: str, message: str, *, status: int = 1) -> int:
    """One line on stderr for an error the user can fix; the traceback only with OCPP_LOG_LEVEL=DEBUG."""
    import os
    import traceback

    if os.environ.get("OCPP_LOG_LEVEL", "").upper() == "DEBUG":
        traceback.print_exc()
    print(f"ocpp-consumer: {command}: {message}", file=sys.stderr)
    return status


def _validate(args: argparse.Namespace) -> int:
    from consumer.validate import validate_files

    settings = load_settings()
    return validate_files(args.files, settings=settings, out=sys.stdout)


def _schema(args: argparse.Namespace) -> int:
    import json

    from schemas.envelope import envelope_json_schema

    print(json.dumps(envelope_json_schema(), indent=2))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import logging
    import os

    from consumer.tools.simulate import main as simulate_main

    if os.environ.get("OCPP_LOG_LEVEL", "").upper() != "DEBUG":
        # aiokafka logs each failed connection attempt; the one line below says it all.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with _reaching("Kafka"):
        return simulate_main(args.simulate_args, settings=load_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocpp-consumer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="consume OCPP events into PostgreSQL until SIGTERM/SIGINT")
    p.set_defaults(handler=_run)

    p = sub.add_parser("migrate", help="apply pending database migrations (safe to run from every replica)")
    p.set_defaults(handler=_migrate)

    p = sub.add_parser("validate", help="check JSON-lines envelopes; one JSON verdict per input line")
    p.add_argument("files", nargs="*", help="files of JSON lines (default: standard input; '-' is standard input)")
    p.set_defaults(handler=_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of the event envelope")
    p.set_defaults(handler=_schema)

    # consumer.roles parses its own options (--apply).
    p = sub.add_parser("roles", help="print (or --apply) the SQL of the least-privilege roles", add_help=False)
    p.set_defaults(handler=_roles)

    p = sub.add_parser("dlq", help="work with the dead-letter topic")
    dlq = p.add_subparsers(dest="dlq_command", required=True, metavar="DLQ_COMMAND")
    p = dlq.add_parser("replay", help="re-publish dead letters of a kind to their source topic, after a fix")
    p.add_argument("--kind", action="append", required=True,
                   help="rejection kind to replay (ocpp.error.kind, e.g. database); repeat for several")
    p.add_argument("--since", type=_datetime, help="only dead letters written at or after this RFC 3339 time")
    p.add_argument("--dry-run", action="store_true", help="count what would be sent, send nothing")
    p.set_defaults(handler=_dlq_replay)

    # The simulator parses its own options; argparse's REMAINDER would refuse ones that start with "-".
    p = sub.add_parser("simulate", help="publish a simulated gateway feed (see `simulate --help`)", add_help=False)
    p.set_defaults(handler=_simulate, simulate_args=[])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command in ("simulate", "roles"):
        args.simulate_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.handler(args)
    except UserError as exc:
        command = f"{args.command} {args.dlq_command}" if args.command == "dlq" else args.command
        return _fail(command, str(exc), status=exc.status)


if __name__ == "__main__":
    sys.exit(main())
