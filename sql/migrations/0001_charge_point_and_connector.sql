-- The state tables of docs/tables.md. Every value that an event can overwrite carries the version of the event
-- that set it, (effective time, event_id), so an upsert can tell newer from older whatever order events arrive in.
-- fillfactor leaves room on each page so the frequent updates of the same rows stay HOT (no index writes).

CREATE TABLE charge_point (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    serial_number       VARCHAR(255) NOT NULL UNIQUE,
    model               VARCHAR(255),
    vendor              VARCHAR(255),
    firmware_version    VARCHAR(255),
    status              VARCHAR(255),
    last_heartbeat      TIMESTAMPTZ,
    last_updated        TIMESTAMPTZ NOT NULL,
    boot_effective_at   TIMESTAMPTZ,
    boot_event_id       UUID,
    status_effective_at TIMESTAMPTZ,
    status_event_id     UUID,
    CONSTRAINT charge_point_boot_version_whole CHECK ((boot_effective_at IS NULL) = (boot_event_id IS NULL)),
    CONSTRAINT charge_point_status_version_whole CHECK ((status_effective_at IS NULL) = (status_event_id IS NULL))
) WITH (fillfactor = 80);

CREATE TABLE connector (
    -- A function of the key, so replays and rebuilds give the same id: md5 of '<charge_point_id>/<connector_id>'
    -- (UTF-8) read as a UUID. Unambiguous: connector_id is an integer, so the last '/' separates the two.
    -- The writer computes it (consumer/coalesce.py): a generated column cost the database ~4 µs a row per upsert.
    id              UUID PRIMARY KEY,
    charge_point_id VARCHAR(255) NOT NULL REFERENCES charge_point (serial_number),
    connector_id    INT NOT NULL CHECK (connector_id > 0),
    status          VARCHAR(255) NOT NULL,
    error_code      VARCHAR(255),
    last_updated    TIMESTAMPTZ NOT NULL,
    status_event_id UUID NOT NULL,
    CONSTRAINT connector_charge_point_id_connector_id_key UNIQUE (charge_point_id, connector_id)
) WITH (fillfactor = 80);

COMMENT ON TABLE charge_point IS
    'One row per charge point that ever sent a valid event; state as the events say, last writer wins by (effective time, event_id) per value. See docs/tables.md.';
COMMENT ON COLUMN charge_point.id IS
    'Surrogate key. The only column that depends on arrival order (and may have gaps): do not compare it across databases.';
COMMENT ON COLUMN charge_point.serial_number IS
    'The charge point id of the OCPP connection (the Kafka record key). Natural key; connector.charge_point_id refers to it.';
COMMENT ON COLUMN charge_point.model IS
    'From the winning BootNotification (greatest boot_effective_at, boot_event_id). NULL: no BootNotification seen yet.';
COMMENT ON COLUMN charge_point.vendor IS
    'From the winning BootNotification. NULL: no BootNotification seen yet.';
COMMENT ON COLUMN charge_point.firmware_version IS
    'From the winning BootNotification. NULL: no BootNotification seen yet, or the winning one reported no firmware version.';
COMMENT ON COLUMN charge_point.status IS
    'From the winning StatusNotification for connector 0 (the charge point itself), UPPER_SNAKE_CASE. NULL: none seen yet.';
COMMENT ON COLUMN charge_point.last_heartbeat IS
    'Greatest received_at (gateway clock, UTC) of the charge point''s Heartbeats. NULL: no Heartbeat seen yet.';
COMMENT ON COLUMN charge_point.last_updated IS
    'Greatest effective time (UTC) of any event of this charge point or its connectors. Event time, not the time the row was written.';
COMMENT ON COLUMN charge_point.boot_effective_at IS
    'Effective time (UTC) of the BootNotification that set model, vendor and firmware_version. NULL: none seen yet.';
COMMENT ON COLUMN charge_point.boot_event_id IS
    'event_id of that BootNotification; breaks ties between boots with the same effective time.';
COMMENT ON COLUMN charge_point.status_effective_at IS
    'Effective time (UTC) of the connector-0 StatusNotification that set status. NULL: none seen yet.';
COMMENT ON COLUMN charge_point.status_event_id IS
    'event_id of that StatusNotification; breaks ties between statuses with the same effective time.';

COMMENT ON TABLE connector IS
    'One row per (charge point, connector > 0) that ever sent a StatusNotification; last writer wins by (last_updated, status_event_id).';
COMMENT ON COLUMN connector.id IS
    'md5(charge_point_id || ''/'' || connector_id)::uuid: the same for the same connector in every database, replay or rebuild.';
COMMENT ON COLUMN connector.charge_point_id IS
    'charge_point.serial_number of the charge point this connector belongs to.';
COMMENT ON COLUMN connector.connector_id IS
    'Connector number within the charge point (OCPP 1.6 connectorId, 2.0.1 evseId), 1 or more.';
COMMENT ON COLUMN connector.status IS
    'From the winning StatusNotification of this connector, UPPER_SNAKE_CASE (AVAILABLE, CHARGING, FAULTED, ...).';
COMMENT ON COLUMN connector.error_code IS
    'From the same StatusNotification, UPPER_SNAKE_CASE. NULL: no error (NoError), or OCPP 2.0.1, which reports none here.';
COMMENT ON COLUMN connector.last_updated IS
    'Effective time (UTC) of the winning StatusNotification: when the charger says the status began. Event time, not write time.';
COMMENT ON COLUMN connector.status_event_id IS
    'event_id of the winning StatusNotification; breaks ties between statuses with the same effective time.';
