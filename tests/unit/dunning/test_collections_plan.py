"""The plan's `collections.ladder`: strict like the rest of the plan, documented in contracts.md."""

import re
from pathlib import Path

import pytest
import yaml

from warp_billing.plan import PlanError, parse_plan

BASE = "customer_id: A\ntimezone: UTC\n"
LADDER = ("collections: {ladder: [{after_days: 1, action: remind}, {after_days: 7, action: warn}, "
          "{after_days: 15, action: suspend}, {after_days: 30, action: collections}]}\n")


def parse(text: str):
    return parse_plan(yaml.safe_load(text))


def test_the_issue_ladder_loads_in_order():
    plan = parse(BASE + LADDER)
    assert [(step.after_days, step.action) for step in plan.collections.ladder] == [
        (1, "remind"), (7, "warn"), (15, "suspend"), (30, "collections")]


def test_a_plan_without_collections_chases_nobody():
    assert parse(BASE).collections.ladder == ()


@pytest.mark.parametrize("text, fragment", [
    ("collections: {ladder: [{after_dayz: 1, action: remind}]}",
     "collections.ladder[0].after_dayz: unknown key; did you mean 'after_days'?"),
    ("collections: {ladders: []}", "collections.ladders: unknown key; did you mean 'ladder'?"),
    ("collections: {ladder: [{after_days: 1, action: phone}]}", "collections.ladder[0].action"),
    ("collections: {ladder: [{after_days: -1, action: remind}]}", "collections.ladder[0].after_days"),
    ("collections: {ladder: [{after_days: 7, action: warn}, {after_days: 1, action: remind}]}", "must increase"),
    ("collections: {ladder: [{after_days: 1, action: remind}, {after_days: 7, action: remind}]}",
     "names an action twice"),
    ("collections: {ladder: [{action: remind}]}", "after_days"),
])
def test_bad_ladders_name_the_field(text, fragment):
    with pytest.raises(PlanError) as error:
        parse(BASE + text)
    assert fragment in str(error.value)


def test_the_contract_documents_the_ladder_as_it_parses():
    contracts = (Path(__file__).parents[3] / "docs" / "contracts.md").read_text(encoding="utf-8")
    block = re.search(r"^collections:.*?(?=^```)", contracts, re.S | re.M)
    assert block is not None, "docs/contracts.md section 3 shows no collections example"
    plan = parse(BASE + block.group(0))
    assert [step.action for step in plan.collections.ladder] == ["remind", "warn", "suspend", "collections"]
