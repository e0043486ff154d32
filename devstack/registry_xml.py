"""Single-machine profile only: Eureka's XML form of the same documents as its JSON.

Eureka's JSON is a direct image of its XML: `"@name"` keys are attributes, `"$"` is an element's
text, lists are repeated elements. So one mapping each way covers every document, with one
spelling difference: JSON's `overriddenStatus` is the XML element `overriddenstatus`.
XML is the default answer, as with Eureka (py-eureka-client only reads XML).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

_XML_NAMES = {"overriddenStatus": "overriddenstatus"}
_JSON_NAMES = {xml: json for json, xml in _XML_NAMES.items()}


class BadXml(ValueError):
    """A body that is not the XML document expected."""


def to_xml(root: str, document: dict[str, Any]) -> bytes:
    element = ET.Element(root)
    _fill(element, document)
    return bytes(ET.tostring(element, encoding="UTF-8", xml_declaration=True))


def _fill(element: ET.Element, value: Any) -> None:
    if not isinstance(value, dict):
        element.text = _text(value)
        return
    for key, child in value.items():
        tag = _XML_NAMES.get(str(key), str(key))
        if key == "$":
            element.text = _text(child)
        elif key.startswith("@"):
            element.set(key[1:], _text(child))
        elif isinstance(child, list):
            for item in child:
                _fill(ET.SubElement(element, tag), item)
        else:
            _fill(ET.SubElement(element, tag), child)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def from_xml(body: bytes, root: str) -> dict[str, Any]:
    """The JSON-shaped dict of an XML document whose root element is `root`."""
    try:
        element = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadXml(f"malformed XML: {exc}") from exc
    if element.tag != root:
        raise BadXml(f"expected a <{root}> document, got <{element.tag}>")
    parsed = _read(element)
    return parsed if isinstance(parsed, dict) else {}


def _read(element: ET.Element) -> Any:
    children = list(element)
    attributes = {f"@{name}": value for name, value in element.attrib.items()}
    if not children:
        text = (element.text or "").strip()
        if attributes:
            return {**attributes, "$": text} if text else attributes
        return text or None
    result: dict[str, Any] = dict(attributes)
    for child in children:
        key = _JSON_NAMES.get(child.tag, child.tag)
        value = _read(child)
        if key in result:
            previous = result[key]
            result[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[key] = value
    return result
