"""The default captioner: a deterministic English sentence from what the tracker and rules know.

Offline and instant; the same event and story always give the same sentence (tests pin the phrasing).
Example: "A person wearing a red top was seen for 50 s, crossed the door line inwards twice and stayed
42 s in the loading zone."
"""

from __future__ import annotations

from collections.abc import Sequence

from daemon.config.models import CaptionerConfig
from daemon.core.events import Event, ObjectStory
from plugins.interfaces import CaptionRequest

CLOTHING = frozenset({"top", "shirt", "t-shirt", "jacket", "coat", "dress", "trousers", "pants", "shorts",
                      "skirt", "hoodie", "jumper", "sweater", "hat", "cap", "helmet", "vest", "bottom"})
PEOPLE = frozenset({"person", "people", "pedestrian", "man", "woman", "child", "worker", "visitor"})
IRREGULAR_PLURALS = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice"}
DIRECTION_WORDS = {"in": "inwards", "out": "outwards"}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
ORDINALS = ("zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


class TemplateCaptioner:
    needs_image = False

    def __init__(self, config: CaptionerConfig) -> None:
        self.config = config

    def caption(self, requests: Sequence[CaptionRequest]) -> list[str]:
        return [describe(request.event, request.story) for request in requests]

    def close(self) -> None:
        pass


def describe(event: Event, story: ObjectStory) -> str:
    subject = _subject(event)
    kind = event.type
    if kind == "new":
        sentence = f"{subject} appeared{_in_zones(event.zones)}{_one_of(event, story)}"
    elif kind == "update":
        sentence = f"{subject} has been in view for {duration(event.duration_s)}"
        if event.zones:
            sentence += f" and is{_in_zones(event.zones)}"
    elif kind == "zone_enter":
        sentence = f"{subject} entered the {event.rule} zone"
    elif kind == "zone_exit":
        stays = [seconds for zone, seconds in story.zone_stays if zone == event.rule]
        after = f" after {duration(stays[-1])}" if stays else ""
        sentence = f"{subject} left the {event.rule} zone{after}"
    elif kind == "loiter":
        stays = [seconds for zone, seconds in story.zone_stays if zone == event.rule]
        sentence = f"{subject} has stayed {duration(stays[-1])} in the {event.rule} zone" if stays else \
            f"{subject} is loitering in the {event.rule} zone"
    elif kind == "line_cross":
        times = sum(1 for c in story.crossings if c.line == event.rule)
        again = f", for the {_ordinal(times)} time" if times > 1 else ""
        sentence = f"{subject} crossed the {event.rule} line {_direction(event.direction, event.direction_name)}{again}"
    elif kind == "end":
        sentence = _summary(subject, event, story)
    else:
        sentence = f"{subject} ({kind})"
    return sentence + "."


def _summary(subject: str, event: Event, story: ObjectStory) -> str:
    clauses = [f"was seen for {duration(event.duration_s)}"]
    clauses += [f"crossed {crossed}" for crossed in _crossings(story)]
    stayed = _stays(story)
    if stayed:
        clauses.append(f"stayed {stayed}")
    sentence = f"{subject} {_join(clauses)}"
    in_view = story.in_view.get(event.label, 1)
    if in_view > 1:
        sentence += f". It was one of {_count(in_view)} {_plural(event.label.lower())} in view"
    return sentence


def _subject(event: Event) -> str:
    """'A red car', 'A person in red', 'A person wearing a red top', 'A person (posture: lying)'."""
    attributes = dict(event.attributes)
    colour = attributes.pop("colour", None) or attributes.pop("color", None)
    noun = event.label.lower()
    extras = []
    if colour and noun in PEOPLE:
        extras.append(f"in {colour}")  # a person's colour is their clothes'
    elif colour:
        noun = f"{colour.lower()} {noun}"
    others = []
    for key, value in sorted(attributes.items()):
        item, sep, suffix = key.rpartition("_")
        if sep and suffix in ("colour", "color"):
            item = item.replace("_", " ")
            extras.append(f"{'wearing' if item in CLOTHING else 'with'} {_article(value)} {value} {item}")
        else:
            others.append(f"{key.replace('_', ' ')}: {value}")
    phrase = " ".join([f"{_article(noun).capitalize()} {noun}", " and ".join(extras)]).strip()
    return f"{phrase} ({', '.join(others)})" if others else phrase


def _in_zones(zones: Sequence[str]) -> str:
    if not zones:
        return ""
    return f" in the {_join(list(zones))} zone{'s' if len(zones) > 1 else ''}"


def _one_of(event: Event, story: ObjectStory) -> str:
    in_view = story.in_view.get(event.label, 1)
    return f", one of {_count(in_view)} {_plural(event.label.lower())} in view" if in_view > 1 else ""


def _direction(direction: str | None, name: str | None) -> str:
    if name:
        return DIRECTION_WORDS.get(name.lower(), f"going {name}")
    return "from side B to side A" if direction == "b_to_a" else "from side A to side B"


def _crossings(story: ObjectStory) -> list[str]:
    """Per line: 'the door line inwards twice and outwards once', 'the gate line from side A to side B'."""
    by_line: dict[str, dict[str, int]] = {}
    for crossing in story.crossings:
        directions = by_line.setdefault(crossing.line, {})
        way = _direction(crossing.direction, crossing.direction_name)
        directions[way] = directions.get(way, 0) + 1
    parts = []
    for line, directions in by_line.items():
        many = len(directions) > 1 or any(n > 1 for n in directions.values())
        ways = [f"{way} {_times(n)}" if many else way for way, n in directions.items()]
        parts.append(f"the {line} line {_join(ways)}")
    return parts


def _stays(story: ObjectStory) -> str:
    """'42 s in the loading zone (loitering) and 3 s in the door zone' (stays in one zone added up)."""
    totals: dict[str, float] = {}
    for zone, seconds in story.zone_stays:
        totals[zone] = totals.get(zone, 0.0) + seconds
    return _join([f"{duration(seconds)} in the {zone} zone{' (loitering)' if zone in story.loitered else ''}"
                  for zone, seconds in totals.items()])


def duration(seconds: float) -> str:
    """'less than a second', '42 s', '1 min 5 s', '2 h 3 min'."""
    if seconds < 1:
        return "less than a second"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        minutes, rest = divmod(whole, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _join(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _count(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{_count(n)} times")


def _ordinal(n: int) -> str:
    if n < len(ORDINALS):
        return ORDINALS[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _plural(noun: str) -> str:
    head, _, last = noun.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last in IRREGULAR_PLURALS:
        return prefix + IRREGULAR_PLURALS[last]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return f"{prefix}{last}es"
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return f"{prefix}{last[:-1]}ies"
    return f"{prefix}{last}s"
