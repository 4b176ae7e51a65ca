"""When each question comes back: one FSRS card per learner and question (the `fsrs` package).

The grader's rating (again, hard, good, easy) is the review's rating; FSRS turns the card's history into
its next due time. Cards are kept as FSRS's own JSON (`Card.to_dict`), so a progress export carries them
exactly and another FSRS client could read them.
"""

from __future__ import annotations

from datetime import datetime, timezone

RATING_NAMES = ("again", "hard", "good", "easy")


def make_scheduler(desired_retention: float = 0.9, fuzz: bool = True):
    from fsrs import Scheduler

    return Scheduler(desired_retention=desired_retention, enable_fuzzing=fuzz)


def new_card(card_id: int, now: datetime | None = None) -> dict:
    """A card never reviewed, due now (card_id given so no two cards share one)."""
    from fsrs import Card

    return Card(card_id=card_id, due=now or datetime.now(timezone.utc)).to_dict()


def review(scheduler, card: dict, rating: str, now: datetime | None = None) -> tuple[dict, dict]:
    """(the card after the review, FSRS's review log), both as dicts."""
    from fsrs import Card, Rating

    if rating not in RATING_NAMES:
        raise ValueError(f"unknown rating {rating!r}; expected one of {RATING_NAMES}")
    when = now or datetime.now(timezone.utc)
    after, log = scheduler.review_card(Card.from_dict(card), Rating[rating.capitalize()], review_datetime=when)
    return after.to_dict(), log.to_dict()


def due_time(card: dict) -> datetime:
    return datetime.fromisoformat(card["due"])


def check_card(card) -> str | None:
    """None when `card` is a valid FSRS card dict, else what is wrong with it."""
    from fsrs import Card

    if not isinstance(card, dict):
        return f"must be an object, got {type(card).__name__}"
    try:
        parsed = Card.from_dict(card)
    except (KeyError, TypeError, ValueError) as exc:
        return f"is not an FSRS card ({type(exc).__name__}: {exc})"
    if parsed.due.tzinfo is None:
        return "its due time has no time zone"
    return None
