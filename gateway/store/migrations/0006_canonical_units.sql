-- homewatch schema, version 6: every reading also in its type's canonical unit (issue 16).
--
-- The contract lets a device report some readings in more than one unit (a scale in [lb_av], a
-- thermometer in [degF], a glucose meter in mmol/L). Validation converts each value to its reading
-- type's first unit for the range check (fhir_contract.units); the repository now stores that value
-- beside the value as sent, in the transaction that stores the row, and everything that scores reads
-- only the canonical columns. The value as sent stays in `value`, `unit`, `components` and `resource`.
--
-- `canonical_value`: `value` in the canonical unit (kg, Cel, cm, mm[Hg], mg/dL, or the unit itself when
-- it has no other); `canonical_unit`: that unit; `canonical_components`: a panel's `components` in the
-- canonical unit (the blood-pressure components in mm[Hg]). NULL where the original is NULL (a value
-- the device reported as absent, a reading without components).

-- A TimescaleDB table made by migration 0002 has the columns already (gateway.store.timescale).
ALTER TABLE observations
    ADD COLUMN IF NOT EXISTS canonical_value double precision,
    ADD COLUMN IF NOT EXISTS canonical_unit text,
    ADD COLUMN IF NOT EXISTS canonical_components jsonb;

-- The conversions of fhir_contract.units.CONVERSIONS, for the back-fill below and for writers other
-- than the repository (an import, SQL by hand), which fill the canonical columns themselves with them.
-- tests/gateway/store/test_canonical_columns.py holds these equal to the Python table.
CREATE FUNCTION ucum_canonical_unit(unit text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE unit
        WHEN '[degF]' THEN 'Cel'
        WHEN '[lb_av]' THEN 'kg'
        WHEN '[in_i]' THEN 'cm'
        WHEN 'kPa' THEN 'mm[Hg]'
        WHEN 'mmol/L' THEN 'mg/dL'
        ELSE unit
    END
$$;

CREATE FUNCTION ucum_canonical_value(value double precision, unit text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE unit
        WHEN '[degF]' THEN (value - 32) * (5::double precision / 9)
        WHEN '[lb_av]' THEN value * 0.45359237
        WHEN '[in_i]' THEN value * 2.54
        WHEN 'kPa' THEN value * 7.500617
        WHEN 'mmol/L' THEN value * 18.0156
        ELSE value
    END
$$;

-- Each number of a components object converted (a stored panel's `unit` is its components' unit);
-- anything else in it is kept as it is.
CREATE FUNCTION ucum_canonical_components(components jsonb, unit text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN components IS NULL OR ucum_canonical_unit(unit) IS NOT DISTINCT FROM unit THEN components
        ELSE (
            SELECT coalesce(jsonb_object_agg(c.key, CASE jsonb_typeof(c.value)
                WHEN 'number' THEN to_jsonb(ucum_canonical_value((c.value #>> '{}')::double precision, unit))
                ELSE c.value END), '{}'::jsonb)
            FROM jsonb_each(components) AS c
        )
    END
$$;

-- Back-fill the rows stored before this version, in this migration's transaction: one statement over
-- every partition, which rewrites each row with a unit (docs/storage.md: what that costs a large table).
UPDATE observations SET
    canonical_value = ucum_canonical_value(value, unit),
    canonical_unit = ucum_canonical_unit(unit),
    canonical_components = ucum_canonical_components(components, unit)
WHERE canonical_unit IS NULL AND unit IS NOT NULL;
