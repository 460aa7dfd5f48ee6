"""A directory summary for people: accounts per school and profile, read from the school groups."""

from __future__ import annotations

import shlex
from collections import defaultdict
from dataclasses import dataclass

import ldap3
from rich.console import Console
from rich.table import Table

from connectors.ldap.connection import connection
from entsync.ldap_clients import ldap_params
from entsync.settings import Settings
from sync.entries import source_key

PROFILES = ("pupils", "guardians", "teachers", "staff")


@dataclass(frozen=True)
class SchoolSummary:
    jointure: str
    uai: str
    name: str
    accounts: dict[str, int]


def _first(entry: ldap3.Entry, attribute: str) -> str:
    values = entry.entry_attributes_as_dict.get(attribute) or [""]
    return str(values[0])


def directory_summary(settings: Settings) -> tuple[list[SchoolSummary], dict[str, int]]:
    """Per school: members of its school-wide profile groups; plus people per profile."""
    base = settings.ldap_base_dn
    with connection(ldap_params(settings)) as conn:
        conn.search(
            f"ou=structures,{base}",
            "(objectClass=ENTStructure)",
            attributes=["ENTStructureJointure", "ENTStructureUAI", "ENTStructureNomCourant"],
        )
        schools = {
            e.entry_dn.lower(): (
                source_key(_first(e, "ENTStructureJointure")),
                _first(e, "ENTStructureUAI"),
                _first(e, "ENTStructureNomCourant"),
            )
            for e in conn.entries
        }
        conn.search(
            f"ou=groups,{base}",
            "(&(objectClass=groupOfNames)(entsyncGroupProfile=*)(!(entsyncClassCode=*)))",
            attributes=["entsyncSchool", "entsyncGroupProfile", "member"],
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for e in conn.entries:
            school = _first(e, "entsyncSchool").lower()
            members = e.entry_attributes_as_dict.get("member") or []
            counts[school][_first(e, "entsyncGroupProfile")] = len(members)
        conn.search(f"ou=people,{base}", "(objectClass=ENTPerson)", attributes=["ENTPersonProfils"])
        by_profile: dict[str, int] = defaultdict(int)
        for e in conn.entries:
            for profile in e.entry_attributes_as_dict.get("ENTPersonProfils") or ["?"]:
                by_profile[str(profile)] += 1
    summaries = [
        SchoolSummary(jointure=j, uai=u, name=n, accounts=dict(counts.get(dn, {})))
        for dn, (j, u, n) in sorted(schools.items(), key=lambda kv: kv[1][1])
    ]
    return summaries, dict(by_profile)


def render(summaries: list[SchoolSummary], by_profile: dict[str, int], console: Console) -> None:
    table = Table(title="Accounts per school and profile (school groups)")
    table.add_column("UAI")
    table.add_column("school")
    for profile in PROFILES:
        table.add_column(profile, justify="right")
    for s in summaries:
        table.add_row(s.uai, s.name, *(str(s.accounts.get(p, 0)) for p in PROFILES))
    console.print(table)
    total = ", ".join(f"{k}: {v}" for k, v in sorted(by_profile.items()))
    console.print(f"people in the directory by ENTPersonProfils: {total or 'none'}")


def ldapsearch_command(settings: Settings, password_file: str | None = None) -> str:
    """The command a person can paste to browse the directory (password from a file, not argv)."""
    url, bind_dn, _ = settings.require_ldap()
    auth = f"-y {shlex.quote(password_file)}" if password_file else "-W"
    ca = settings.ldap_tls_ca_file
    return (
        (f"LDAPTLS_CACERT={shlex.quote(str(ca))} " if ca else "")
        + f"ldapsearch -x{' -ZZ' if settings.ldap_starttls else ''} -H {url} "
        f"-D {shlex.quote(bind_dn)} {auth} "
        f"-b ou=people,{settings.ldap_base_dn} '(objectClass=ENTEleve)' "
        "cn ENTPersonLogin ENTEleveINE ENTEleveClasses ENTEleveParents"
    )
