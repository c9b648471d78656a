"""Datasets on generated Oxford-layout and folder trees, the shared real sample, the cache, the pipeline."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from tests.conftest import SHARED_SAMPLE
from zoo.data import DataWarning
from zoo.data.pipeline import Augment, BatchLoader, augment_batch
from zoo.errors import DataError, OptionError, UsageError

rng = np.random.default_rng(0)


def trimap(h: int, w: int) -> np.ndarray:
    t = np.full((h, w), 2, np.uint8)
    t[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 3
    t[h // 4 + 2: 3 * h // 4 - 2, w // 4 + 2: 3 * w // 4 - 2] = 1
    return t


def write_oxford(root: Path, trainval: int = 20, test: int = 4) -> list[str]:
    """An Oxford-IIIT Pet tree with the real dataset's oddities; returns the trainval names."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    names = [f"Cat_{i}" for i in range(trainval + test)]
    for i, name in enumerate(names):
        h, w = 30 + i % 5, 40 + i % 7
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        path = root / "images" / f"{name}.jpg"
        if i == 1:
            image.convert("CMYK").save(path, "JPEG")
        elif i == 2:
            image.convert("RGBA").save(path, "PNG")  # a PNG named .jpg
        elif i == 3:
            image.convert("L").save(path, "JPEG")
        else:
            image.save(path, "JPEG")
        Image.fromarray(trimap(h, w)).save(root / "annotations" / "trimaps" / f"{name}.png")
    # a truncated listed file, and a GIF no list names
    data = (root / "images" / "Cat_5.jpg").read_bytes()
    (root / "images" / "Cat_5.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(root / "images" / "Stray.jpg", "GIF")
    lines = lambda ns: "".join(f"{n} 1 1 1\n" for n in ns)  # noqa: E731
    (root / "annotations" / "trainval.txt").write_text(lines(names[:trainval]))
    (root / "annotations" / "test.txt").write_text(lines(names[trainval:]))
    return names[:trainval]


@pytest.fixture
def oxford(tmp_path) -> Path:
    write_oxford(tmp_path / "pets")
    return tmp_path / "pets"


def make(name, split, data_dir=None, image_size=32, **options):
    return zoo.create_dataset(name, split, data_dir, image_size=image_size, **options)


def test_oxford_splits_oddities_and_warnings(oxford):
    with pytest.warns(DataWarning, match=r"Cat_5\.jpg: cannot decode .*skipped"):
        train = make("oxford-pet", "train", oxford)
    names = [f"Cat_{i}" for i in range(20)]
    assert train.names == [n for i, n in enumerate(names) if i % 10 != 0 and n != "Cat_5"]  # 17
    assert make("oxford-pet", "valid", oxford).names == ["Cat_0", "Cat_10"]
    assert len(make("oxford-pet", "test", oxford)) == 4
    item = train[0]  # Cat_1: the CMYK JPEG
    assert item["image"].dtype == torch.uint8 and item["image"].shape == (3, 32, 32)
    assert item["mask"].shape == (1, 32, 32) and set(item["mask"].unique().tolist()) <= {0, 1}


def test_trimap_mapping_matches_a_direct_computation(oxford):
    data = make("oxford-pet", "valid", oxford, image_size=64)
    raw = np.asarray(Image.open(oxford / "annotations" / "trimaps" / "Cat_0.png"))
    resized = np.asarray(Image.fromarray(raw).resize((64, 64), Image.NEAREST))
    np.testing.assert_array_equal(data[0]["mask"][0].numpy(), (resized != 2).astype(np.uint8))
    ignore = make("oxford-pet", "valid", oxford, image_size=64, border="ignore")
    np.testing.assert_array_equal(ignore[0]["mask"][0].numpy(), (resized != 2).astype(np.uint8))
    np.testing.assert_array_equal(ignore[0]["valid"][0].numpy(), (resized != 3).astype(np.uint8))


@pytest.mark.skipif(not SHARED_SAMPLE.is_dir(), reason="needs ../shared/data/oxford-pet-sample beside the checkout")
def test_shared_real_sample():
    counts = {s: len(make("oxford-pet", s, SHARED_SAMPLE, image_size=64)) for s in ("train", "valid", "test")}
    assert counts == {"train": 54, "valid": 6, "test": 31}  # the RGBA PNG named .jpg decodes and stays
    test = make("oxford-pet", "test", SHARED_SAMPLE, image_size=64)
    masks = np.asarray(test.cached.masks)
    assert set(np.unique(masks).tolist()) == {0, 1} and 0.1 < masks.mean() < 0.9
    odd = test.names.index("Abyssinian_5")
    image = test[odd]["image"]
    assert image.shape == (3, 64, 64) and image.float().std() > 5


def test_missing_layout_says_where_files_go(tmp_path):
    with pytest.raises(DataError, match=r"not the Oxford-IIIT Pet layout \(missing images.*download=true"):
        make("oxford-pet", "train", tmp_path)
    with pytest.raises(DataError, match="needs --data-dir"):
        make("oxford-pet", "train")
    with pytest.raises(UsageError, match="--data-dir .*absent: no such directory"):
        make("oxford-pet", "train", tmp_path / "absent")


def test_download_from_local_archives(tmp_path, oxford):
    from zoo_plugins.datasets.oxford import download_archives

    archives = []
    for part in ("images", "annotations"):
        path = tmp_path / f"{part}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(oxford / part, arcname=part)
        archives.append((path.as_uri(), hashlib.md5(path.read_bytes()).hexdigest()))
    download_archives(tmp_path / "fetched", tuple(archives))
    assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == ["annotations", "images"]
    assert len(make("oxford-pet", "test", tmp_path / "fetched")) == 4
    with pytest.raises(DataError, match="checksum .* does not match"):
        download_archives(tmp_path / "again", ((archives[0][0], "0" * 32),))
    with pytest.raises(DataError, match="cannot download .*put images/ and annotations/"):
        download_archives(tmp_path / "offline", (("http://127.0.0.1:9/images.tar.gz", "0" * 32),))


def test_cache_is_reused_and_invalidated(oxford):
    first = make("oxford-pet", "test", oxford)
    again = make("oxford-pet", "test", oxford)
    assert again.cached.path == first.cached.path
    assert make("oxford-pet", "test", oxford, image_size=48).cached.path != first.cached.path
    image = oxford / "images" / "Cat_21.jpg"
    width, height = Image.open(image).size
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(image, "JPEG")
    rebuilt = make("oxford-pet", "test", oxford)
    assert rebuilt.cached.path != first.cached.path and not first.cached.path.exists()
    assert int(rebuilt[1]["image"].max()) <= 8  # the new black image, not the cached one


def write_folder(root: Path, stems: list[str], mask_values=(0, 255), palette=False, size=(24, 20)) -> None:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for stem in stems:
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / "images" / f"{stem}.png")
        mask = np.full((size[1], size[0]), mask_values[0], np.uint8)
        mask[5:15, 4:12] = mask_values[1]
        img = Image.fromarray(mask)
        if palette:
            img = img.convert("P")
            img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
        img.save(root / "masks" / f"{stem}.png")


