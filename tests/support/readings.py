"""Hypothesis strategies of readings: what devices may send, every corner of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

from hypothesis import strategies as st

from iotledger.application.readings import RecordReading

offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
no_nul = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(no_nul, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(no_nul, max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(no_nul, max_size=12), json_values, max_size=6)
types = st.text(no_nul, min_size=1, max_size=30).filter(lambda s: s.strip() != "")
values = st.none() | st.floats(allow_nan=False, allow_infinity=False)
keys = st.none() | st.text(min_size=1, max_size=40)

readings = st.builds(
    RecordReading,
    device_id=st.uuids(),
    telemetry_type=types,
    payload=payloads,
    recorded_at=moments,
    by=st.sampled_from(["system", f"device:{uuid4()}", f"user:{uuid4()}"]),
    sensor_id=st.none() | st.uuids(),
    value=values,
    key=keys,
)
