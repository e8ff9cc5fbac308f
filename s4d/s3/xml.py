"""S3 XML: entity-free, size-capped parsing and compact rendering.

Rendering takes plain Python values: an element is ``(tag, children)`` where
children is a string, a number, a bool, a list of elements, or None (the
element is then left out).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from s4d.errors import S3Error

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_XML_BYTES = 2 << 20

Node = tuple[str, Any]


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#13;")
    )


class Raw(str):
    """Already-rendered XML, inserted as it is (for hot paths such as listings)."""


#: finds a character :func:`escape` would replace (most keys and ETags have none)
needs_escape = re.compile('[&<>"\r]').search


def escape(text: str) -> str:
    """Escape text for an XML element."""
    return _escape(text) if needs_escape(text) else text


def _render(node: Node, out: list[str]) -> None:
    tag, value = node
    if value is None:
        return
    if tag == "" and isinstance(value, Raw):
        out.append(value)
        return
    if isinstance(value, list):
        out.append(f"<{tag}>")
        for child in value:
            _render(child, out)
        out.append(f"</{tag}>")
        return
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = _escape(str(value))
    out.append(f"<{tag}>{text}</{tag}>" if text else f"<{tag}></{tag}>")


def render(root: str, children: list[Node], namespace: str | None = S3_NS) -> bytes:
    """Render a document whose root element is ``root``."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    out.append(f'<{root} xmlns="{namespace}">' if namespace else f"<{root}>")
    for child in children:
        _render(child, out)
    out.append(f"</{root}>")
    # "replace": text echoed from the wire (an error's StringToSign) may hold bytes that were
    # not UTF-8, kept as surrogates; they come out as "?" rather than failing the response
    return "".join(out).encode("utf-8", "replace")


def parse(body: bytes, max_bytes: int = MAX_XML_BYTES) -> Element:
    """Parse a request body; ``MalformedXML`` for anything but plain, small XML."""
    if not body.strip():
        raise S3Error("MalformedXML")
    if len(body) > max_bytes:
        raise S3Error("MalformedXML", "The XML you provided was too large.")
    try:
        root: Element = SafeET.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (SafeET.ParseError, DefusedXmlException, ValueError, LookupError):
        # LookupError: an encoding the declaration names that Python does not know
        raise S3Error("MalformedXML") from None
    _strip_namespaces(root)
    return root


def _strip_namespaces(element: Element) -> None:
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]


def child_text(element: Element, tag: str, default: str | None = None) -> str | None:
    """The text of the first child called ``tag`` (or ``default``)."""
    found = element.find(tag)
    if found is None:
        return default
    return found.text or ""
