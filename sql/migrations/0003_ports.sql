-- Every charger's ports right (docs/tables.md, "Ports"): OCPP 2.x EVSEs with several physical connectors, the two
-- OCPP families on one port, the fault and hardware details, and the roaming view.
--
-- A `connector` row is a charging port: OCPP 1.6 connectorId ≥ 1, or OCPP 2.x evseId ≥ 1. Each physical connector
-- of a 2.x EVSE keeps its own last-writer-wins state in `evse_connector`; the port's status is derived from them.
-- A port reported in both families keeps each family's state and shows the family of its newest status event:
-- 1.6's state is kept in the ocpp16_* columns, 2.x's in evse_connector, and the shown columns (status,
-- error_code, last_updated, status_*) say which in status_family.
--
-- Nothing existing changes value: rows written before this migration keep their columns, with status_family NULL
-- (the family was not recorded). Such a row's state counts as the state of its own version until a newer status
-- event of either family arrives, so the tables stay a function of the events and of what was there.

ALTER TABLE charge_point
    ADD COLUMN ocpp_version    VARCHAR(255),
    ADD COLUMN hardware_serial VARCHAR(255),
    ADD COLUMN boot_reason     VARCHAR(255),
    ADD COLUMN iccid           VARCHAR(255),
    ADD COLUMN imsi            VARCHAR(255);

ALTER TABLE connector
    ADD COLUMN error_info               VARCHAR(255),
    ADD COLUMN vendor_id                VARCHAR(255),
    ADD COLUMN vendor_error_code        VARCHAR(255),
    ADD COLUMN status_family            VARCHAR(8) CHECK (status_family IN ('1.6', '2.x')),
    ADD COLUMN ocpp16_status            VARCHAR(255),
    ADD COLUMN ocpp16_error_code        VARCHAR(255),
    ADD COLUMN ocpp16_error_info        VARCHAR(255),
    ADD COLUMN ocpp16_vendor_id         VARCHAR(255),
    ADD COLUMN ocpp16_vendor_error_code VARCHAR(255),
    ADD COLUMN ocpp16_effective_at      TIMESTAMPTZ,
    ADD COLUMN ocpp16_received_at       TIMESTAMPTZ,
    ADD COLUMN ocpp16_event_id          UUID,
    ADD COLUMN ocpp16_digest            UUID,
    ADD CONSTRAINT connector_ocpp16_version_whole CHECK (
        num_nulls(ocpp16_status, ocpp16_effective_at, ocpp16_received_at, ocpp16_event_id, ocpp16_digest) IN (0, 5));

CREATE TABLE evse_connector (
    charge_point_id    VARCHAR(255) NOT NULL REFERENCES charge_point (serial_number),
    evse_id            INT NOT NULL CHECK (evse_id > 0),
    connector_id       INT NOT NULL CHECK (connector_id >= 0),
    status             VARCHAR(255) NOT NULL,
    last_updated       TIMESTAMPTZ NOT NULL,
    status_received_at TIMESTAMPTZ NOT NULL,
    status_event_id    UUID NOT NULL,
    status_digest      UUID NOT NULL,
    PRIMARY KEY (charge_point_id, evse_id, connector_id)
) WITH (fillfactor = 80);

-- The port precedence, highest first: a port can serve a driver if any of its connectors can.
CREATE FUNCTION ocpp_port_status_rank(status text) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE status WHEN 'OCCUPIED' THEN 5 WHEN 'RESERVED' THEN 4 WHEN 'AVAILABLE' THEN 3
                       WHEN 'FAULTED' THEN 2 WHEN 'UNAVAILABLE' THEN 1 ELSE 0 END
$$;
COMMENT ON FUNCTION ocpp_port_status_rank(text) IS
    'Rank of a 2.x connector status in its port: OCCUPIED > RESERVED > AVAILABLE > FAULTED > UNAVAILABLE (docs/tables.md, "Ports").';

-- Each port's status for roaming partners (OCPI 2.2.1 EVSE status) and for national access points (AFIR).
CREATE VIEW port_roaming_status AS
SELECT charge_point_id, connector_id, ocpi_status,
       ocpi_status NOT IN ('OUTOFORDER', 'INOPERATIVE', 'UNKNOWN') AS afir_operational,
       ocpi_status = 'CHARGING' AS afir_in_use
