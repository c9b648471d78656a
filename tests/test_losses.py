"""Every loss against a hand-derived formula, identities between them, composition, stability."""

from __future__ import annotations

import math

import pytest
import torch

import zoo
from zoo.errors import LossSpecError, UnknownNameError
from zoo.lossspec import parse_loss_spec

ALL = ["mse", "bce", "dice", "jaccard", "focal", "tversky", "lovasz"]


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 1, 5, 6, generator=g, dtype=torch.float64) * 2
    target = (torch.rand(3, 1, 5, 6, generator=g) > 0.6).double()
    valid = (torch.rand(3, 1, 5, 6, generator=g) > 0.2).double()
    return logits, target, valid


def loss64(spec: str):
    return zoo.create_loss(spec).double()


def sig(x):
    return 1 / (1 + torch.exp(-x))


def flat_valid(logits, target, valid):
    keep = valid.reshape(-1) > 0
    return logits.reshape(-1)[keep], target.reshape(-1)[keep]


# ---- formulas, written out independently of the implementations -----------------------------

def ref_mse(x, t):
    return sum((sig(a) - b) ** 2 for a, b in zip(x, t)) / len(x)


def ref_bce(x, t, pos_weight=1.0):
    return sum(-(pos_weight * b * math.log(sig(a)) + (1 - b) * math.log(1 - sig(a))) for a, b in zip(x, t)) / len(x)


def ref_focal(x, t, alpha, gamma):
    total = 0.0
    for a, b in zip(x.tolist(), t.tolist()):
        p = 1 / (1 + math.exp(-a))
        pt = p if b == 1 else 1 - p
        at = 1.0 if alpha is None else (alpha if b == 1 else 1 - alpha)
        total += -at * (1 - pt) ** gamma * math.log(pt)
    return total / len(x)


def ref_tversky(x, t, alpha, beta, smooth):
    p = sig(x)
    tp, fp, fn = float((p * t).sum()), float((p * (1 - t)).sum()), float(((1 - p) * t).sum())
    return 1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)


def ref_dice(x, t, smooth):  # the textbook 2|A.B| / (|A| + |B|), smoothing 2s in both
    p = sig(x)
    return 1 - (2 * float((p * t).sum()) + 2 * smooth) / (float(p.sum()) + float(t.sum()) + 2 * smooth)


def ref_jaccard(x, t, smooth):  # |A.B| / |A + B - A.B|
    p = sig(x)
    inter = float((p * t).sum())
    return 1 - (inter + smooth) / (float(p.sum()) + float(t.sum()) - inter + smooth)


def ref_lovasz(x, t):
    """The Lovasz extension straight from its definition: sort hinge errors decreasingly and weight each
    by the increase of the Jaccard loss |M| / |truth OR M| as the error set M grows pixel by pixel."""
    errors = [1 - a * (2 * b - 1) for a, b in zip(x.tolist(), t.tolist())]
    order = sorted(range(len(errors)), key=lambda i: -errors[i])
    truth = {i for i, b in enumerate(t.tolist()) if b == 1}

    def jaccard_loss(mistakes):
        union = truth | mistakes
        return len(mistakes) / len(union) if union else 0.0

    total, mistakes, previous = 0.0, set(), 0.0
    for i in order:
        mistakes = mistakes | {i}
        current = jaccard_loss(mistakes)
        total += max(errors[i], 0.0) * (current - previous)
        previous = current
    return total


def test_mse_is_the_reports_loss(data):
    x, t, v = data
    assert float(loss64("mse")(x, t)) == pytest.approx(float(ref_mse(x.reshape(-1), t.reshape(-1))), rel=1e-12)
    assert float(loss64("mse")(x, t, v)) == pytest.approx(float(ref_mse(*flat_valid(x, t, v))), rel=1e-12)


def test_bce_with_pos_weight(data):
    x, t, v = data
    assert float(loss64("bce")(x, t, v)) == pytest.approx(float(ref_bce(*flat_valid(x, t, v))), rel=1e-10)
    got = float(loss64("bce(pos_weight=3)")(x, t))
    assert got == pytest.approx(float(ref_bce(x.reshape(-1), t.reshape(-1), 3.0)), rel=1e-10)


@pytest.mark.parametrize("alpha, gamma", [(None, 2.0), (0.25, 2.0), (0.7, 0.5)])
def test_focal(data, alpha, gamma):
    x, t, v = data
    spec = f"focal(gamma={gamma})" if alpha is None else f"focal(alpha={alpha},gamma={gamma})"
    assert float(loss64(spec)(x, t, v)) == pytest.approx(ref_focal(*flat_valid(x, t, v), alpha, gamma), rel=1e-10)


@pytest.mark.parametrize("smooth", [0.0, 1.0])
def test_overlap_losses(data, smooth):
    x, t, v = data
    xv, tv = flat_valid(x, t, v)
    assert float(loss64(f"dice(smooth={smooth})")(x, t, v)) == pytest.approx(ref_dice(xv, tv, smooth), rel=1e-10)
    assert float(loss64(f"jaccard(smooth={smooth})")(x, t, v)) == pytest.approx(ref_jaccard(xv, tv, smooth), rel=1e-10)
    got = float(loss64(f"tversky(alpha=0.3,beta=0.7,smooth={smooth})")(x, t, v))
    assert got == pytest.approx(ref_tversky(xv, tv, 0.3, 0.7, smooth), rel=1e-10)


