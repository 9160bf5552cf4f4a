"""What the published personalization datasets are known to hold, and a check of a local copy against it.

We cannot hash a copy we do not have, so a published suite checks the tree: concept names and per-concept
image counts where the release publishes them (YoLLaVA: read from the public repository
WisconsinAIVision/YoLLaVA, ``yollava-data/{train,test}/<concept>/*.png`` at its HEAD), otherwise the
counts the papers state (MyVLM: 29 concepts; PerVA: 329 concepts in 21 categories). A mismatch is an error
that names what differs; every result still records the copy's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lewis_env.data.types import ConceptDataset


class PublishedMismatchError(ValueError):
    """A local copy that does not hold what the published dataset holds (names the difference)."""


@dataclass(frozen=True)
class Published:
    """What one release holds: concept -> (train images, test images) where known, else totals."""

    name: str
    source: str
    images: dict[str, tuple[int, int]] = field(default_factory=dict)
    num_concepts: int | None = None
    num_categories: int | None = None

    @property
    def concepts(self) -> list[str]:
        return sorted(self.images)


#: YoLLaVA (NeurIPS 2024): 40 concepts, (train, test) PNG counts, negative_example/ folders excluded.
YOLLAVA = Published("yollava", "github.com/WisconsinAIVision/YoLLaVA yollava-data/ (HEAD)", images={
    "bo": (10, 10), "brown-duck": (10, 10), "butin": (5, 5), "cat-cup": (5, 5), "chua-thien-mu": (5, 5),
    "ciin": (5, 5), "denisdang": (10, 10), "dragon": (10, 10), "duck-banana": (10, 10), "dug": (5, 5),
    "elephant": (10, 10), "fire": (10, 10), "henry": (4, 6), "khanhvy": (10, 10), "lamb": (10, 10),
    "mam": (10, 10), "marie-cat": (9, 10), "mydieu": (5, 5), "neurips-cup": (10, 10), "nha-tho-hanoi": (6, 6),
    "nha-tho-hcm": (5, 5), "oong": (10, 10), "phuc-map": (10, 10), "pig-cup": (7, 8), "pusheen-cup": (6, 7),
    "shiba-black": (11, 10), "shiba-gray": (10, 11), "shiba-sleep": (10, 10), "shiba-yellow": (10, 10),
    "thao": (10, 10), "thap-but": (5, 5), "thap-cham": (5, 5), "thuytien": (10, 10), "tokyo-keyboard": (5, 5),
    "toodles-galore": (10, 10), "viruss": (10, 10), "water": (9, 10), "willinvietnam": (10, 10),
    "yellow-duck": (10, 10), "yuheng": (5, 5),
}, num_concepts=40)
#: MyVLM (ECCV 2024): 29 object concepts; the per-concept names live with the Google-Drive release only.
MYVLM = Published("myvlm", "MyVLM paper (ECCV 2024): 29 concepts", num_concepts=29)
#: PerVA (R2P, ICCV 2025): 329 concepts in 21 categories.
PERVA = Published("perva", "R2P paper (ICCV 2025): 329 concepts, 21 categories", num_concepts=329, num_categories=21)
PUBLISHED: dict[str, Published] = {p.name: p for p in (YOLLAVA, MYVLM, PERVA)}


def check_published(ds: ConceptDataset, release: str | Published, counts: bool = True) -> None:
    """Raise PublishedMismatchError naming every difference between ``ds`` and the published release."""
    pub = PUBLISHED[release] if isinstance(release, str) else release
    problems: list[str] = []
    have = set(ds.concept_ids)
    if pub.images:
        missing = sorted(set(pub.images) - have)
        extra = sorted(have - set(pub.images))
        if missing:
            problems.append(f"missing concept(s) {missing}")
        if extra:
            problems.append(f"concept(s) not in the release {extra}")
        if counts:
            for cid in sorted(have & set(pub.images)):
                c = ds.concept(cid)
                got = (len(c.reference), len(c.query))
                if got != pub.images[cid]:
                    problems.append(f"{cid}: {got[0]} train / {got[1]} test images, published {pub.images[cid][0]} "
                                    f"/ {pub.images[cid][1]}")
    elif pub.num_concepts is not None and len(ds) != pub.num_concepts:
        problems.append(f"{len(ds)} concepts, published {pub.num_concepts}")
    if pub.num_categories is not None and len(ds.categories()) != pub.num_categories:
        problems.append(f"{len(ds.categories())} categories, published {pub.num_categories}")
    if problems:
        shown = "; ".join(problems[:8]) + (f"; and {len(problems) - 8} more" if len(problems) > 8 else "")
        raise PublishedMismatchError(f"{ds.root or ds.name} is not the published {pub.name} release ({pub.source}): "
                                     f"{shown}")


__all__ = ["MYVLM", "PERVA", "PUBLISHED", "YOLLAVA", "Published", "PublishedMismatchError", "check_published"]
