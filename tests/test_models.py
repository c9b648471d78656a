"""The encoder/architecture contract, over every registered architecture and a sample of encoders."""

from __future__ import annotations

import pytest
import torch

import zoo
import zoo.testing
from tests.conftest import builtin_registry
from zoo.api import count_parameters
from zoo.errors import IncompatibleEncoder, OptionError, WeightsError
from zoo.specs import EncoderFamilySpec, resolve

# narrow widths keep the suite fast on two cores; the report sizes are checked separately
ENCODERS = {
    "unet": {"base_channels": 4},
    "resnet34": {"base_channels": 8},
    "timm:mobilenetv3_small_050": {},
    "timm:convnext_atto": {},
    "tiny": {"width": 4},  # the example plugin's
    "timm:vit_tiny_patch16_224": {},  # a plain transformer: every stage at stride 16
}
CONTRACT_ENCODERS = ["unet", "resnet34", "timm:mobilenetv3_small_050", "tiny", "timm:vit_tiny_patch16_224"]
# every architecture's width options, narrowed (a new architecture without an entry runs at its defaults)
NARROW = {
    "resnet34_unet": {"decoder_channels": 8},
    "fpn": {"pyramid_channels": 16, "segmentation_channels": 16},
    "deeplabv3": {"decoder_channels": 16},
    "deeplabv3plus": {"decoder_channels": 16},
    "pspnet": {"psp_out_channels": 16},
    "linknet": {"prefinal_channels": 8},
    "segformer": {"segmentation_channels": 16},
    "upernet": {"decoder_channels": 16},
    "unetplusplus": {"decoder_channels": "8,8,8,8,8"},
    "pan": {"decoder_channels": 8},
    "dpt": {"intermediate_channels": "8,8,8,8", "fusion_channels": 16},
    "manet": {"decoder_channels": "8,8,8,8,8", "pab_channels": 4, "reduction": 1},
}


def architectures():
    return builtin_registry().names("architecture")


@pytest.fixture
def reg(with_example):
    return zoo.build_registry()


def build(reg, arch, encoder, **extra):
    options = {f"encoder.{k}": v for k, v in ENCODERS[encoder].items()}
    options.update({f"model.{k}": v for k, v in NARROW.get(arch, {}).items()})
    return zoo.create_model(arch, encoder=encoder, registry=reg, **options, **extra)


def declared_info(reg, encoder):
    entry = reg.get("encoder", encoder)
    if isinstance(entry.spec, EncoderFamilySpec):
        return resolve(entry.spec.feature_info)(entry.member, **ENCODERS[encoder])
    return entry.spec.describe(**ENCODERS[encoder])


@pytest.mark.parametrize("encoder", ENCODERS)
def test_encoder_declares_what_it_returns(reg, encoder):
    zoo.testing.check_encoder(encoder, registry=reg, **ENCODERS[encoder])


@pytest.mark.parametrize("arch", architectures())
@pytest.mark.parametrize("encoder", CONTRACT_ENCODERS)
def test_contract(reg, arch, encoder):
    """Every architecture on every encoder that can serve it passes zoo.testing's contract (any input
    size, gradients to every parameter, channels_last, bf16 autocast, save/load); an encoder that
    cannot serve is refused in one line."""
    options = {f"encoder.{k}": v for k, v in ENCODERS[encoder].items()}
    options.update({f"model.{k}": v for k, v in NARROW.get(arch, {}).items()})
    try:
        zoo.testing.check_architecture(arch, encoder, registry=reg, export=False, **options)
    except IncompatibleEncoder as exc:  # a one-line refusal, and only for a need the encoder really lacks
        message = str(exc)
        assert message.startswith(f"{arch} needs ") and "\n" not in message
        if "output stride" in message:
            assert reg.get("architecture", arch).spec.option("output_stride") is not None
            assert reg.get("encoder", encoder).spec.option("output_stride") is None or "cannot dilate" in message
        else:
            needed = int(message.split("at least ")[1].split()[0])
            assert len(declared_info(reg, encoder).channels) < needed, message


