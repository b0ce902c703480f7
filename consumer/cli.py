"""`ocpp-consumer`: one entry point for operators (run, migrate, exclusions, history), analysts (report) and
gateway developers (validate, schema).

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


def _date(text: str):
    """A report's or a prune's DATE: that day's UTC midnight, so a period is whole UTC days and means the same
    wherever it is run."""
    from datetime import date, datetime, time, timezone

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _jobs(text: str) -> int:
    """`report --jobs N`: how many slices, connections and server processes; at least one."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of jobs (a whole number, 1 or more)")
    return int(text)


@contextlib.contextmanager
def _database(settings):
    """One connection as the configured user, for the operators' and analysts' commands; the server named in the
    error when it cannot be reached, and a refused privilege said as what to run it as."""
    import asyncpg

    from consumer.clients import describe_database

    try:
        with _reaching(f"PostgreSQL at {describe_database(settings)}"):
            yield
    except asyncpg.InsufficientPrivilegeError as exc:
        raise UserError(f"the user of {describe_database(settings)} may not do this ({exc}); run it as the owner "
                        "of the tables or a role granted the rights (docs/tables.md)", status=2) from exc


def _on_database(settings, work):
    """`await work(conn)` on one connection as the configured user, with _database's error lines."""
    return _on_connections(settings, 1, lambda conns: work(conns[0]))


def _on_connections(settings, count: int, work):
    """`await work(conns)` on `count` connections as the configured user, with _database's error lines."""
    import asyncio
    from contextlib import AsyncExitStack

    import asyncpg

    from consumer.clients import database_connect_options

    async def run():
        async with AsyncExitStack() as stack:
            conns = []
            for _ in range(count):
                conn = await asyncpg.connect(settings.database_url.get_secret_value(),
                                             **database_connect_options(settings))
                stack.push_async_callback(conn.close)
                conns.append(conn)
            return await work(conns)

    with _database(settings):
        return asyncio.run(run())


def _period_problem(start, end) -> str | None:
    if end == start:
        return (f"the period --from {start:%Y-%m-%d} --to {end:%Y-%m-%d} is empty: --to is excluded, so it must "
                "be after --from")
    if end < start:
        return f"the period is reversed: --to {end:%Y-%m-%d} is before --from {start:%Y-%m-%d}"
    return None


def _report(args: argparse.Namespace) -> int:
    """Exactly the report on stdout (nothing else), so that it can be redirected to a file or piped."""
    from consumer.report import DEFAULT_JOBS, write_report

    problem = _period_problem(args.start, args.end)
    if problem:
        raise UserError(problem, status=2)
    jobs = args.jobs or DEFAULT_JOBS
    _on_connections(load_settings(), jobs, lambda conns: write_report(conns, args.report_kind, args.start, args.end,
                                                                      args.as_of, sys.stdout, args.format))
    return 0


def _exclusions_add(args: argparse.Namespace) -> int:
    """Print the new id (what `exclusions remove` takes); a bad window is refused before connecting."""
    from consumer.exclusions import Exclusion, InvalidExclusion, add

    exclusion = Exclusion(args.charge_point, args.connector, args.start, args.end, args.reason, args.note)
    try:
        exclusion.check()
    except InvalidExclusion as exc:
        raise UserError(str(exc), status=2) from None
    new_id, known = _on_database(load_settings(), lambda conn: add(conn, exclusion))
    if not known:
        print(f"ocpp-consumer: exclusions add: note: no charge point {args.charge_point!r} is known yet; the "
              "exclusion is kept and applies once it reports", file=sys.stderr)
    print(new_id)
    return 0


def _exclusions_list(args: argparse.Namespace) -> int:
    from consumer.exclusions import fetch_all, write_list

    write_list(_on_database(load_settings(), fetch_all), sys.stdout)
    return 0


def _exclusions_remove(args: argparse.Namespace) -> int:
    from consumer.exclusions import remove

    if not _on_database(load_settings(), lambda conn: remove(conn, args.id)):
        raise UserError(f"no exclusion with id {args.id} (`ocpp-consumer exclusions list` shows them)")
    print(f"removed exclusion {args.id}")
    return 0


