"""The event stream encoder, checked against botocore's own decoder.

botocore's ``EventStreamBuffer`` is what boto3 and the AWS CLI use to read a
SelectObjectContent response: it checks the prelude CRC, the message CRC and
the lengths, so every message we build is fed to it byte by byte and to our
own :func:`~s4d.sql.eventstream.decode`.
"""

from __future__ import annotations

import struct
import zlib

from botocore.eventstream import EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from s4d.sql import eventstream


def botocore_messages(data: bytes, step: int = 7) -> list[tuple[dict[str, str], bytes]]:
    """``data`` decoded by botocore, fed in pieces of ``step`` bytes."""
    buffer = EventStreamBuffer()
    out = []
    for at in range(0, len(data), step):
        buffer.add_data(data[at : at + step])
        for message in buffer:
            out.append((dict(message.headers), message.payload))
    return out


class EncoderTests(SynchronousTestCase):
    """Messages are framed as AWS frames them."""

    def test_records_message_layout(self) -> None:
        """Prelude (total, headers length, CRC), headers, payload, message CRC."""
        message = eventstream.records(b"a,b\n")
        total, header_length = struct.unpack(">II", message[:8])
        self.assertEqual(total, len(message))
        self.assertEqual(struct.unpack(">I", message[8:12])[0], zlib.crc32(message[:8]))
        self.assertEqual(struct.unpack(">I", message[-4:])[0], zlib.crc32(message[:-4]))
        self.assertEqual(message[12 + header_length : -4], b"a,b\n")

    def test_botocore_reads_every_kind(self) -> None:
        """Records, Stats, Progress, Cont, End and an error, as botocore sees them."""
        data = b"".join(
            [
                eventstream.records(b'{"a":1}\n'),
                eventstream.progress(10, 20, 5),
                eventstream.cont(),
                eventstream.stats(100, 200, 8),
                eventstream.end(),
                eventstream.error("CastFailed", "Cannot cast 'x'"),
            ]
        )
        messages = botocore_messages(data)
        self.assertEqual(
            [h.get(":event-type", h.get(":error-code")) for h, _ in messages],
            ["Records", "Progress", "Cont", "Stats", "End", "CastFailed"],
        )
        self.assertEqual(messages[0][0][":content-type"], "application/octet-stream")
        self.assertEqual(messages[3][0][":content-type"], "text/xml")
        self.assertIn(b"<BytesScanned>100</BytesScanned>", messages[3][1])
        self.assertEqual(messages[5][0][":message-type"], "error")
        self.assertEqual(messages[5][0][":error-message"], "Cannot cast 'x'")

    def test_decode_reports_leftover(self) -> None:
        """An incomplete message is left for later, not misread."""
        data = eventstream.records(b"x" * 100) + eventstream.end()
        messages, rest = eventstream.decode(data[:-5])
        self.assertEqual([m.kind for m in messages], ["Records"])
        self.assertEqual(rest, data[len(eventstream.records(b"x" * 100)) : -5])

    def test_corruption_is_detected(self) -> None:
        """A flipped payload bit fails the message CRC."""
        data = bytearray(eventstream.records(b"hello"))
        data[-6] ^= 1
        with self.assertRaises(eventstream.EventStreamError):
            eventstream.decode(bytes(data))

    @given(payload=st.binary(max_size=5000), text=st.text(max_size=300))
    def test_round_trip(self, payload: bytes, text: str) -> None:
        """Any payload and any header text survive both decoders."""
        data = eventstream.records(payload) + eventstream.error("InternalError", text)
        ours, rest = eventstream.decode(data)
        self.assertEqual(rest, b"")
        self.assertEqual(ours[0].payload, payload)
        self.assertEqual(ours[1].headers[":error-message"], text)
        theirs = botocore_messages(data, step=97)
        self.assertEqual(theirs[0][1], payload)
        self.assertEqual(theirs[1][0][":error-message"], text)
