"""Chinese ID cards (issue 15): app/idcard with RapidOCR on drawn specimens it was not tuned on.

    .venv/bin/python bench/idcard.py [--n 40] [--first-seed 1000] [--quick] [-v] [--json PATH]

Specimens come from app/tests/idcards.py, seeds from --first-seed on (the tests and the tuning
used seeds below 1000), each seed one card: its side and variant taken in turn (face and back;
plain, on a photo, turned 90/180/270 plus a few degrees, JPEG), so N cards cover every pair.
Each is read as the API reads it: idcard.read(image, side, RapidOCR's document lines), in this
process, the engine warmed up first.

Figures: cards with every field exact, address CER (face side, app/tests/imaging.py's cer),
the card's corners' error (the farthest of the four from the truth, as % of the card's
diagonal: max and median over cards), face centres inside the true face box, and read time
(median, p95). Targets: >= 95 % exact, address CER <= 0.05, corners within 5 %, read <= 1.5 s.
"""

import argparse
import math
import time
from dataclasses import dataclass

import common
import inprocess

inprocess.setup("idcard")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from app import idcard  # noqa: E402
from app.engines.base import Options, Picture  # noqa: E402
from app.engines.registry import ENGINES  # noqa: E402
from app.tests.idcards import VARIANTS, specimen  # noqa: E402
from app.tests.imaging import cer  # noqa: E402

BENCH = "idcard"
SIDES = ("face", "back")


@dataclass
class Outcome:
    seed: int
    side: str
    variant: str
    exact: bool
    wrong: dict[str, tuple[str, str]]  # field -> (truth, read)
    address_cer: float | None
    corner_error: float  # % of the diagonal
    face_hit: bool | None
    seconds: float
    success: bool


def read_lines(image):
    engine = ENGINES["rapidocr"]
    return engine.recognize(Picture(image), Options(lang="chi_sim+eng", task="document")).lines


def corner_error(card, truth) -> float:
    """The farthest corner's distance from the truth, as % of the true diagonal. Both are
    taken as the upright card's top-left, top-right, bottom-right, bottom-left."""
    top_left, bottom_left, bottom_right, top_right = ([point["x"], point["y"]] for point in card.card_region)
    found = np.array([top_left, top_right, bottom_right, bottom_left])
    distance = max(math.dist(a, b) for a, b in zip(found, truth.corners, strict=True))
    return 100 * distance / truth.diagonal


def face_hit(card, truth) -> bool | None:
    if truth.face is None:
        return None
    if card.face_rect is None:
        return False
    center = (card.face_rect["center"]["x"], card.face_rect["center"]["y"])
    return cv2.pointPolygonTest(np.array(truth.face, np.float32), center, False) >= 0


def run(seed: int, side: str, variant: str) -> Outcome:
    truth = specimen(seed, side, variant)
    started = time.perf_counter()
    card = idcard.read(truth.image, side, read_lines)
    seconds = time.perf_counter() - started
    wrong = {
        name: (value, card.fields.get(name, ""))
        for name, value in truth.fields.items()
        if card.fields.get(name) != value
    }
    return Outcome(
        seed=seed,
        side=side,
        variant=variant,
        exact=not wrong,
        wrong=wrong,
        address_cer=cer(truth.fields["address"], card.fields["address"]) if side == "face" else None,
        corner_error=corner_error(card, truth),
        face_hit=face_hit(card, truth),
        seconds=seconds,
        success=card.success,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40, help="cards (default 40)")
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="12 cards, every variant once a side")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every card")
    common.add_json_argument(parser)
    args = parser.parse_args()
    n = 12 if args.quick else args.n
    ENGINES["rapidocr"].warm_up()
    print(f"{n} cards from seed {args.first_seed}; {common.machine()}; commit {common.git_commit()}")
    pairs = [(side, variant) for variant in VARIANTS for side in SIDES]
    outcomes = []
    for index in range(n):
        side, variant = pairs[index % len(pairs)]
        outcome = run(args.first_seed + index, side, variant)
        outcomes.append(outcome)
        if args.verbose or outcome.wrong:
            mark = "ok" if outcome.exact else "MISS"
            print(
                f"  seed {outcome.seed} {side:4} {variant:9} {mark:4} {outcome.seconds:.2f} s "
                f"corners {outcome.corner_error:.1f} % face {outcome.face_hit} success {outcome.success}",
                flush=True,
            )
            for name, (expected, got) in outcome.wrong.items():
                print(f"      {name}: {expected!r} read {got!r}")

    print("\nby side and variant (cards exact / cards)")
    for side in SIDES:
        cells = []
        for variant in VARIANTS:
            chosen = [o for o in outcomes if o.side == side and o.variant == variant]
            cells.append(f"{variant} {sum(o.exact for o in chosen)}/{len(chosen)}")
        print(f"  {side}: " + ", ".join(cells))

    exact = 100 * sum(o.exact for o in outcomes) / len(outcomes)
    addresses = [o for o in outcomes if o.address_cer is not None]
    address_cer = sum(o.address_cer for o in addresses) / max(len(addresses), 1)
    corners = [o.corner_error for o in outcomes]
    faces = [o.face_hit for o in outcomes if o.face_hit is not None]
    times = [o.seconds for o in outcomes]
    success_right = sum(o.success == o.exact for o in outcomes)
    median_time, p95_time = common.percentile(times, 0.5), common.percentile(times, 0.95)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    exact_cards, median_corner = sum(o.exact for o in outcomes), common.percentile(corners, 0.5)
    print("\nfigures")
    print(f"  every field exact: {exact_cards}/{len(outcomes)} = {exact:.1f} % {verdict(exact >= 95)}")
    print(f"  address CER ({len(addresses)} face sides): {address_cer:.4f} {verdict(address_cer <= 0.05)}")
    print(
        f"  corner error, % of the diagonal: max {max(corners):.2f}, median {median_corner:.2f} "
        f"{verdict(max(corners) <= 5)}"
    )
    print(f"  face centre inside the face: {sum(faces)}/{len(faces)} {verdict(all(faces))}")
    print(f"  success == every field exact: {success_right}/{len(outcomes)}")
    print(f"  read time: median {median_time:.2f} s, p95 {p95_time:.2f} s {verdict(p95_time <= 1.5)}")
    rows = [
        common.row(BENCH, "cards with every field exact", exact, "%", ">= 95", exact >= 95),
        common.row(BENCH, "address CER", address_cer, "CER", "<= 0.05", address_cer <= 0.05),
        common.row(BENCH, "corner error max", max(corners), "% diagonal", "<= 5", max(corners) <= 5),
        common.row(BENCH, "corner error median", median_corner, "% diagonal"),
        common.row(
            BENCH, "face centre on the face", 100 * sum(faces) / max(len(faces), 1), "%", "100", all(faces)
        ),
        common.row(BENCH, "read time median", median_time, "s"),
        common.row(BENCH, "read time p95", p95_time, "s", "<= 1.5", p95_time <= 1.5),
    ]
    common.write_rows(args.json, rows)


if __name__ == "__main__":
    main()
