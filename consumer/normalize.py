"""OCPP enum values → the internal UPPER_SNAKE_CASE vocabulary, as explicit tables.

Explicit on purpose: a CamelCase→snake regex turns "SuspendedEVSE" into "SUSPENDED_E_V_S_E" or
"EVCommunicationError" into "E_V_COMMUNICATION_ERROR", and would silently accept values no version defines.
tests/test_contract_normalize.py checks every value of every enum against the official schemas.
"""

from __future__ import annotations

from schemas.ocpp201 import CONNECTOR_STATUSES

# OCPP 1.6 ChargePointStatus and OCPP 2.x ConnectorStatusEnumType (the two share five values).
STATUS: dict[str, str] = {
    "Available": "AVAILABLE",
    "Preparing": "PREPARING",
    "Charging": "CHARGING",
    "SuspendedEVSE": "SUSPENDED_EVSE",
    "SuspendedEV": "SUSPENDED_EV",
    "Finishing": "FINISHING",
    "Reserved": "RESERVED",
    "Unavailable": "UNAVAILABLE",
    "Faulted": "FAULTED",
    "Occupied": "OCCUPIED",  # 2.x only
}

# OCPP 2.x ConnectorStatusEnumType alone: what a NotifyEvent AvailabilityState may report (its actualValue).
CONNECTOR_STATUS_2X: dict[str, str] = {value: STATUS[value] for value in CONNECTOR_STATUSES}

# OCPP 2.x BootReasonEnumType.
BOOT_REASON: dict[str, str] = {
    "ApplicationReset": "APPLICATION_RESET",
    "FirmwareUpdate": "FIRMWARE_UPDATE",
    "LocalReset": "LOCAL_RESET",
    "PowerUp": "POWER_UP",
    "RemoteReset": "REMOTE_RESET",
    "ScheduledReset": "SCHEDULED_RESET",
    "Triggered": "TRIGGERED",
    "Unknown": "UNKNOWN",
    "Watchdog": "WATCHDOG",
}

# OCPP 1.6 ChargePointErrorCode; NoError means there is no error.
ERROR_CODE: dict[str, str | None] = {
    "ConnectorLockFailure": "CONNECTOR_LOCK_FAILURE",
    "EVCommunicationError": "EV_COMMUNICATION_ERROR",
    "GroundFailure": "GROUND_FAILURE",
    "HighTemperature": "HIGH_TEMPERATURE",
    "InternalError": "INTERNAL_ERROR",
    "LocalListConflict": "LOCAL_LIST_CONFLICT",
    "NoError": None,
    "OtherError": "OTHER_ERROR",
    "OverCurrentFailure": "OVER_CURRENT_FAILURE",
    "PowerMeterFailure": "POWER_METER_FAILURE",
    "PowerSwitchFailure": "POWER_SWITCH_FAILURE",
    "ReaderFailure": "READER_FAILURE",
    "ResetFailure": "RESET_FAILURE",
    "UnderVoltage": "UNDER_VOLTAGE",
    "OverVoltage": "OVER_VOLTAGE",
    "WeakSignal": "WEAK_SIGNAL",
}
