"""The plugin's own tests: zoo's contract checks, one call per kind (run with pytest after installing)."""

import pytest

import zoo.testing


@pytest.mark.parametrize("encoder", ["tiny", "resnet34"])
def test_sumseg_keeps_the_architecture_contract(encoder):
    options = {"encoder.width": 4} if encoder == "tiny" else {"encoder.base_channels": 8}
    zoo.testing.check_architecture("sumseg", encoder, width=8, **options)


def test_tiny_encoder_and_loss_and_dataset():
    zoo.testing.check_encoder("tiny", width=4)
    zoo.testing.check_loss("boundary_bce")
    zoo.testing.check_dataset("stripes", "train")


def test_text_logger_is_registered():
    assert zoo.default_registry().get("callback", "textlog").spec.option("keys").default == "train_loss,valid_dice"
