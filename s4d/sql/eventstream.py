"""AWS's binary event stream, the framing of a SelectObjectContent response.

A message is a 12-byte prelude (total length, headers length, CRC32 of those
eight bytes), the headers, the payload and a CRC32 of everything before it.
A header is a one-byte name length, the name, a one-byte value type (7: a
string), a two-byte value length and the value. SelectObjectContent sends
``Records`` events (the output, in pieces), ``Stats`` and ``Progress`` (XML
byte counts), ``Cont`` (keep-alive), ``End``, or one error message
(``:message-type: error``) after which nothing follows.

:func:`decode` reads messages back (checking both CRCs); the tests and the
fuzz tests use it to read what :func:`encode` wrote.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

#: The header value type of a string (the only one s4d sends).
STRING = 7
#: Largest payload a client's decoder accepts (botocore refuses more than 16 MiB).
MAX_PAYLOAD = 16 << 20
#: Largest headers block (botocore: 128 KiB).
MAX_HEADERS = 128 << 10

_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


class EventStreamError(ValueError):
    """Bytes that are not a well-formed event stream."""


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
    return (
        bytes((len(raw_name),))
        + raw_name
        + bytes((STRING,))
        + struct.pack(">H", len(raw_value))
        + raw_value
    )


def encode(headers: list[tuple[str, str]], payload: bytes = b"") -> bytes:
    """One message with string ``headers`` and ``payload``, both CRCs computed."""
    block = b"".join(_header(name, value) for name, value in headers)
    if len(block) > MAX_HEADERS or len(payload) > MAX_PAYLOAD:
        raise ValueError("event stream message too large")
    total = _PRELUDE.size + _CRC.size + len(block) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(block))
    head = prelude + _CRC.pack(zlib.crc32(prelude))
    body = head + block + payload
    return body + _CRC.pack(zlib.crc32(body))


def event(event_type: str, payload: bytes = b"", content_type: str | None = None) -> bytes:
    """An event message of ``event_type``."""
    headers = [(":event-type", event_type)]
    if content_type is not None:
        headers.append((":content-type", content_type))
    headers.append((":message-type", "event"))
    return encode(headers, payload)


def records(payload: bytes) -> bytes:
    """A ``Records`` event carrying a piece of the output."""
    return event("Records", payload, "application/octet-stream")


def _counts(root: str, scanned: int, processed: int, returned: int) -> bytes:
    return (
        f"<{root}><BytesScanned>{scanned}</BytesScanned>"
        f"<BytesProcessed>{processed}</BytesProcessed>"
        f"<BytesReturned>{returned}</BytesReturned></{root}>"
    ).encode()


def stats(scanned: int, processed: int, returned: int) -> bytes:
    """The ``Stats`` event sent once, before ``End``."""
    return event("Stats", _counts("Stats", scanned, processed, returned), "text/xml")


def progress(scanned: int, processed: int, returned: int) -> bytes:
    """A ``Progress`` event (sent when the request asked for them)."""
    return event("Progress", _counts("Progress", scanned, processed, returned), "text/xml")


def cont() -> bytes:
    """A ``Cont`` event: a keep-alive during a long scan that returns nothing yet."""
    return event("Cont")


def end() -> bytes:
    """The ``End`` event: the response is complete."""
    return event("End")


def error(code: str, message: str) -> bytes:
    """An error message: the query failed after the response started."""
    message = message.encode("utf-8")[:4096].decode("utf-8", "ignore")
    return encode([(":error-code", code), (":error-message", message), (":message-type", "error")])


@dataclass(frozen=True)
class Message:
    """One decoded message."""

    headers: dict[str, str]
    payload: bytes

    @property
    def kind(self) -> str:
        """The event type, or ``error``."""
        if self.headers.get(":message-type") == "error":
            return "error"
        return self.headers.get(":event-type", "")


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    at = 0
    while at < len(block):
        size = block[at]
        name = block[at + 1 : at + 1 + size]
        at += 1 + size
        if at + 3 > len(block) or block[at] != STRING:
            raise EventStreamError("unsupported header value type")
        (length,) = struct.unpack_from(">H", block, at + 1)
        value = block[at + 3 : at + 3 + length]
        at += 3 + length
        if len(value) != length:
            raise EventStreamError("truncated header")
        headers[name.decode("utf-8")] = value.decode("utf-8")
    return headers


def decode(data: bytes) -> tuple[list[Message], bytes]:
    """The complete messages at the start of ``data`` and the bytes left over."""
    messages: list[Message] = []
    at = 0
    while len(data) - at >= _PRELUDE.size + _CRC.size:
        total, header_length = _PRELUDE.unpack_from(data, at)
        (prelude_crc,) = _CRC.unpack_from(data, at + _PRELUDE.size)
        if zlib.crc32(data[at : at + _PRELUDE.size]) != prelude_crc:
            raise EventStreamError("prelude CRC mismatch")
        if total < 16 + header_length:
            raise EventStreamError("message shorter than its headers")
        if len(data) - at < total:
            break
        body = data[at : at + total - _CRC.size]
        (message_crc,) = _CRC.unpack_from(data, at + total - _CRC.size)
        if zlib.crc32(body) != message_crc:
            raise EventStreamError("message CRC mismatch")
        block = body[12 : 12 + header_length]
        messages.append(Message(_parse_headers(block), body[12 + header_length :]))
        at += total
    return messages, data[at:]
