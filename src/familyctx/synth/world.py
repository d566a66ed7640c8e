"""Builds households one at a time from a seeded Random: the true families and who knows them.

Shapes (weights are rough, chosen to look like a council's caseload, not measured):
older couples or singles (adult social care heavy); two-parent families; blended families with a
step-parent and half-siblings; single mothers with an absent father recorded elsewhere; grandparents
in the same council or another; unborn children known only by expected date of delivery; families
that moved council (history in the old council, current records in the new one).

Also: twins (same surname, date of birth and address, different given names; truth code TWIN);
children with both parents' names double-barrelled ("Smith-Jones"); and families that moved during
a pregnancy, whose old council still holds the unborn child with an earlier expected date.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from familyctx.councils import DemoCouncil
from familyctx.synth import services
from familyctx.synth.identity import NhsNumberAllocator, birth_date, random_address, random_date
from familyctx.synth.model import Address, AddressSpell, CscEpisode, Household, Presence, TruePerson
from familyctx.synth.pools import NamePools

#: Share of births that are twins (UK: about 1.5% of maternities; a little more so evaluations see them).
TWIN_SHARE = 0.02
#: Share of children, of parents with different surnames, given both ("Smith-Jones").
DOUBLE_BARRELLED_SHARE = 0.25
#: Share of families expecting a child that moved council during the pregnancy.
UNBORN_MOVED_SHARE = 0.3

_ETHNICITIES = (
    "WBRI",
    "WBRI",
    "WBRI",
    "WBRI",
    "WIRI",
    "WOTH",
    "AIND",
    "APKN",
    "ABAN",
    "BAFR",
    "BCRB",
    "MWBC",
    "MWAS",
    "CHNE",
    "OOTH",
)


class HouseholdFactory:
    """Draws households for the selected councils.

    ``councils``: councils being generated (homes are drawn from these); ``all_councils``: every
    demo council (relatives may live in any, their addresses then use that council's postcodes).
    ``as_of``: the reference date ages and open episodes are measured against.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        pools: NamePools,
        councils: Sequence[DemoCouncil],
        all_councils: Sequence[DemoCouncil],
        as_of: dt.date,
        nhs: NhsNumberAllocator,
    ) -> None:
        self.rng = rng
        self.pools = pools
        self.councils = tuple(councils)
        self.all_councils = tuple(all_councils)
        self.as_of = as_of
        self.nhs = nhs
        self._next_truth = 1

    # -- people -------------------------------------------------------------------------------
    def person(
        self,
        sex: str,
        dob: dt.date | None,
        family_name: str | None = None,
        *,
        given: str | None = None,
        ethnicity: str | None = None,
    ) -> TruePerson:
        """A new true person with a fresh truth id and (when any remain) a valid NHS number."""
        rng = self.rng
        truth_id = f"T{self._next_truth:08d}"
        self._next_truth += 1
        if given is None:
            given = rng.choice(self.pools.given_female if sex == "F" else self.pools.given_male)
        return TruePerson(
            truth_id=truth_id,
            given_name=given,
            family_name=family_name or rng.choice(self.pools.surnames),
            sex=sex,
            dob=dob,
            nhs_number=self.nhs.next() if dob is not None else None,
            ethnicity=ethnicity or rng.choice(_ETHNICITIES),
        )

    def _other_council(self, home: DemoCouncil, pool: Sequence[DemoCouncil]) -> DemoCouncil | None:
        others = [c for c in pool if c.gss_code != home.gss_code]
        return self.rng.choice(others) if others else None

    # -- households ---------------------------------------------------------------------------
    def next(self, max_people: int) -> Household:
        """The next household, with at most ``max_people`` members (``max_people`` >= 1)."""
        if max_people < 3 or self.rng.random() < 0.15:
            return self._older(min(max_people, self.rng.choice((1, 2, 2))))
        return self._family(max_people)

    def _older(self, size: int) -> Household:
        rng, as_of = self.rng, self.as_of
        home = rng.choice(self.councils)
        surname = rng.choice(self.pools.surnames)
        first = self.person("F" if rng.random() < 0.6 else "M", birth_date(rng, as_of, 60, 95), surname)
        members = [first]
        rels: list[tuple[TruePerson, TruePerson, str]] = []
        if size == 2:
            partner = self.person("M" if first.sex == "F" else "F", birth_date(rng, as_of, 60, 95), surname)
            members.append(partner)
            rels += [(first, partner, "PARTNER"), (partner, first, "PARTNER")]
        address = random_address(rng, home, self.pools)
        since = random_date(rng, as_of - dt.timedelta(days=365 * 30), as_of - dt.timedelta(days=200))
        presences = []
        for i, m in enumerate(members):
            p = Presence(m, home.gss_code, [AddressSpell(address, since, None)])
            if rng.random() < 0.55:
                p.asc = services.asc_episodes(rng, as_of, older=True)
            if i == 0 and rng.random() < 0.3:
                p.tenancy = services.tenancy(rng, as_of, since, "Tenant")
            presences.append(p)
        return Household(members, rels, presences)

    def _family(self, max_people: int) -> Household:  # noqa: C901 - one family's shape, read top-down
        rng, as_of = self.rng, self.as_of
        home = rng.choice(self.councils)
        moved_from = self._other_council(home, self.councils) if rng.random() < 0.08 else None
        move_date = random_date(rng, as_of - dt.timedelta(days=3 * 365), as_of - dt.timedelta(days=30))

        eldest_age = rng.randrange(0, 18)
        mother_age = eldest_age + rng.randrange(18, 37)
        mother = self.person("F", birth_date(rng, as_of, mother_age, mother_age))
        members = [mother]
        shape = rng.random()
        father = (
            self.person("M", birth_date(rng, as_of, mother_age, mother_age + 8)) if shape < 0.75 else None
        )
        if father is not None and shape < 0.5 and rng.random() < 0.7:
            mother.family_name = father.family_name  # married name
        stepfamily = 0.5 <= shape < 0.75

        n_children = rng.choices((1, 2, 3, 4, 5), weights=(30, 35, 20, 10, 5))[0]
        budget = max_people - 2  # room for mother and a father
        limit = min(n_children, max(1, budget))
        children: list[tuple[TruePerson, TruePerson | None]] = []  # (child, biological father)
        twins: list[tuple[TruePerson, TruePerson]] = []
        absent_father: TruePerson | None = None
        barrelled: dict[str, str | None] = {}  # biological father's truth id -> the children's double name
        age = eldest_age
        bio: TruePerson | None
        while len(children) < limit and age >= 0:
            if father is not None and (not stepfamily or (children and rng.random() < 0.6)):
                bio, surname = father, father.family_name
            else:
                if absent_father is None:
                    absent_father = self.person("M", birth_date(rng, as_of, mother_age, mother_age + 10))
                bio, surname = absent_father, absent_father.family_name
                surname = surname if rng.random() < 0.5 else mother.family_name
            if bio.truth_id not in barrelled:
                barrelled[bio.truth_id] = self._double_barrelled(mother.family_name, bio.family_name)
            surname = barrelled[bio.truth_id] or surname
            child = self.person(rng.choice("FM"), birth_date(rng, as_of, age, age), surname)
            children.append((child, bio))
            if len(children) < limit and rng.random() < TWIN_SHARE:
                twin = self.person(rng.choice("FM"), child.dob, surname)
                while twin.given_name == child.given_name:
                    twin.given_name = rng.choice(
                        self.pools.given_female if twin.sex == "F" else self.pools.given_male
                    )
                twin.ethnicity = child.ethnicity
                children.append((twin, bio))
                twins.append((child, twin))
            age -= rng.randrange(1, 5)
        if father is not None:
            members.append(father)
        members += [c for c, _ in children]
        relatives_elsewhere: list[tuple[TruePerson, DemoCouncil]] = []
        true_parentage = list(children)
        if absent_father is not None and len(members) < max_people and rng.random() < 0.5:
            members.append(absent_father)
            where = self._other_council(home, self.all_councils) if rng.random() < 0.4 else home
            relatives_elsewhere.append((absent_father, where or home))
        else:
            children = [(c, b if b is not absent_father else None) for c, b in children]
        # Some fathers bring up their children with a new partner: she is their step-mother and
        # their birth mother lives apart (sometimes in another council).
        birth_mother: TruePerson | None = None
        if father is not None and shape < 0.5 and len(members) < max_people and rng.random() < 0.1:
            birth_mother = self.person("F", birth_date(rng, as_of, mother_age, mother_age + 4))
            members.append(birth_mother)
            for child, _ in children:  # a double-barrelled name joins the birth mother's name
                parts = child.family_name.split("-")
                if len(parts) == 2 and mother.family_name in parts and "-" not in birth_mother.family_name:
                    parts[parts.index(mother.family_name)] = birth_mother.family_name
                    child.family_name = "-".join(parts)
            where = self._other_council(home, self.all_councils) if rng.random() < 0.4 else home
            relatives_elsewhere.append((birth_mother, where or home))

        rels: list[tuple[TruePerson, TruePerson, str]] = []
        if father is not None:
            rels += [(mother, father, "PARTNER"), (father, mother, "PARTNER")]
        for child, bio in children:
            if birth_mother is not None:
                rels += [(child, birth_mother, "MOTHER"), (birth_mother, child, _son_daughter(child))]
                rels.append((child, mother, "STEPMOTHER"))
            else:
                rels += [(child, mother, "MOTHER"), (mother, child, _son_daughter(child))]
            if bio is not None:
                rels += [(child, bio, "FATHER"), (bio, child, _son_daughter(child))]
            if father is not None and bio is not father:
                rels.append((child, father, "STEPFATHER"))
        for i, (a, fa) in enumerate(true_parentage):
            for b, fb in true_parentage[i + 1 :]:
                code = "SIBLING" if fa is fb else "HALFSIBLING"
                rels += [(a, b, code), (b, a, code)]
        for a, b in twins:
            rels += [(a, b, "TWIN"), (b, a, "TWIN")]  # ground truth only: councils hold SIBLING

        unborn = None
        if mother_age < 44 and len(members) < max_people and rng.random() < 0.07:
            unborn = self.person("F", None, mother.family_name, given="Unborn")
            unborn.sex = "U"
            unborn.expected_dob = as_of + dt.timedelta(days=rng.randrange(10, 160))
            members.append(unborn)
            rels.append((unborn, mother, "MOTHER"))
            if father is not None:
                rels.append((unborn, father, "FATHER"))
            if moved_from is None and rng.random() < UNBORN_MOVED_SHARE:
                # moved during the pregnancy: the old council keeps the unborn child, with an earlier EDD
                moved_from = self._other_council(home, self.councils)
                if moved_from is not None:
                    move_date = random_date(
                        rng, as_of - dt.timedelta(days=120), as_of - dt.timedelta(days=14)
                    )

        grandparents: list[TruePerson] = []
        for sex, p in (("F", 0.45), ("M", 0.25)):
            if birth_mother is None and len(members) < max_people and rng.random() < p:
                gp = self.person(
                    sex,
                    birth_date(rng, as_of, mother_age + 18, mother_age + 35),
                    mother.family_name if rng.random() < 0.5 else None,
                )
                grandparents.append(gp)
                members.append(gp)
                rels += [(mother, gp, "MOTHER" if sex == "F" else "FATHER"), (gp, mother, "DAUGHTER")]
                rels += [(c, gp, "GRANDMOTHER" if sex == "F" else "GRANDFATHER") for c, _ in children]
                if unborn is not None:
                    rels.append((unborn, gp, "GRANDMOTHER" if sex == "F" else "GRANDFATHER"))
                where = self._other_council(home, self.all_councils) if rng.random() < 0.35 else home
                relatives_elsewhere.append((gp, where or home))
        if len(grandparents) == 2:
            a, b = grandparents
            rels += [(a, b, "PARTNER"), (b, a, "PARTNER")]

        household_members = [m for m in members if m is mother or m is father or m is unborn]
        household_members += [c for c, _ in children]
        level = services.csc_level(rng)
        presences = self._family_presences(
            home,
            moved_from,
            move_date,
            household_members,
            relatives_elsewhere,
            level,
            mother,
            father,
        )
        return Household(members, rels, presences)

    def _family_presences(
        self,
        home: DemoCouncil,
        moved_from: DemoCouncil | None,
        move_date: dt.date,
        household: list[TruePerson],
        relatives: list[tuple[TruePerson, DemoCouncil]],
        level: str,
        mother: TruePerson,
        father: TruePerson | None,
    ) -> list[Presence]:
        rng, as_of = self.rng, self.as_of
        selected = {c.gss_code for c in self.councils}
        current = random_address(rng, home, self.pools)
        since = move_date if moved_from else random_date(rng, as_of - dt.timedelta(days=12 * 365), move_date)
        presences: list[Presence] = []
        tenancy = services.tenancy(rng, as_of, since, "Tenant") if rng.random() < 0.35 else None
        for m in household:
            moved_in = since if m.dob is None else max(since, m.dob)
            p = Presence(m, home.gss_code, [AddressSpell(current, moved_in, None)])
            adult = m.dob is not None and (as_of - m.dob).days >= 18 * 365
            if m.expected_dob is not None or not adult:
                p.csc = services.csc_episodes(
                    rng,
                    as_of,
                    level,
                    m.dob or m.expected_dob or as_of,
                    not_before=since if moved_from else None,
                )
            elif rng.random() < (0.08 if m is mother else 0.05):
                p.asc = services.asc_episodes(rng, as_of, older=False)
            if m is mother and tenancy is not None:
                p.tenancy = tenancy
            elif m is father and tenancy is not None and rng.random() < 0.5:
                p.tenancy = services.joint(tenancy)
            presences.append(p)
        if moved_from is not None:
            old = random_address(rng, moved_from, self.pools)
            old_since = random_date(rng, move_date - dt.timedelta(days=8 * 365), move_date)
            stale = rng.random() < 0.25  # the old council never heard they left
            old_level = services.csc_level(rng) if level == "none" else level
            for m in household:
                if m.dob is None and m.expected_dob is not None:
                    if (m.expected_dob - move_date).days < 220:  # pregnancy known before the move
                        presences.append(self._unborn_before_move(m, old, old_since, move_date, stale))
                    continue
                if m.dob is None or m.dob >= move_date:
                    continue  # born after the move: never known to the old council
                spell = AddressSpell(old, max(old_since, m.dob), None if stale else move_date)
                p = Presence(m, moved_from.gss_code, [spell])
                adult = (as_of - m.dob).days >= 18 * 365
                if not adult:
                    p.csc = services.csc_episodes(rng, move_date, old_level, m.dob, close_by=move_date)
                elif m is mother and rng.random() < 0.4:
                    p.tenancy = services.tenancy(rng, move_date, spell.start, "Tenant", close_by=move_date)
                presences.append(p)
        for rel, where in relatives:
            addr = random_address(rng, where, self.pools)
            spell_start = random_date(rng, as_of - dt.timedelta(days=15 * 365), as_of - dt.timedelta(days=60))
            spell = AddressSpell(addr, spell_start, None)
            presences.append(Presence(rel, home.gss_code, [spell]))  # known to the child's council
            if where.gss_code != home.gss_code and where.gss_code in selected:
                own = Presence(rel, where.gss_code, [spell])
                if rng.random() < 0.5:
                    own.asc = services.asc_episodes(
                        rng, as_of, older=rel.dob is not None and (as_of - rel.dob).days > 60 * 365
                    )
                if rng.random() < 0.3:
                    own.tenancy = services.tenancy(rng, as_of, spell_start, "Tenant")
                presences.append(own)
        return presences

    def _unborn_before_move(
        self, unborn: TruePerson, old: Address, old_since: dt.date, move_date: dt.date, stale: bool
    ) -> Presence:
        """The old council's record of a child expected when the family moved: a pre-birth contact and
        the expected date of delivery as it stood then, one to four weeks off the revised one."""
        rng = self.rng
        assert unborn.expected_dob is not None
        shift = rng.randrange(7, 29) * rng.choice((-1, 1))
        known = random_date(rng, max(old_since, move_date - dt.timedelta(days=90)), move_date)
        spell = AddressSpell(old, known, None if stale else move_date)
        p = Presence(unborn, old.gss_code, [spell])
        p.expected_dob = unborn.expected_dob + dt.timedelta(days=shift)
        source = "Health services - Health visitor"
        p.csc = [CscEpisode("contact", known, known, source=source)]
        return p

    def _double_barrelled(self, mother_name: str, father_name: str) -> str | None:
        """Parents' names joined ("Smith-Jones") for a share of children whose parents' names differ;
        None otherwise (either name already double-barrelled, or the same)."""
        if mother_name == father_name or "-" in mother_name + father_name or " " in mother_name + father_name:
            return None
        if self.rng.random() >= DOUBLE_BARRELLED_SHARE:
            return None
        first, second = (mother_name, father_name) if self.rng.random() < 0.5 else (father_name, mother_name)
        return f"{first}-{second}"


def _son_daughter(child: TruePerson) -> str:
    return "DAUGHTER" if child.sex == "F" else "SON"