@pytest.mark.parametrize("values, palette", [((0, 255), False), ((0, 1), False), ((0, 1), True)])
def test_folder_masks_and_seeded_split(tmp_path, values, palette):
    stems = [f"img{i:02d}" for i in range(20)]
    write_folder(tmp_path / "data", stems, values, palette)
    parts = {s: make("folder", s, tmp_path / "data").names for s in ("train", "valid", "test")}
    assert [len(parts[s]) for s in ("train", "valid", "test")] == [16, 2, 2]
    assert sorted(sum(parts.values(), [])) == stems
    assert parts == {s: make("folder", s, tmp_path / "data").names for s in parts}  # deterministic
    assert make("folder", "test", tmp_path / "data", split_seed=1).names != parts["test"]
    mask = make("folder", "train", tmp_path / "data", image_size=24)[0]["mask"][0].numpy()
    assert mask.sum() == pytest.approx(24 * 24 * (10 * 8) / (24 * 20), rel=0.15) and set(np.unique(mask)) == {0, 1}


def test_folder_split_subfolders(tmp_path):
    for split, n in (("train", 3), ("valid", 2)):
        write_folder(tmp_path / split, [f"{split}{i}" for i in range(n)])
    assert make("folder", "valid", tmp_path).names == ["valid0", "valid1"]
    with pytest.raises(DataError, match="split folders found, but none for 'test'"):
        make("folder", "test", tmp_path)