FROM (
    SELECT charge_point_id, connector_id,
           CASE
               WHEN status = 'AVAILABLE' THEN 'AVAILABLE'
               WHEN status IN ('PREPARING', 'CHARGING', 'SUSPENDED_EV', 'SUSPENDED_EVSE', 'FINISHING', 'OCCUPIED')
                   THEN 'CHARGING'
               WHEN status = 'RESERVED' THEN 'RESERVED'
               WHEN status = 'UNAVAILABLE' THEN 'INOPERATIVE'
               WHEN status = 'FAULTED' THEN 'OUTOFORDER'
               ELSE 'UNKNOWN'
           END AS ocpi_status
    FROM connector
) AS port;

COMMENT ON VIEW port_roaming_status IS
    'Each port (connector row) as roaming partners and access points read it: OCPI 2.2.1 EVSE status and the AFIR pair. See docs/tables.md.';
COMMENT ON COLUMN port_roaming_status.ocpi_status IS
    'OCPI 2.2.1 EVSE status: AVAILABLE, CHARGING (in use: 1.6 PREPARING … FINISHING, 2.x OCCUPIED), RESERVED, INOPERATIVE (UNAVAILABLE), OUTOFORDER (FAULTED), UNKNOWN.';
COMMENT ON COLUMN port_roaming_status.afir_operational IS
    'AFIR "operational": the OCPI status is neither OUTOFORDER, INOPERATIVE nor UNKNOWN.';
COMMENT ON COLUMN port_roaming_status.afir_in_use IS
    'AFIR "in use": the OCPI status is CHARGING.';

COMMENT ON TABLE evse_connector IS
    'One row per physical connector of an OCPP 2.x EVSE that reported a status (StatusNotification or NotifyEvent); last writer wins by (last_updated, status_received_at, status_event_id, status_digest). The EVSE is a port: its connector row is derived from these.';
COMMENT ON COLUMN evse_connector.charge_point_id IS
    'charge_point.serial_number of its charge point.';
COMMENT ON COLUMN evse_connector.evse_id IS
    'The EVSE (OCPP 2.x evseId): the port, connector.connector_id. 1 or more.';
COMMENT ON COLUMN evse_connector.connector_id IS
    'The physical connector within the EVSE (OCPP 2.x connectorId).';
COMMENT ON COLUMN evse_connector.status IS
    'From the winning status event of this connector: AVAILABLE, OCCUPIED, RESERVED, UNAVAILABLE or FAULTED.';
COMMENT ON COLUMN evse_connector.last_updated IS
    'Effective time (UTC) of that event: since when the connector has had this status. First in its version.';
COMMENT ON COLUMN evse_connector.status_received_at IS
    'received_at of that event: second in its version.';
COMMENT ON COLUMN evse_connector.status_event_id IS
    'event_id of that event: third in its version.';
COMMENT ON COLUMN evse_connector.status_digest IS
    'ocpp_content_digest(status): the last tie-break.';

COMMENT ON COLUMN charge_point.ocpp_version IS
    'OCPP version of the winning BootNotification (1.6, 2.0.1, 2.1). NULL: no BootNotification seen yet, or written before migration 0003.';
COMMENT ON COLUMN charge_point.hardware_serial IS
    'Serial number from the winning BootNotification (1.6 chargePointSerialNumber, 2.x chargingStation.serialNumber). NULL: not reported.';
COMMENT ON COLUMN charge_point.boot_reason IS
    'Why it booted (2.x reason, UPPER_SNAKE_CASE: POWER_UP, FIRMWARE_UPDATE, ...), from the winning BootNotification. NULL: not reported (1.6 has none).';
COMMENT ON COLUMN charge_point.iccid IS
    'ICCID of the modem''s SIM card from the winning BootNotification (1.6 iccid, 2.x chargingStation.modem.iccid). NULL: not reported.';
COMMENT ON COLUMN charge_point.imsi IS
    'IMSI of the modem''s SIM card from the winning BootNotification (1.6 imsi, 2.x chargingStation.modem.imsi). NULL: not reported.';
COMMENT ON COLUMN charge_point.boot_digest IS
    'ocpp_content_digest(vendor, model, firmware_version, ocpp_version, hardware_serial, boot_reason, iccid, imsi) of the winning BootNotification (of vendor, model, firmware_version before migration 0003): the last tie-break.';
COMMENT ON COLUMN charge_point.status IS
    'The charge point''s own status, UPPER_SNAKE_CASE: the winning 1.6 connectorId 0 / 2.x evseId 0 StatusNotification, or NotifyEvent ChargingStation AvailabilityState. NULL: none seen yet.';
