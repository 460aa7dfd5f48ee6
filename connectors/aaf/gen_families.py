"""Synthetic families: guardians (parents, foster carers, the child-welfare service, tutors).

A family shares its guardians between siblings; separated parents live at two addresses.
"""

from __future__ import annotations

from connectors.aaf import gen_data as d
from connectors.aaf.attrs import record_to_attrs
from connectors.aaf.gen_model import Family, GeneratorConfig, GuardianDraft, SchoolInfo
from connectors.aaf.gen_people import Address, People
from schemas.feed import Guardian


class FamilyFactory:
    def __init__(self, people: People, config: GeneratorConfig) -> None:
        self.people = people
        self.config = config

    def guardian(
        self,
        last: str,
        girl: bool | None,
        code: str,
        address: Address | None,
        forced_fault: str | None = None,
    ) -> GuardianDraft:
        p = self.people
        jointure = str(20_000_000 + p.next_id("guardian"))
        if girl is None:  # a body (child-welfare service), not a person
            first, civility = "Service départemental", None
        else:
            first, civility = p.first_name(girl), ("Mme" if girl else "M.")
        mobile = p.phone("mobile")
        home = p.phone("home") if p.chance(0.4) else None
        work = p.phone("work") if p.chance(0.2) else None
        mail = p.email(first, last) if p.chance(0.6) else None
        addr = address if address is not None else p.address()
        record = Guardian(
            jointure=jointure,
            last_name=last,
            first_name=first,
            civility=civility,
            email=mail[1] if mail else None,
            phone_home=home[1] if home else None,
            phone_mobile=mobile[1],
            phone_work=work[1] if work else None,
            address=addr.street,
            postal_code=addr.postal_code,
            town=addr.town,
            country="FRANCE",
        )
        raw = record_to_attrs(record)
        for name in ("ENTPersonNom", "ENTPersonPrenom"):
            raw[name] = [p.raw_name(x) for x in raw[name]]
        raw["ENTPersRelEleveTelMobile"] = [mobile[0]]
        if home:
            raw["ENTPersonTelPerso"] = [home[0]]
        if work:
            raw["ENTPersRelEleveTelPro"] = [work[0]]
        if mail:
            raw["ENTPersonMail"] = [mail[0]]
        fault = forced_fault
        if fault is None and self.config.faults and p.chance(self.config.fault_rate / 3):
            fault = p.rng.choice(("phone_invalid", "email_invalid"))
        if fault == "phone_invalid":
            raw["ENTPersRelEleveTelMobile"] = ["06 12 34"]
            record = record.model_copy(update={"phone_mobile": None})
        elif fault == "email_invalid":
            raw["ENTPersonMail"] = [f"{jointure}@@exemple.fr"]
            record = record.model_copy(update={"email": None})
        return GuardianDraft(record, raw, [], (fault,) if fault else ())

    def family(self, school: SchoolInfo, forced_fault: str | None = None) -> Family:
        p = self.people
        r = p.rng.random()
        last = p.last_name()
        home = p.address(school.town if p.chance(0.7) else None)
        if r < 0.55:  # parents living together
            mother_last = last if p.chance(0.7) else p.last_name()
            g = [
                self.guardian(mother_last, True, d.MOTHER, home, forced_fault),
                self.guardian(last, False, d.FATHER, home),
            ]
            return Family(last, g, [d.MOTHER, d.FATHER])
        if r < 0.75:  # separated parents: two addresses, sometimes a double-barrelled name
            mother_last = p.last_name()
            g = [
                self.guardian(mother_last, True, d.MOTHER, home, forced_fault),
                self.guardian(last, False, d.FATHER, None),
            ]
            child_last = f"{last}-{mother_last}" if p.chance(0.3) and " " not in last else last
            return Family(child_last, g, [d.MOTHER, d.FATHER])
        if r < 0.92:  # one parent
            girl = p.chance(0.8)
            code = d.MOTHER if girl else d.FATHER
            g = [self.guardian(last, girl, code, home, forced_fault)]
            return Family(last, g, [code])
        if r < 0.96:  # foster carers with delegated authority, and the child-welfare service
            g = [
                self.guardian(p.last_name(), True, d.FOSTER, home, forced_fault),
                self.guardian("AIDE SOCIALE À L'ENFANCE", None, d.CHILD_WELFARE, None),
            ]
            return Family(last, g, [d.FOSTER, d.CHILD_WELFARE])
        g = [self.guardian(p.last_name(), p.chance(0.5), d.TUTOR, home, forced_fault)]
        return Family(last, g, [d.TUTOR])
