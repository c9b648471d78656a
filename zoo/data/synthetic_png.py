"""Write a few synthetic test scenes as PNG files: inputs for `zoo predict` in `make demo`.

    python -m zoo.data.synthetic_png OUT_DIR [COUNT] [SIZE]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from zoo_plugins.datasets.synthetic import SPLIT_IDS, render


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    count, size = (int(argv[1]) if len(argv) > 1 else 4), (int(argv[2]) if len(argv) > 2 else 160)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sample = render(seed=1, split_id=SPLIT_IDS["test"], index=i, size=size, difficulty="medium")
        Image.fromarray(sample.image).save(out / f"scene_{i}.png")
    print(f"wrote {count} images to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
