"""Which failures are retried: transient ones only, so a misconfiguration cannot loop forever as "transient"."""

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from consumer.retry import is_data_error, is_transient_database_error, is_transient_kafka_error


def _raised_while_handling(context: BaseException, exc: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    "exc",
    [ConnectionRefusedError(), asyncpg.exceptions.AdminShutdownError("terminating connection"),
     asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle of operation"),
     asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
     asyncpg.exceptions.DeadlockDetectedError("deadlock"), asyncpg.exceptions.SerializationError("retry")],
)
def test_outages_are_transient(exc):
    """The server away, restarting, or asking to retry: waited out."""
    assert is_transient_database_error(exc)


def test_interface_error_from_a_lost_connection_is_transient():
    """asyncpg reports a connection lost inside a transaction as an InterfaceError whose context is the loss."""
    lost = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    leaving = asyncpg.exceptions.InterfaceError("cannot rollback; the underlying connection is closed")
    assert is_transient_database_error(_raised_while_handling(lost, leaving))


@pytest.mark.parametrize(
    "exc",
    [asyncpg.exceptions.ClientConfigurationError("sslmode is not a valid value"),
     asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
     asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
     asyncpg.exceptions.UndefinedTableError("relation does not exist"), ValueError("bug")],
)
def test_misuse_configuration_and_data_are_not_transient(exc):
    """A DSN typo, a programming error or refused data would fail forever: never retried."""
    assert not is_transient_database_error(exc)


def test_client_side_encoding_errors_are_data_errors():
    """A parameter asyncpg cannot encode is the data's fault: the batch is split, not retried."""
    assert is_data_error(asyncpg.exceptions._base.DataError("bad"))


def test_kafka_classification():
    """The broker away or the coordinator moving is transient; a refused commit or an oversized record is not."""
    assert is_transient_kafka_error(kafka_errors.KafkaConnectionError())
    assert is_transient_kafka_error(kafka_errors.NotCoordinatorForGroupError())
    assert not is_transient_kafka_error(kafka_errors.CommitFailedError())
    assert not is_transient_kafka_error(kafka_errors.MessageSizeTooLargeError())