def test_dice_per_image_is_the_mean_over_images(data):
    x, t, _ = data
    expected = sum(ref_dice(x[i].reshape(-1), t[i].reshape(-1), 1.0) for i in range(3)) / 3
    assert float(loss64("dice(per_image=true)")(x, t)) == pytest.approx(expected, rel=1e-10)


def test_lovasz(data):
    x, t, v = data
    assert float(loss64("lovasz")(x, t, v)) == pytest.approx(ref_lovasz(*flat_valid(x, t, v)), rel=1e-10)
    per_image = sum(ref_lovasz(x[i].reshape(-1), t[i].reshape(-1)) for i in range(3)) / 3
    assert float(loss64("lovasz(per_image=true)")(x, t)) == pytest.approx(per_image, rel=1e-10)


def test_identities(data):
    x, t, v = data
    assert float(loss64("focal(gamma=0)")(x, t, v)) == pytest.approx(float(loss64("bce")(x, t, v)), rel=1e-12)
    assert float(loss64("tversky(alpha=0.5,beta=0.5)")(x, t, v)) == pytest.approx(float(loss64("dice")(x, t, v)), rel=1e-12)
    assert float(loss64("tversky(alpha=1,beta=1)")(x, t, v)) == pytest.approx(float(loss64("jaccard")(x, t, v)), rel=1e-12)


def test_weighted_sum_equals_its_parts(data):
    x, t, v = data
    combined = zoo.create_loss("0.3*bce+0.7*dice")
    expected = 0.3 * zoo.create_loss("bce")(x, t, v) + 0.7 * zoo.create_loss("dice")(x, t, v)
    assert float(combined(x, t, v)) == pytest.approx(float(expected), rel=1e-12)
    three = zoo.create_loss("focal(gamma=3)+dice+2.5e-1*lovasz")
    parts = zoo.create_loss("focal(gamma=3)")(x, t) + zoo.create_loss("dice")(x, t) + 0.25 * zoo.create_loss("lovasz")(x, t)
    assert float(three(x, t)) == pytest.approx(float(parts), rel=1e-12)
    assert three.spec == "focal(gamma=3)+dice+0.25*lovasz"


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky", "lovasz"])
def test_perfect_prediction_costs_nothing(name):
    target = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    target[:, :, 2:6, 3:7] = 1
    logits = (target * 2 - 1) * 100
    assert float(loss64(name)(logits, target)) == pytest.approx(0.0, abs=1e-9)
    empty = torch.zeros_like(target)
    assert float(loss64(name)(empty - 100, empty)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("name", ALL)
def test_gradcheck(name, data):
    x, t, v = data
    x = x.clone().requires_grad_(True)
    loss = loss64(name)
    assert torch.autograd.gradcheck(lambda inp: loss(inp, t, v), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_extreme_logits_and_bf16(name):
    target = (torch.arange(64).reshape(1, 1, 8, 8) % 3 == 0).float()
    logits = torch.where(torch.arange(64).reshape(1, 1, 8, 8) % 2 == 0, 100.0, -100.0).requires_grad_(True)
    loss = zoo.create_loss(name)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = torch.randn(2, 1, 8, 8).to(torch.bfloat16)
        out = loss(x, target.expand(2, 1, 8, 8))
    assert out.dtype == torch.float32 and torch.isfinite(out)


@pytest.mark.parametrize("spec, message", [
    ("", "empty loss spec"),
    ("0.3*bce+*dice", "expected a loss name at column 9 ('*dice')"),
    ("0.3 bce", "expected '*' after a weight at column 5"),
    ("bce dice", "expected '+' between losses at column 5 ('dice')"),
    ("focal(gamma=)", "expected a value for 'gamma' at column 13"),
    ("focal(gamma=2", "expected ',' or ')' at column 14"),
    ("focal(gamma=2,gamma=3)", "'gamma' given twice"),
    ("bce$", "unexpected character at column 4"),
    ("focal(gama=3)", "focal' has no option 'gama' (valid: alpha, gamma, class_weights)"),
    ("focal(gamma=x)", "-o gamma=x: gamma must be a non-negative finite number"),
])
def test_malformed_specs(spec, message):
    with pytest.raises(LossSpecError) as err:
        zoo.create_loss(spec) if spec else parse_loss_spec(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_loss_names_the_choices():
    with pytest.raises(UnknownNameError, match="unknown loss 'dicee'; did you mean dice"):
        zoo.create_loss("bce+dicee")


def test_parse_loss_spec_structure():
    terms = parse_loss_spec("0.3*bce + 0.7*plugin:my-loss(k='a b', n=2)")
    assert [(t.weight, t.name, t.kwargs) for t in terms] == [
        (0.3, "bce", {}), (0.7, "plugin:my-loss", {"k": "'a b'", "n": "2"})]
