import numpy as np

from zoo.data import Sample, SampleSource


class Stripes(SampleSource):
    def __init__(self, split, data_dir=None, count: int = 16, size: int = 32):
        n = count if split == "train" else max(count // 4, 1)
        self.names = [f"{split}-{i}" for i in range(n)]
        self.offset, self.size = {"train": 0, "valid": 1000, "test": 2000}[split], size

    def load(self, index: int) -> Sample:
        rng = np.random.default_rng(self.offset + index)
        left, right = sorted(rng.integers(0, self.size, 2))
        mask = np.zeros((self.size, self.size), np.uint8)
        mask[:, left:right + 1] = 1
        image = (rng.integers(0, 60, (self.size, self.size, 3)) + 180 * mask[..., None]).astype(np.uint8)
        return Sample(image, mask)