def test_folder_bad_input_names_the_file(tmp_path):
    write_folder(tmp_path / "gray", ["a", "b"], (0, 128))
    with pytest.raises(DataError, match=r"masks/a\.png: mask values \[0, 128\] are not binary"):
        make("folder", "train", tmp_path / "gray", valid_fraction=0, test_fraction=0)
    assert len(make("folder", "train", tmp_path / "gray", valid_fraction=0, test_fraction=0, mask_threshold=100)) == 2
    write_folder(tmp_path / "sizes", ["a"])
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "sizes" / "masks" / "a.png")
    with pytest.raises(DataError, match=r"a\.png: mask is 5x5 but its image is 24x20"):
        make("folder", "train", tmp_path / "sizes", valid_fraction=0, test_fraction=0)
    write_folder(tmp_path / "orphan", ["a", "b"])
    (tmp_path / "orphan" / "masks" / "b.png").unlink()
    with pytest.raises(DataError, match=r"b\.png: no mask with the same stem"):
        make("folder", "train", tmp_path / "orphan")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(DataError, match="no images"):
        make("folder", "train", tmp_path / "empty")


def test_synthetic_is_deterministic_and_exact():
    a = make("synthetic", "train", image_size=48, count=8, size=48)
    b = make("synthetic", "train", image_size=48, count=8, size=48)
    assert len(a) == 8 and len(make("synthetic", "valid", count=8, size=48)) == 2
    from zoo_plugins.datasets.synthetic import render

    sample = render(0, 0, 3, 48, "medium")
    np.testing.assert_array_equal(a[3]["mask"][0].numpy(), sample.mask)
    np.testing.assert_array_equal(a[3]["image"].permute(1, 2, 0).numpy(), sample.image)
    assert torch.equal(a[5]["image"], b[5]["image"])
    masks = np.asarray(a.cached.masks)
    assert 0.02 < masks.mean() < 0.6
    assert not np.array_equal(render(0, 0, 3, 48, "medium").image, render(1, 0, 3, 48, "medium").image)
    with pytest.raises(OptionError, match="difficulty must be one of easy, medium, hard"):
        make("synthetic", "train", difficulty="extreme")


def test_keep_aspect_marks_padding_invalid(oxford):
    data = zoo.create_dataset("oxford-pet", "valid", oxford, image_size=32, keep_aspect=True)
    valid = data[0]["valid"][0].numpy()  # Cat_0 is 40 wide, 30 high: 32 x 24 content, rows below invalid
    assert valid[:24].all() and not valid[24:].any()


def loader_for(split, **kw):
    return BatchLoader(split.cached, 4, torch.device("cpu"), **kw)


def test_loader_normalizes_with_imagenet_statistics():
    split = make("synthetic", "valid", count=16, size=32)
    batch = next(loader_for(split, train=False).epoch(0))
    raw = torch.from_numpy(np.array(split.cached.images[:4])).permute(0, 3, 1, 2).double() / 255
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    torch.testing.assert_close(batch.images.double(), (raw - mean) / std, rtol=1e-5, atol=1e-5)
    assert batch.valid is None and batch.masks.shape == (4, 1, 32, 32)


