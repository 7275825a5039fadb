"""Jurisdiction from LRN / called NPA-NXX and the calling number's state."""

import pytest

from warp_billing.rating.jurisdiction import (
    INDETERMINATE,
    INTERNATIONAL,
    INTERSTATE,
    INTRASTATE,
    JurisdictionRules,
    e164_digits,
)
from warp_billing.rating.numbering import NumberingPlan
from warp_billing.rating.rejections import Reason, Rejection

RULES = JurisdictionRules(NumberingPlan.embedded())

NY_1, NY_2 = "+12125551234", "+15185550000"   # 212 Manhattan, 518 Albany
NJ, IL = "+12015550123", "+13125550000"
TORONTO, KINGSTON, LONDON = "+14165550000", "+18765550000", "+442071234567"


@pytest.mark.parametrize(
    "calling, called, lrn, expected",
    [
        (IL, NY_1, None, INTERSTATE),
        (NY_2, NY_1, None, INTRASTATE),
        (NY_1, NY_1, None, INTRASTATE),
        (None, NY_1, None, INDETERMINATE),
        ("", NY_1, None, INDETERMINATE),
        ("anonymous", NY_1, None, INDETERMINATE),
        ("+1212", NY_1, None, INDETERMINATE),             # invalid
        ("+18005551212", NY_1, None, INDETERMINATE),      # toll-free ANI: non-geographic
        ("+19005551212", NY_1, None, INDETERMINATE),      # premium: non-geographic
        (NY_2, TORONTO, None, INTERNATIONAL),             # Canada is NANP but not the US
        (NY_2, KINGSTON, None, INTERNATIONAL),            # Caribbean +1 country
        (NY_2, LONDON, None, INTERNATIONAL),
        (LONDON, NY_1, None, INTERSTATE),                 # foreign origin cannot be intrastate
        (TORONTO, NY_1, None, INTERSTATE),
    ],
)
def test_classifies_calls(calling, called, lrn, expected):
    assert RULES.classify(calling, called, lrn)[0] == expected


def test_terminating_state_comes_from_the_lrn_when_the_number_is_ported():
    # a New Jersey number ported to a New York switch: NY caller -> intrastate by the LRN
    jurisdiction, digits = RULES.classify(NY_2, NJ, NY_1)
    assert (jurisdiction, digits) == (INTRASTATE, NY_1[1:])
    assert RULES.classify(NY_2, NJ, None) == (INTERSTATE, NJ[1:])


def test_deck_is_matched_on_the_called_number_for_international_even_with_an_lrn():
    assert RULES.classify(NY_2, LONDON, NY_1) == (INTERNATIONAL, LONDON[1:])


def test_toll_free_destination_without_lrn_is_indeterminate_and_matched_on_its_own_digits():
    assert RULES.classify(NY_2, "+18005551212", None) == (INDETERMINATE, "18005551212")


@pytest.mark.parametrize("called", ["12125551234", "+1212555123", "+1012555123", "+12121551234", "+0441234567",
                                    "+44 20 7123", "", "+１２１２５５５１２３４"])
def test_a_bad_called_number_is_rejected_as_invalid_number(called):
    with pytest.raises(Rejection) as rejection:
        RULES.classify(NY_2, called, None)
    assert rejection.value.reason is Reason.INVALID_NUMBER


def test_an_unassigned_npa_is_an_invalid_number():
    with pytest.raises(Rejection, match="not assigned"):
        RULES.classify(NY_2, "+19995551234", None)


def test_a_bad_lrn_is_rejected_rather_than_ignored():
    for lrn in ("+4420712345", "garbage", "+14165550000"):
        with pytest.raises(Rejection) as rejection:
            RULES.classify(NY_2, NY_1, lrn)
        assert rejection.value.reason is Reason.INVALID_NUMBER


def test_territories_are_domestic_by_default_and_international_by_plan_choice():
    puerto_rico = "+17875550000"
    assert RULES.classify(NY_2, puerto_rico, None)[0] == INTERSTATE
    strict = JurisdictionRules(NumberingPlan.embedded(), territories_domestic=False)
    assert strict.classify(NY_2, puerto_rico, None)[0] == INTERNATIONAL


def test_foreign_origin_policy_can_be_indeterminate():
    rules = JurisdictionRules(NumberingPlan.embedded(), foreign_origin=INDETERMINATE)
    assert rules.classify(LONDON, NY_1, None)[0] == INDETERMINATE


def test_a_lerg_file_moves_a_code_to_another_state(tmp_path):
    lerg = tmp_path / "lerg.csv"
    lerg.write_text("npa_nxx,state,lata,ocn\n518555,NJ,224,9206\n", encoding="utf-8")
    rules = JurisdictionRules(NumberingPlan.embedded().with_lerg_csv(lerg))
    assert rules.classify(NJ, "+15185559999", None)[0] == INTRASTATE
    assert rules.classify(NJ, "+15185569999", None)[0] == INTERSTATE


def test_e164_digits_accepts_the_shortest_and_longest_numbers():
    assert e164_digits("+6907290") == "6907290"
    assert e164_digits("+123456789012345") is None  # NANP must be 11 digits
    assert e164_digits("+491234567890123") == "491234567890123"
    assert e164_digits("+4912345678901234") is None