@pytest.mark.slow
@pytest.mark.parametrize("arch", architectures())
def test_export_matches_eager(reg, arch):
    model = build(reg, arch, "resnet34").eval()
    x = torch.randn(1, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", architectures())
def test_one_input_channel(arch):
    model = zoo.create_model(arch, encoder="resnet34", in_channels=1, base_channels=4, **NARROW.get(arch, {})).eval()
    assert model(torch.randn(1, 1, 48, 40)).shape == (1, 1, 48, 40)


@pytest.mark.slow  # every architecture at full width (~8 s); test_parity checks the counts against smp at 64 px
def test_declared_parameter_counts():
    """Every architecture that declares its count at defaults (what `zoo info` shows) has it."""
    for entry in zoo.default_registry().entries("architecture"):
        if entry.spec.params_at_defaults is not None:
            assert count_parameters(zoo.create_model(entry.name)) == entry.spec.params_at_defaults, entry.name
    assert zoo.default_registry().get("architecture", "unet").spec.params_at_defaults == 31_037_633  # 31.04M
    assert abs(24_720_284 / 24.7e6 - 1) < 0.03


def test_resnet34_unet_matches_the_reports_layout():
    model = zoo.create_model("resnet34_unet")
    ups = [(m.in_channels, m.out_channels) for m in model.decoder.ups]
    assert ups == [(768, 384), (288, 144), (160, 80), (96, 48)]
    assert [len(getattr(model.encoder, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert model.encoder.conv1.kernel_size == (7, 7)


def test_unet_readme_example():
    assert zoo.create_model("unet")(torch.randn(2, 3, 70, 90)).shape == (2, 1, 70, 90)


@pytest.mark.parametrize("backbone", ["efficientnet_b0", "convnext_atto"])
def test_timm_backbone_trains_one_step(backbone):
    model = zoo.create_model("unet", encoder=backbone)
    loss_fn = zoo.create_loss("bce+dice")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 64, 64), (torch.rand(4, 1, 64, 64) > 0.5).float()
    model.eval()  # fixed BatchNorm statistics, so the two losses are comparable
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_fn(model(x), y)
    assert torch.isfinite(loss) and after < loss


def test_encoder_weights_from_local_safetensors(tmp_path):
    from safetensors.torch import save_file

    source = zoo.create_model("resnet34_unet", base_channels=8).encoder
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "enc.safetensors"))
    loaded = zoo.create_model("resnet34_unet", base_channels=8, weights=str(tmp_path / "enc.safetensors")).encoder
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
    with pytest.raises(WeightsError, match="pickled checkpoint, which zoo never loads"):
        zoo.create_model("resnet34_unet", weights=str(tmp_path / "enc.pth"))
    with pytest.raises(WeightsError, match="shape mismatch|missing"):
        zoo.create_model("resnet34_unet", base_channels=16, weights=str(tmp_path / "enc.safetensors"))


def test_timm_checkpoint_weights(tmp_path):
    import timm
    from safetensors.torch import save_file

    full = timm.create_model("resnet18", pretrained=False)  # a classifier checkpoint, head included
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, str(tmp_path / "r18.safetensors"))
    model = zoo.create_model("unet", encoder="timm:resnet18", weights=str(tmp_path / "r18.safetensors"))
    torch.testing.assert_close(model.encoder.model.conv1.weight, full.conv1.weight)


def test_bad_options_name_the_valid_ones():
    with pytest.raises(OptionError, match="unknown option 'width'; valid: base_channels, classes, depth"):
        zoo.create_model("unet", width=3)
    with pytest.raises(OptionError, match="base_channels must be an integer in"):
        zoo.create_model("unet", base_channels="wide")


@pytest.mark.slow
@pytest.mark.parametrize("arch", architectures())
def test_onnx_export_of_every_architecture(reg, arch, tmp_path):
    """`zoo export` of each architecture: its graph is run in onnxruntime at two sizes that are not
    multiples of the stride and compared with PyTorch (an error otherwise)."""
    pytest.importorskip("onnxruntime")
    from zoo.engine.export import export

    weights = zoo.save_model(build(reg, arch, "resnet34").eval(), tmp_path / "m.safetensors")
    assert export(weights, tmp_path / "m.onnx", registry=reg).stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("arch", architectures())
def test_torch_compile_with_dynamic_sizes(reg, arch):
    """torch.compile captures each architecture as one graph (``fullgraph``: no graph break, no eager
    fallback) with dynamic sizes, and serves two sizes that are not multiples of the stride, equal to
    eager. Dynamo's own backend keeps it to seconds on CPU; test_engine's --compile run uses inductor."""
    import torch._dynamo

    model = build(reg, arch, "resnet34").eval()
    compiled = torch.compile(model, backend="eager", dynamic=True, fullgraph=True)
    # frames shared across the tests (resnet34's) must not hit the recompile limit and run eagerly
    with torch._dynamo.config.patch(recompile_limit=256, accumulated_recompile_limit=4096):
        for h, w in ((63, 77), (97, 65)):
            x = torch.randn(1, 3, h, w)
            with torch.no_grad():
                torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-3)