def test_training_order_is_seeded_and_sharded():
    split = make("synthetic", "train", count=10, size=32)
    single = loader_for(split, train=True, seed=3).indices(0)
    assert sorted(single) == list(range(10)) and list(single) == list(loader_for(split, train=True, seed=3).indices(0))
    assert list(single) != list(loader_for(split, train=True, seed=3).indices(1))
    ranks = [loader_for(split, train=True, seed=3, rank=r, world=3).indices(0) for r in range(3)]
    assert [len(r) for r in ranks] == [4, 4, 4] and set(np.concatenate(ranks)) == set(range(10))
    evals = [loader_for(split, train=False, rank=r, world=3).indices(0) for r in range(3)]
    assert sorted(np.concatenate(evals)) == list(range(10))


def test_augmentation_moves_mask_with_image():
    gen = torch.Generator().manual_seed(0)
    images = torch.zeros(6, 3, 16, 16)
    images[:, :, :, :5] = 1.0  # a bright left band ...
    masks = images[:, :1].clone()  # ... that is the foreground
    out, out_masks, valid = augment_batch(images, masks, torch.ones_like(masks), Augment.parse("flip,affine"), gen)
    inside = valid > 0
    bright = out[:, :1] > 0.5
    agree = (bright == (out_masks > 0.5))[inside].float().mean()
    assert agree > 0.97  # bilinear image vs nearest mask differ only on edges
    assert (valid == 0).any()  # rotation/scale brought in pixels from outside
    flipped = augment_batch(images, masks, torch.ones_like(masks), Augment(hflip=1.0), gen)[1]
    assert torch.equal(flipped, masks.flip(-1))
    color = augment_batch(images * 0.5, masks, torch.ones_like(masks), Augment.parse("color"), gen)[0]
    assert color.min() >= 0 and color.max() <= 1 and not torch.equal(color, images * 0.5)
    with pytest.raises(OptionError, match="unknown augmentation 'blur'"):
        Augment.parse("flip,blur")


def test_augmentation_is_reproducible_per_step():
    split = make("synthetic", "train", count=8, size=32)
    a = [b.images for b in loader_for(split, train=True, augment=Augment.parse("flip,affine,color")).epoch(2)]
    b = list(loader_for(split, train=True, augment=Augment.parse("flip,affine,color")).epoch(2, start_step=1))
    assert torch.equal(a[1], b[0].images)


@pytest.mark.slow
def test_cli_reports_a_skipped_file_in_one_line(oxford, tmp_path):
    from tests.conftest import run_zoo

    result = run_zoo("train", "unet", "--dataset", "oxford-pet", "--data-dir", str(oxford), "--epochs", "1",
                     "--image-size", "32", "-o", "base_channels=4", "--out", str(tmp_path / "run"), "-q")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("zoo: warning:")]
    assert len(warnings) == 1 and re.search(r"Cat_5\.jpg: cannot decode .*; skipped$", warnings[0])
    assert "warnings.warn" not in result.stderr


def _folder_with_mask(root: Path, mask: Image.Image) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(rng.integers(0, 255, (mask.size[1], mask.size[0], 3), dtype=np.uint8)).save(root / "images" / "a.png")
    mask.save(root / "masks" / "a.png")
    return root


def test_masks_are_read_as_written(tmp_path):
    """16-bit masks are never wrapped to 8 bits; 1-bit and 16-bit full-scale masks are binary;
    unexpected values are an error naming the file and the values."""
    shape = np.zeros((20, 24), np.uint16)
    shape[5:15, 4:12] = 1
    both = dict(valid_fraction=0, test_fraction=0)
    for name, values in (("sixteen", shape * 65535), ("one", shape.astype(bool))):
        img = Image.fromarray(values.astype(np.uint16)) if values.dtype == np.uint16 else Image.fromarray(values)
        root = _folder_with_mask(tmp_path / name, img)
        data = make("folder", "train", root, image_size=24, **both)
        assert data[0]["mask"].sum() > 0 and set(data[0]["mask"].unique().tolist()) == {0, 1}
    wraps = _folder_with_mask(tmp_path / "wraps", Image.fromarray((shape * 256).astype(np.uint16)))
    with pytest.raises(DataError, match=r"wraps/masks/a\.png: mask values \[0, 256\] are not binary"):
        make("folder", "train", wraps, **both)  # a uint8 cast would have made it all zero
    assert make("folder", "train", wraps, mask_threshold=100, **both)[0]["mask"].sum() > 0


