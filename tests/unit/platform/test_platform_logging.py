"""JSON log lines carry service context and extras, never personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from services.platform.observability import configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("intake", "DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_line_is_json_with_service_level_logger_and_extras(log_stream: io.StringIO) -> None:
    logging.getLogger("services.intake.app").info("event accepted", extra={"event_id": "e1", "offset": 7})
    [line] = _lines(log_stream)
    assert line["service"] == "intake"
    assert line["level"] == "INFO"
    assert line["logger"] == "services.intake.app"
    assert line["msg"] == "event accepted"
    assert (line["event_id"], line["offset"]) == ("e1", 7)
    assert line["ts"].endswith("+00:00")


def test_personal_keys_are_dropped_from_extras_at_any_depth(log_stream: io.StringIO) -> None:
    logging.getLogger("t").warning(
        "case stored",
        extra={
            "case_id": "c1",
            "personal": {"email": "jan@example.org"},
            "email": "jan@example.org",
            "citizen_number": "123456782",
            "data": {
                "region": "r",
                "phone": "0612345678",
                "people": [{"birth_date": "1990-01-01", "size": 2}],
            },
        },
    )
    raw = log_stream.getvalue()
    for secret in ("jan@example.org", "123456782", "0612345678", "1990-01-01"):
        assert secret not in raw
    [line] = _lines(log_stream)
    assert line["case_id"] == "c1"
    assert "personal" not in line and "email" not in line and "citizen_number" not in line
    assert line["data"] == {"region": "r", "people": [{"size": 2}]}


def test_personal_keys_are_dropped_from_dict_arguments(log_stream: io.StringIO) -> None:
    logging.getLogger("t").info("payload %s", {"region": "r", "name": "Jan Jansen"})
    assert "Jan Jansen" not in log_stream.getvalue()
    assert "'region': 'r'" in _lines(log_stream)[0]["msg"]


def test_exceptions_are_one_json_line(log_stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("t").exception("failed")
    [line] = _lines(log_stream)
    assert "ValueError: boom" in line["exc"]
