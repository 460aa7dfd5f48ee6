"""Declared encodings of real extracts, and encoding lies (UTF-8 under a Latin declaration)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from connectors.aaf import FileRejected, ScanConfig, collect_records, scan, scan_many
from connectors.aaf.encoding import Utf8LieDetector
from connectors.aaf.prolog import ENCODINGS
from schemas.feed import Category, Pupil, record_key
from tests.unit.aaf_files import pupil, real_file

CONFIG = ScanConfig(reference_date=date(2025, 10, 1))
NAME = "ENT_0310100R_Complet_20251001_Eleve_0000.xml"


def names(path: Path) -> tuple[str, str]:
    record = collect_records([scan(path, config=CONFIG)])[record_key("pupil", "1")]
    assert isinstance(record, Pupil)
    return record.last_name, record.first_name


def test_iso_8859_15_bytes_read_as_iso_8859_15(tmp_path: Path) -> None:
    """Œ is 0xBC and € 0xA4 in ISO-8859-15; Latin-1 would read ¼ and ¤."""
    attrs = pupil("1", ENTPersonNom=["CŒURDEROY"], ENTPersonPrenom=["Zoé"])
    path = real_file(tmp_path, NAME, [(Category.PUPILS, "1", attrs)], "ISO-8859-15")
    assert b"C\xbcURDEROY" in path.read_bytes() and b"Zo\xe9" in path.read_bytes()
    assert names(path) == ("CŒURDEROY", "Zoé")


def test_windows_1252_bytes_read_as_windows_1252(tmp_path: Path) -> None:
    """œ is 0x9C and Œ 0x8C in windows-1252 (C1 controls in Latin-1)."""
    attrs = pupil("1", ENTPersonNom=["LEBŒUF"], ENTPersonPrenom=["Anaïs"])
    path = real_file(tmp_path, NAME, [(Category.PUPILS, "1", attrs)], "windows-1252")
    assert b"LEB\x8cUF" in path.read_bytes() and b"Ana\xefs" in path.read_bytes()
    assert names(path) == ("LEBŒUF", "Anaïs")


@pytest.mark.parametrize("spelling", sorted(set(ENCODINGS) - {"us-ascii", "ascii"}))
def test_every_accepted_spelling_decodes(tmp_path: Path, spelling: str) -> None:
    attrs = pupil("1", ENTPersonNom=["ÉLOÏSE"], ENTPersonPrenom=["Gaëlle"])
    path = real_file(tmp_path, NAME, [(Category.PUPILS, "1", attrs)], spelling)
    assert names(path) == ("ÉLOÏSE", "Gaëlle")


def test_ascii_with_character_references(tmp_path: Path) -> None:
    attrs = pupil("1", ENTPersonNom=["C&#338;UR"], ENTPersonPrenom=["Zo&#233;"])
    path = real_file(tmp_path, NAME, [(Category.PUPILS, "1", attrs)], "US-ASCII")
    path.write_bytes(path.read_bytes().replace(b"&amp;#", b"&#"))
    assert names(path) == ("CŒUR", "Zoé")


@pytest.mark.parametrize("declared", ["ISO-8859-1", "ISO-8859-15", "windows-1252", "latin1"])
def test_utf8_bytes_declared_single_byte_are_refused(tmp_path: Path, declared: str) -> None:
    attrs = pupil("1", ENTPersonNom=["DES CÈDRES"], ENTPersonPrenom=["Léa"])
    body = real_file(tmp_path, "x.xml", [(Category.PUPILS, "1", attrs)], "UTF-8").read_bytes()
    raw = body.split(b"<ficAlimMENESR>\n", 1)[1].removesuffix(b"</ficAlimMENESR>\n")
    path = real_file(tmp_path, NAME, [], declared, raw=raw)
    with pytest.raises(FileRejected, match="but the bytes are UTF-8 text") as caught:
        scan(path, config=CONFIG)
    assert f"declared {ENCODINGS[declared.lower()]}" in caught.value.reason
    assert "CÈDRES" not in str(caught.value) and "C\u00c3" not in str(caught.value)
    report = scan_many([path], config=CONFIG).report
    assert not report.ok and "UTF-8 text" in (report.files[0].refusal or "")


def test_lie_found_far_beyond_the_first_chunk(tmp_path: Path) -> None:
    """The reader streams: the only UTF-8 sequence sits in the last of many records."""
    requests = [
        (Category.PUPILS, str(i), pupil(str(i), ENTPersonPrenom=["Lea"])) for i in range(600)
    ]
    plain = real_file(tmp_path, "x.xml", requests, "UTF-8").read_bytes()
    raw = plain.split(b"<ficAlimMENESR>\n", 1)[1].removesuffix(b"</ficAlimMENESR>\n")
    cut = raw.rfind(b"MARTIN")
    raw = raw[:cut] + "MARTÎN".encode() + raw[cut + 6 :]
    path = real_file(tmp_path, NAME, [], "ISO-8859-1", raw=raw)
    assert path.stat().st_size > 4 * 65536
    with pytest.raises(FileRejected, match="UTF-8 text"):
        scan(path, config=CONFIG)


def test_genuine_latin1_with_accents_is_no_lie(tmp_path: Path) -> None:
    words = ["Hélène", "Gaëlle", "Maëlys", "Noël", "Jérôme", "Françoise", "Chloé", "Inès"]
    requests = [
        (Category.PUPILS, str(i), pupil(str(i), ENTPersonPrenom=[w])) for i, w in enumerate(words)
    ]
    path = real_file(tmp_path, NAME, requests, "ISO-8859-1")
    file_scan = scan(path, config=CONFIG)
    assert file_scan.report.published == len(words)


def test_detector_sequences_cut_between_chunks() -> None:
    lie = Utf8LieDetector("iso-8859-1")
    for chunk in (b"<a>Les C\xc3", b"\xa8dres</a>", b"<b>plain</b>"):
        lie.feed(chunk)
    assert lie.lie()
    genuine = Utf8LieDetector("iso-8859-1")
    for chunk in (b"<a>Les C\xe8dres</a>", b"<b>Caf\xc3\xa9</b>"):
        genuine.feed(chunk)
    assert not genuine.lie()
    truncated = Utf8LieDetector("windows-1252")
    truncated.feed(b"<a>Caf\xc3")
    assert not truncated.lie()  # not UTF-8 as a whole
    ascii_only = Utf8LieDetector("iso-8859-15")
    ascii_only.feed(b"<a>Zo&#233;</a>")
    assert not ascii_only.lie()
    utf8 = Utf8LieDetector("utf-8")
    utf8.feed("Cèdres".encode())
    assert not utf8.lie()
