"""`ocpp-consumer roles` (also `python -m consumer.roles`): the SQL of the least-privilege roles, printed for an administrator or applied.

Two group roles (sql/queries/roles.sql): `ocpp_writer`, which `ocpp-consumer run` logs in as a member of (read
and write the tables; no DELETE, TRUNCATE, DDL or other schemas), and `ocpp_reader` for analysts (SELECT only).
The owner of the tables runs `migrate`; migration 0004 grants the groups their privileges where the roles exist.

Printed (the default), the SQL is for whoever may create roles — on a managed PostgreSQL the service's user
usually may not. `--apply` runs it with the configured DSN: it creates the roles where they are missing (which
needs CREATEROLE) and grants them their privileges in that database (which needs the tables' owner), so roles
made after migration 0004 ran still get them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from consumer.queries import query

CREATE_GROUP_ROLES = query("create_group_roles")
GRANT_GROUP_ROLES = query("grant_group_roles")
GRANT_PARTITION_MAKER = query("grant_partition_maker")


def roles_sql() -> str:
    """The whole script, commented for the administrator who runs it."""
    return (
        "-- 1. Once per cluster, as a role that may create roles (CREATEROLE):\n"
        f"{CREATE_GROUP_ROLES}\n\n"
        "-- Then one login per user, e.g. for the service and for an analyst:\n"
        "--   CREATE ROLE ocpp_app LOGIN PASSWORD '…' IN ROLE ocpp_writer;\n"
        "--   CREATE ROLE alice LOGIN PASSWORD '…' IN ROLE ocpp_reader;\n\n"
        "-- 2. In the service's database, as the owner of its tables (migration 0004 did this if the roles existed\n"
        "--    when it ran):\n"
        f"{GRANT_GROUP_ROLES}\n\n"
        "-- 3. The same, for the function that makes status_history's monthly partitions (migration 0005):\n"
        f"{GRANT_PARTITION_MAKER}\n"
    )


async def apply_roles(dsn: str, **connect_options) -> None:
    """Create the group roles where missing, then grant them their privileges in the DSN's database."""
    import asyncpg

    conn = await asyncpg.connect(dsn, **connect_options)
    try:
        await conn.execute(CREATE_GROUP_ROLES)
        await conn.execute(GRANT_GROUP_ROLES)
        await conn.execute(GRANT_PARTITION_MAKER)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ocpp-consumer roles", description=__doc__.splitlines()[0])
    parser.add_argument("--apply", action="store_true",
                        help="run it with OCPP_DATABASE_URL instead of printing it (needs CREATEROLE for missing "
                             "roles, and the tables' owner for the grants)")
    args = parser.parse_args(argv)
    if not args.apply:
        print(roles_sql(), end="")
        return 0

    import asyncpg

    from consumer.cli import load_settings
    from consumer.clients import database_connect_options, describe_database

    settings = load_settings()
    try:
        asyncio.run(apply_roles(settings.database_url.get_secret_value(), **database_connect_options(settings)))
    except asyncpg.InsufficientPrivilegeError as exc:
        print(f"ocpp-consumer: roles: the user of {describe_database(settings)} may not do this ({exc}): give the "
              "SQL that `python -m consumer.roles` prints to an administrator (step 1) and to the tables' owner "
              "(step 2)", file=sys.stderr)
        return 2
    print("roles ocpp_writer and ocpp_reader exist and have their privileges in this database")
    return 0


if __name__ == "__main__":
    sys.exit(main())
