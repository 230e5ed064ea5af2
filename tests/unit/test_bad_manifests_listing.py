"""The bad-manifest corpus (tests/integration/bad_manifests.py) is what its listing says, covers
every kind and category, and its known gaps name cases that exist."""

from __future__ import annotations

import re

from image_operator.api.common import DNS_SUBDOMAIN_PATTERN
from tests.integration.bad_manifest_bases import KINDS
from tests.integration.bad_manifest_cases import BAD, LIMIT
from tests.integration.bad_manifest_gaps import KNOWN_GAPS
from tests.integration.bad_manifests import CATEGORIES, LISTING, corpus, listing

# Categories every kind has; the others belong to one kind's fields.
EVERY_KIND = set(CATEGORIES) - {"ranges", "placeholders", "schedules", "sharing"}


def test_the_listing_is_the_generated_corpus() -> None:
    assert LISTING.read_text() == listing(), (
        "bad_manifests.txt is out of date: "
        ".venv/bin/python -m tests.integration.bad_manifests > tests/integration/bad_manifests.txt"
    )


def test_the_corpus_covers_every_kind_and_category() -> None:
    cases = corpus()
    assert len([case for case in cases if case.expect == BAD]) >= 200
    covered = {(case.kind, case.category) for case in cases}
    missing = {(kind, c) for kind in KINDS for c in EVERY_KIND} - covered
    assert not missing
    assert ("Image", "placeholders") in covered
    assert ("ImagePipeline", "schedules") in covered
    assert {case.kind for case in cases if case.expect == LIMIT} == set(KINDS)


def test_every_case_names_the_field_to_look_for_and_a_valid_object() -> None:
    for case in corpus():
        assert bool(case.field) == (case.expect == BAD), case.name
        if not case.patch:
            name = case.object_name
            assert len(name) <= 63 and re.fullmatch(DNS_SUBDOMAIN_PATTERN, name), case.name


def test_every_known_gap_is_a_case() -> None:
    names = {case.name for case in corpus()}
    assert set(KNOWN_GAPS) <= names, set(KNOWN_GAPS) - names