COMMENT ON COLUMN charge_point.last_updated IS
    'Greatest effective time (UTC) of any event of this charge point, its ports and connectors; an untracked action counts with its received_at. Event time, not the time the row was written.';
COMMENT ON TABLE charge_point IS
    'One row per charge point that ever sent a valid event (tracked or not); state as the events say, last writer wins by (effective time, received_at, event_id, content digest) per value group. See docs/tables.md.';

COMMENT ON TABLE connector IS
    'One row per charging port (1.6 connectorId ≥ 1, 2.x evseId ≥ 1) that ever reported a status. A 2.x port''s status is derived from its evse_connector rows; see docs/tables.md, "Ports".';
COMMENT ON COLUMN connector.connector_id IS
    'The port within the charge point: OCPP 1.6 connectorId, OCPP 2.x evseId; 1 or more.';
COMMENT ON COLUMN connector.status IS
    'The port''s status, UPPER_SNAKE_CASE. 1.6: from its winning StatusNotification. 2.x: the highest of its connectors'' statuses, OCCUPIED > RESERVED > AVAILABLE > FAULTED > UNAVAILABLE. Of the family (status_family) of its newest status event.';
COMMENT ON COLUMN connector.error_code IS
    'From the winning 1.6 StatusNotification, UPPER_SNAKE_CASE. NULL: no error (NoError), or a 2.x port (2.x reports none).';
COMMENT ON COLUMN connector.error_info IS
    '1.6 info (free-form fault detail) of the winning 1.6 StatusNotification. NULL: not reported, or a 2.x port.';
COMMENT ON COLUMN connector.vendor_id IS
    '1.6 vendorId (namespace of vendor_error_code) of the winning 1.6 StatusNotification. NULL: not reported, or a 2.x port.';
COMMENT ON COLUMN connector.vendor_error_code IS
    '1.6 vendorErrorCode (the vendor''s own fault code) of the winning 1.6 StatusNotification. NULL: not reported, or a 2.x port.';
COMMENT ON COLUMN connector.last_updated IS
    'Since when the port has had this status: effective time of the winning 1.6 StatusNotification, or the greatest of its 2.x connectors'' last_updated. First in the port''s version.';
COMMENT ON COLUMN connector.status_received_at IS
    'received_at of the port''s newest status event (of status_family): second in its version. -infinity: written before migration 0002.';
COMMENT ON COLUMN connector.status_event_id IS
    'event_id of the port''s newest status event (of status_family): third in its version.';
COMMENT ON COLUMN connector.status_digest IS
    'Content digest of that event''s values: 1.6 ocpp_content_digest(status, error_code, error_info, vendor_id, vendor_error_code), 2.x ocpp_content_digest(status) (before migration 0003: of status, error_code). The last tie-break.';
COMMENT ON COLUMN connector.status_family IS
    'Which family the shown state comes from: 1.6 or 2.x, the family of the port''s newest status event. NULL: written before migration 0003 (family not recorded).';
COMMENT ON COLUMN connector.ocpp16_status IS
    'The port''s OCPP 1.6 state, kept whichever family is shown: status of its winning 1.6 StatusNotification. NULL: no 1.6 status since migration 0003.';
COMMENT ON COLUMN connector.ocpp16_error_code IS
    'error_code of the winning 1.6 StatusNotification.';
COMMENT ON COLUMN connector.ocpp16_error_info IS
    'info of the winning 1.6 StatusNotification.';
COMMENT ON COLUMN connector.ocpp16_vendor_id IS
    'vendorId of the winning 1.6 StatusNotification.';
COMMENT ON COLUMN connector.ocpp16_vendor_error_code IS
    'vendorErrorCode of the winning 1.6 StatusNotification.';
COMMENT ON COLUMN connector.ocpp16_effective_at IS
    'Effective time of the winning 1.6 StatusNotification: first in the 1.6 version.';
COMMENT ON COLUMN connector.ocpp16_received_at IS
    'received_at of the winning 1.6 StatusNotification: second in the 1.6 version.';
COMMENT ON COLUMN connector.ocpp16_event_id IS
    'event_id of the winning 1.6 StatusNotification: third in the 1.6 version.';
COMMENT ON COLUMN connector.ocpp16_digest IS
    'ocpp_content_digest(status, error_code, error_info, vendor_id, vendor_error_code) of the winning 1.6 StatusNotification: the last tie-break.';