def test_unexpected_trimap_values_name_the_file(oxford):
    path = oxford / "annotations" / "trimaps" / "Cat_21.png"
    values = np.asarray(Image.open(path)).copy()
    values[0, :3] = (4, 7, 200)
    Image.fromarray(values).save(path)
    with pytest.raises(DataError, match=r"Cat_21\.png: trimap values \[4, 7, 200\] are not 1 \(pet\)"):
        make("oxford-pet", "test", oxford)


def test_cache_keeps_other_sizes_and_removes_only_its_stale_self(oxford):
    small = make("oxford-pet", "test", oxford, image_size=32)
    large = make("oxford-pet", "test", oxford, image_size=48)
    aspect = zoo.create_dataset("oxford-pet", "test", oxford, image_size=32, keep_aspect=True)
    image = oxford / "images" / "Cat_21.jpg"
    width, height = Image.open(image).size
    Image.fromarray(np.zeros((height, width, 3), np.uint8)).save(image, "JPEG")
    rebuilt = make("oxford-pet", "test", oxford, image_size=32)
    assert rebuilt.cached.path != small.cached.path and not small.cached.path.exists()
    assert large.cached.path.exists() and aspect.cached.path.exists()  # other caches are not stale


def test_failed_or_killed_cache_builds_leave_nothing(tmp_path, monkeypatch):
    from zoo.data import cache

    root = Path(tmp_path / "cache")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(root))
    dead = root / "synthetic" / ".train-0123456789abcdef.999999999.tmp"  # a build whose process was killed
    dead.mkdir(parents=True)
    calls = {"n": 0}
    original = cache.resize_sample

    def fail_midway(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # Ctrl-C while the cache is being built
        return original(*args, **kwargs)

    monkeypatch.setattr(cache, "resize_sample", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        cache.build_or_open(zoo.default_registry().get("dataset", "synthetic").spec.build("train", None, count=16),
                            "synthetic", "train", {}, 32, False, root, workers=1)
    assert list((root / "synthetic").iterdir()) == []  # neither the dead build's folder nor ours


def test_cache_that_cannot_fit_is_refused_before_writing(small_disk, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE_DIR", str(small_disk))
    with pytest.raises(DataError, match=r"the cache would take 33\.6 MB but .* has 16\.8 MB free; lower --image-size"):
        make("synthetic", "train", image_size=512, count=32, size=32)
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []  # no sparse monster file


class _Exploding:
    """A cache array whose reads fail, as a disk that went away would."""

    shape = (16, 32, 32, 3)

    def __getitem__(self, index):
        raise OSError(5, "Input/output error", "images.npy")


def _batch_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "zoo-batches" and t.is_alive()]


def test_loader_errors_reach_the_training_thread_and_the_thread_always_ends():
    import dataclasses

    split = make("synthetic", "train", count=16, size=32).cached
    broken = BatchLoader(dataclasses.replace(split, images=_Exploding()), 4, torch.device("cpu"), train=True)
    with pytest.raises(OSError, match="Input/output error"):
        list(broken.epoch(0))  # raised here, not a training loop blocked forever on the queue
    loader = BatchLoader(split, 2, torch.device("cpu"), train=True)
    batches = loader.epoch(0)
    next(batches)  # stop early, as an early stop or Ctrl-C does, with batches still queued
    batches.close()
    assert _batch_threads() == []
