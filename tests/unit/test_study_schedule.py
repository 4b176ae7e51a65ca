"""FSRS scheduling of the study app's questions, on fixed times (fuzzing off, so due times are exact)."""

from datetime import datetime, timedelta, timezone

import pytest

from evaluation.study.schedule import check_card, due_time, make_scheduler, new_card, review

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def scheduler():
    return make_scheduler(fuzz=False)


def test_a_failed_answer_comes_back_sooner_than_a_good_one(scheduler):
    card = new_card(1, T0)
    assert due_time(card) == T0
    again, log = review(scheduler, card, "again", T0)
    good, _ = review(scheduler, card, "good", T0)
    easy, _ = review(scheduler, card, "easy", T0)
    assert due_time(again) == T0 + timedelta(minutes=1)  # FSRS's first learning step
    assert due_time(again) < due_time(good) < due_time(easy)
    assert due_time(easy) - T0 >= timedelta(days=1)  # an easy first answer leaves the learning steps
    assert log["rating"] == 1 and log["card_id"] == 1


def test_good_answers_in_a_row_space_the_reviews_out(scheduler):
    card, now, gaps = new_card(2, T0), T0, []
    for _ in range(5):
        card, _ = review(scheduler, card, "good", now)
        gaps.append(due_time(card) - now)
        now = due_time(card)
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0] and gaps[-1] >= timedelta(days=3)


def test_forgetting_a_reviewed_card_resets_it_to_a_short_interval(scheduler):
    card, now = new_card(3, T0), T0
    for _ in range(4):
        card, _ = review(scheduler, card, "good", now)
        gap, now = due_time(card) - now, due_time(card)
    lapsed, _ = review(scheduler, card, "again", now)
    assert gap >= timedelta(days=2)
    assert due_time(lapsed) - now <= timedelta(minutes=10)  # FSRS's relearning step


def test_unknown_rating_is_refused(scheduler):
    with pytest.raises(ValueError, match="unknown rating 'perfect'"):
        review(scheduler, new_card(4, T0), "perfect", T0)


def test_check_card_names_what_is_wrong():
    assert check_card(new_card(5, T0)) is None
    assert "must be an object" in check_card([1, 2])
    broken = new_card(6, T0)
    del broken["state"]
    assert "is not an FSRS card" in check_card(broken)
    naive = {**new_card(7, T0), "due": "2026-01-05T09:00:00"}
    assert check_card(naive) == "its due time has no time zone"