def _history_prune(args: argparse.Namespace) -> int:
    """One line per month dropped, then a summary. A date in the future is refused: it would drop the months
    being written and keep every later event of them out of the history."""
    from datetime import datetime, timezone

    from consumer.history import prune

    if args.before > datetime.now(timezone.utc):
        raise UserError(f"--before {args.before:%Y-%m-%d} is in the future: it would drop the months being "
                        "written; give a date in the past", status=2)
    dropped = _on_database(load_settings(), lambda conn: prune(conn, args.before))
    for name in dropped:
        print(f"dropped {name}")
    print(f"history before {args.before:%Y-%m-%d}: {len(dropped)} month(s) dropped; whole months only, so a "
          "month that the date cuts is kept")
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

    if isinstance(exc, BrokenPipeError):  # our own stdout closed by its reader (`report … | head`), not a server
        return False
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

    p = sub.add_parser("report", help="the uptime report: per-port uptime, or the outage list, for a period")
    reports = p.add_subparsers(dest="report_kind", required=True, metavar="REPORT")
    for kind, text in (("uptime", "per port: observed, outage and excluded minutes, uptime percent, outages"),
                       ("outages", "per outage: port, start, end, minutes, excluded minutes, cause, error codes")):
        p = reports.add_parser(kind, help=text)
        p.add_argument("--from", dest="start", type=_date, required=True, metavar="DATE",
                       help="first day of the period (YYYY-MM-DD, from UTC midnight)")
        p.add_argument("--to", dest="end", type=_date, required=True, metavar="DATE",
                       help="the day after the period (YYYY-MM-DD, UTC midnight; excluded)")
        p.add_argument("--as-of", dest="as_of", type=_datetime, metavar="TIME",
                       help="count only what happened before this RFC 3339 time (default: now)")
        p.add_argument("--format", choices=("csv", "json"), default="csv", help="csv (default) or json")
        p.add_argument("--jobs", type=_jobs, metavar="N",
                       help="compute the report in N slices at once, one connection and one server process each "
                            "(default 2; 1: one query); each busies one of the database's cores")
        p.set_defaults(handler=_report, label=f"report {kind}")

    p = sub.add_parser("exclusions", help="windows in which outages are outside the operator's control")
    exclusions = p.add_subparsers(dest="exclusions_command", required=True, metavar="EXCLUSIONS_COMMAND")
    p = exclusions.add_parser("add", help="add a window; prints its id")
    p.add_argument("--charge-point", required=True, metavar="ID", help="the charge point (serial_number)")
    p.add_argument("--connector", type=int, metavar="N", help="one port (default: the whole charge point)")
    p.add_argument("--from", dest="start", type=_datetime, required=True, metavar="TIME",
                   help="start of the window, RFC 3339 (included)")
    p.add_argument("--to", dest="end", type=_datetime, required=True, metavar="TIME",
                   help="end of the window, RFC 3339 (excluded)")
    p.add_argument("--reason", type=int, required=True, metavar="CODE",
                   help="1 utility interruption, 2 vehicle-caused, 3 scheduled maintenance, 4 vandalism, "
                        "5 natural disaster, 6 outside operating hours")
    p.add_argument("--note", help="free text: ticket, work order, what happened")
    p.set_defaults(handler=_exclusions_add, label="exclusions add")
    p = exclusions.add_parser("list", help="every window, as CSV")
    p.set_defaults(handler=_exclusions_list, label="exclusions list")
    p = exclusions.add_parser("remove", help="remove a window by its id")
    p.add_argument("id", type=int, help="the id `exclusions add` printed (or `exclusions list` shows)")
    p.set_defaults(handler=_exclusions_remove, label="exclusions remove")

    p = sub.add_parser("history", help="the status history's retention")
    history = p.add_subparsers(dest="history_command", required=True, metavar="HISTORY_COMMAND")
    p = history.add_parser("prune", help="drop whole months of status history before a date (as the owner)")
    p.add_argument("--before", type=_date, required=True, metavar="DATE",
                   help="drop the months that end on or before this day (YYYY-MM-DD, UTC midnight)")
    p.set_defaults(handler=_history_prune, label="history prune")

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
        return _fail(getattr(args, "label", command), str(exc), status=exc.status)
    except BrokenPipeError:
        # The reader went away (`report … | head`): nothing is wrong and nothing more is wanted. Point stdout at
        # /dev/null so that Python's final flush does not fail again, and exit as a shell's pipeline would.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
