"""smp as an oracle (a dev dependency only): the architectures smp also has, on resnet34 with no
pretrained weights and 1 class, have the parameter count of smp's model within 2% and the same
output shape for odd input sizes."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.api import count_parameters

smp = pytest.importorskip("segmentation_models_pytorch")

SMP = {"unet": "Unet", "fpn": "FPN", "deeplabv3": "DeepLabV3", "deeplabv3plus": "DeepLabV3Plus", "pspnet": "PSPNet",
       "linknet": "Linknet", "segformer": "Segformer", "upernet": "UPerNet", "unetplusplus": "UnetPlusPlus",
       "manet": "MAnet", "pan": "PAN"}
MULTIPLE = {"pan": 128}  # smp needs the input a multiple of 32 (PAN: its pyramid halves stride 16 three times)
# where the designs agree the counts are equal; the README's model table explains the others
EXACT = {"fpn", "deeplabv3", "deeplabv3plus", "linknet", "pspnet", "segformer", "unetplusplus", "manet"}


def used_parameters(model: torch.nn.Module, size: int = 64) -> int:
    """Parameters the forward pass reaches: smp's PSPNet keeps resnet34's layer3 and layer4 without
    running them; zoo does not build them."""
    model.train()
    model.zero_grad()
    model(torch.randn(2, 3, size, size)).sum().backward()
    return sum(p.numel() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("arch", [a for a in SMP if a != "unet"])
def test_parameter_count_and_shapes_match_smp(arch):
    ours = zoo.create_model(arch, encoder="resnet34")
    theirs = getattr(smp, SMP[arch])("resnet34", encoder_weights=None, classes=1)
    used = used_parameters(theirs, MULTIPLE.get(arch, 64))
    assert abs(count_parameters(ours) / used - 1) < 0.02
    if arch in EXACT:
        assert count_parameters(ours) == used
    ours.eval(), theirs.eval()
    for h, w in ((63, 77), (97, 65)):
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            assert ours(x).shape == (1, 1, h, w)
            m = MULTIPLE.get(arch, 32)
            padded = torch.nn.functional.pad(x, (0, -w % m, 0, -h % m))
            assert theirs(padded)[..., :h, :w].shape == ours(x).shape


def test_dpt_matches_smp_on_a_vit():
    """smp's DPT takes only timm ViTs; with the readout zoo implements ("ignore") the parameters the
    forward pass uses are the same and odd sizes come out whole."""
    ours = zoo.create_model("dpt", encoder="timm:vit_tiny_patch16_224", fusion_channels=64,
                            intermediate_channels="32,64,128,128")
    theirs = smp.DPT("tu-vit_tiny_patch16_224", encoder_weights=None, classes=1, decoder_readout="ignore",
                     decoder_fusion_channels=64, decoder_intermediate_channels=(32, 64, 128, 128),
                     dynamic_img_size=True)
    assert count_parameters(ours) == used_parameters(theirs)
    ours.eval(), theirs.eval()
    x = torch.randn(1, 3, 63, 77)
    with torch.no_grad():
        assert ours(x).shape == (1, 1, 63, 77)
        assert theirs(torch.nn.functional.pad(x, (0, 19, 0, 1)))[..., :63, :77].shape == ours(x).shape  # smp: x32
