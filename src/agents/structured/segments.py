"""Client segments: groups of clients a product can be proposed to, each at least `min_size` strong.

Clients are first grouped by (risk tolerance, horizon band, sophistication), the three attributes
MiFID II target-market rules speak about; horizon bands are short (< 3 years), mid (3 to 7 years
inclusive) and long (> 7 years). A group smaller than `min_size` (50 by default) is merged into the
nearest other segment, smallest first, until every segment has at least `min_size` members.

Distance between two segments is a weighted sum over the ordinal attributes, each measured in
steps of its scale (low < medium < high < very_high; short < mid < long; basic < informed <
advanced):

    distance = 2.0 * |risk steps| + 1.5 * |sophistication steps| + 1.0 * |horizon steps|

Risk tolerance weighs most because it drives suitability most; the horizon least, since an
autocallable's expected life is usually well short of its maturity. Ties go to the larger segment,
then to the first in the order of the scales (low before medium, short before mid...), so the
result is deterministic.

A merged segment keeps the most conservative value of each attribute among its members (the lowest
risk tolerance, the shortest horizon band, the least sophistication), so a target-market rule that
holds for the segment's attributes holds for every member. Two segments that end up with the same
attributes are the same segment and are merged too. The segment id names the attributes
("seg-medium-mid-informed"), and `groups` lists the questionnaire groups it was built from.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from agents.structured.clients import RISK_TOLERANCES, SOPHISTICATIONS, Client, ClientBase
from bus.events.structured import ClientSegment

HorizonBand = Literal["short", "mid", "long"]
HORIZON_BANDS: tuple[HorizonBand, ...] = ("short", "mid", "long")
HORIZON_BAND_TEXT = {"short": "short horizon (< 3y)", "mid": "mid horizon (3-7y)", "long": "long horizon (> 7y)"}
RISK_TEXT = {"low": "low", "medium": "medium", "high": "high", "very_high": "very high"}
SOPHISTICATION_TEXT = {"basic": "basic knowledge", "informed": "informed", "advanced": "advanced"}

DISTANCE_WEIGHTS = {"risk_tolerance": 2.0, "sophistication": 1.5, "horizon_band": 1.0}
DEFAULT_MIN_SIZE = 50

Key = tuple[int, int, int]  # (risk tolerance rank, horizon band rank, sophistication rank)


def horizon_band(horizon_years: float) -> HorizonBand:
    """Short below 3 years, mid from 3 to 7 years inclusive, long above 7 years."""
    if horizon_years < 3.0:
        return "short"
    if horizon_years <= 7.0:
        return "mid"
    return "long"


def segment_key_text(risk_tolerance: str, band: str, sophistication: str) -> str:
    """The attributes as an id fragment, e.g. "medium-mid-informed"."""
    return f"{risk_tolerance}-{band}-{sophistication}"


@dataclass(frozen=True)
class Segment:
    """A client segment: its attributes (the most conservative among its members), members and figures.

    `horizon_years` is the shortest horizon among the members (every member can hold at least that
    long); `median_horizon_years` the typical one. Portfolio figures are in EUR. `jurisdictions`
    lists the members' jurisdictions, most frequent first.
    """

    segment_id: str
    label: str
    members: tuple[str, ...]
    risk_tolerance: str
    horizon_band: HorizonBand
    sophistication: str
    horizon_years: float
    median_horizon_years: float
    median_portfolio: float
    jurisdictions: tuple[str, ...]
    groups: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def merged(self) -> bool:
        """Whether the segment was built from more than one questionnaire group."""
        return len(self.groups) > 1


def _key(client: Client) -> Key:
    return (
        RISK_TOLERANCES.index(client.risk_tolerance),
        HORIZON_BANDS.index(horizon_band(client.horizon_years)),
        SOPHISTICATIONS.index(client.sophistication),
    )


def _key_text(key: Key) -> str:
    return segment_key_text(RISK_TOLERANCES[key[0]], HORIZON_BANDS[key[1]], SOPHISTICATIONS[key[2]])


def segment_distance(a: Key, b: Key) -> float:
    """The weighted ordinal distance between two attribute keys (see the module docstring)."""
    return (
        DISTANCE_WEIGHTS["risk_tolerance"] * abs(a[0] - b[0])
        + DISTANCE_WEIGHTS["horizon_band"] * abs(a[1] - b[1])
        + DISTANCE_WEIGHTS["sophistication"] * abs(a[2] - b[2])
    )


def _conservative(a: Key, b: Key) -> Key:
    return (min(a[0], b[0]), min(a[1], b[1]), min(a[2], b[2]))


@dataclass
class _Draft:
    key: Key
    members: list[Client]
    groups: list[Key]


def _absorb(segments: dict[Key, _Draft], into: _Draft, other: _Draft) -> None:
    """Merge `other` into `into`, give it the conservative attributes, and fold in a segment that now shares them."""
    del segments[other.key]
    del segments[into.key]
    into.members.extend(other.members)
    into.groups.extend(other.groups)
    into.key = _conservative(into.key, other.key)
    twin = segments.pop(into.key, None)
    if twin is not None:
        into.members.extend(twin.members)
        into.groups.extend(twin.groups)
    segments[into.key] = into


def _finish(draft: _Draft) -> Segment:
    members = sorted(draft.members, key=lambda c: c.client_id)
    risk, band, soph = RISK_TOLERANCES[draft.key[0]], HORIZON_BANDS[draft.key[1]], SOPHISTICATIONS[draft.key[2]]
    counts = Counter(c.jurisdiction for c in members)
    horizons = [c.horizon_years for c in members]
    return Segment(
        segment_id=f"seg-{segment_key_text(risk, band, soph)}",
        label=f"{RISK_TEXT[risk]} risk tolerance, {HORIZON_BAND_TEXT[band]}, {SOPHISTICATION_TEXT[soph]}",
        members=tuple(c.client_id for c in members),
        risk_tolerance=risk,
        horizon_band=band,
        sophistication=soph,
        horizon_years=min(horizons),
        median_horizon_years=float(statistics.median(horizons)),
        median_portfolio=float(statistics.median(c.portfolio_size for c in members)),
        jurisdictions=tuple(sorted(counts, key=lambda j: (-counts[j], j))),
        groups=tuple(_key_text(k) for k in sorted(draft.groups)),
    )


def segment_clients(base: ClientBase | Iterable[Client], min_size: int = DEFAULT_MIN_SIZE) -> list[Segment]:
    """Segment a client base into groups of at least `min_size` clients (see the module docstring).

    Every client is in exactly one segment. Segments are returned in the order of their attributes
    (risk tolerance, then horizon band, then sophistication). Raises ValueError when the base has
    fewer than `min_size` clients.
    """
    if min_size < 1:
        raise ValueError(f"min_size: must be at least 1, got {min_size}")
    clients = list(base.clients if isinstance(base, ClientBase) else base)
    if len(clients) < min_size:
        raise ValueError(f"the client base has {len(clients)} clients, fewer than the minimum segment size {min_size}")
    segments: dict[Key, _Draft] = {}
    for client in clients:
        key = _key(client)
        draft = segments.setdefault(key, _Draft(key=key, members=[], groups=[key]))
        draft.members.append(client)
    while True:
        small = [d for d in segments.values() if len(d.members) < min_size]
        if not small:
            break
        smallest = min(small, key=lambda d: (len(d.members), d.key))
        nearest = min(
            (d for d in segments.values() if d is not smallest),
            key=lambda d: (segment_distance(smallest.key, d.key), -len(d.members), d.key),
        )
        _absorb(segments, nearest, smallest)
    return [_finish(segments[key]) for key in sorted(segments)]


def to_event(segment: Segment, note_per_eur: float = 1.0) -> ClientSegment:
    """The segment as the `ClientSegment` of `DistributionPlanned`.

    `note_per_eur` converts the median portfolio into the note's currency (units of the note's
    currency per EUR; 1 for EUR notes). `horizon_years` is the shortest horizon of the members.
    """
    if not note_per_eur > 0:
        raise ValueError(f"note_per_eur: must be positive, got {note_per_eur}")
    return ClientSegment(
        segment_id=segment.segment_id,
        label=segment.label,
        size=segment.size,
        risk_tolerance=segment.risk_tolerance,
        horizon_years=segment.horizon_years,
        sophistication=segment.sophistication,
        median_portfolio=segment.median_portfolio * note_per_eur,
        jurisdictions=list(segment.jurisdictions),
    )


def client_segment_map(segments: Iterable[Segment]) -> dict[str, str]:
    """client id -> segment id, for lookups by client."""
    return {client_id: s.segment_id for s in segments for client_id in s.members}
