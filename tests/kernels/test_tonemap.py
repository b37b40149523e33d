"""HDR to SDR: the PQ and HLG curves hit their published reference points; HDR reference white
(203 cd/m², BT.2408) is SDR white when nothing is brighter; the tone map keeps black black and
mid-tones as they are, reaches white at the peak, never reverses order and keeps hues."""

from __future__ import annotations

import pytest
import torch

from animated_previews.kernels import compiled, tonemap_scan
from animated_previews.kernels.tonemap import (DEFAULT_PEAK_NITS, KNEE, REFERENCE_WHITE_NITS, bt1886_inverse,
                                               bt2020_to_bt709, hdr_to_sdr, hlg_to_linear, pq_to_linear, rolloff,
                                               rolloff_rate)


def grey(values: list[float]) -> torch.Tensor:
    """[1, 3, 1, n] of equal R'G'B' (a neutral ramp)."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1).expand(1, 3, 1, -1).contiguous()


@pytest.mark.parametrize("code,nits", [(0.0, 0.0), (0.5081, 100.0), (0.5807, 203.0), (0.7518, 1000.0), (1.0, 10000.0)])
def test_pq_decodes_to_absolute_luminance(code, nits):
    """SMPTE ST 2084 code values of 100, 203, 1000 and 10000 cd/m² (BT.2408 table 1)."""
    assert float(pq_to_linear(torch.tensor(code))) * REFERENCE_WHITE_NITS == pytest.approx(nits, rel=0.01, abs=0.01)


def test_hlg_reference_white_is_203_nits_on_a_1000_nit_display():
    """BT.2408: HLG 75 % is HDR reference white, 203 cd/m² with the 1000 cd/m² OOTF."""
    linear = hlg_to_linear(grey([0.0, 0.75, 1.0]))[0, 0, 0] * REFERENCE_WHITE_NITS
    assert float(linear[0]) == 0.0
    assert float(linear[1]) == pytest.approx(203.0, rel=0.02)
    assert float(linear[2]) == pytest.approx(1000.0, rel=0.01)


@pytest.mark.parametrize("transfer,peak_code", [("pq", 0.7518), ("hlg", 1.0)])
def test_a_grey_ramp_maps_black_to_black_peak_to_white_and_stays_in_order(transfer, peak_code):
    ramp = [i / 40 * peak_code for i in range(41)]
    sdr = hdr_to_sdr(grey(ramp), transfer)[0]
    values = sdr[0, 0].tolist()
    assert values[0] == 0 and values[-1] == 255
    assert values == sorted(values)
    assert torch.equal(sdr[0], sdr[1]) and torch.equal(sdr[1], sdr[2])  # neutral stays neutral


def pq_code(nits: float) -> float:
    """The SMPTE ST 2084 code of an absolute luminance."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = (nits / 10000) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def sdr_grey(transfer: str, codes: list[float], peak_nits: float | None = None) -> list[int]:
    sdr = hdr_to_sdr(grey(codes), transfer, peak_nits)[0]
    return sdr[1, 0].tolist()


def test_reference_white_is_sdr_white_when_nothing_is_brighter():
    """A PQ stream whose MaxCLL is 203 cd/m² (SDR material placed in HDR as BT.2408 says) comes
    back as it was: 203 at 255, 100 cd/m² where SDR shows half of white's light."""
    white, half = sdr_grey("pq", [pq_code(203), pq_code(101.5)], peak_nits=203)
    assert white == 255
    assert half == round(0.5 ** (1 / 2.4) * 255)  # 191: BT.1886's code for half of white's light


@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_mid_tones_below_the_knee_are_kept_and_highlights_roll_off_to_the_peak(transfer):
    """With the default 1000 cd/m² peak: light up to KNEE of reference white (about 100 cd/m²) is
    shown as it is; reference white lands below SDR white, leaving room for what is brighter;
    the peak is white. HLG's 75 % is its reference white (BT.2408)."""
    if transfer == "pq":
        codes = [pq_code(40), pq_code(203 * KNEE * 0.99), pq_code(203), pq_code(DEFAULT_PEAK_NITS)]
    else:
        codes = [0.3, 0.5, 0.75, 1.0]
    low, knee, white, peak = sdr_grey(transfer, codes)
    if transfer == "pq":
        assert low == round((40 / 203) ** (1 / 2.4) * 255)
        assert knee == round((KNEE * 0.99) ** (1 / 2.4) * 255)
    else:  # BT.2100: scene light E, shown at 1000 cd/m² x E^1.2 on the nominal display
        for code, got in ((0.3, low), (0.5, knee)):
            light = 1000 * (code * code / 3) ** 1.2 / 203  # both below the knee: shown as they are
            assert light < KNEE and got == round(light ** (1 / 2.4) * 255)
    assert 215 <= white <= 235  # 228: reference white rolled off to 0.765 of SDR white's light
    assert peak == 255


def test_the_rolloff_is_continuous_in_value_and_slope_at_the_knee_and_reaches_white_at_the_peak():
    """FFmpeg's tonemap=mobius with param = KNEE is the same curve: a Möbius map is fixed by
    these three conditions."""
    peak = DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS
    x = torch.tensor([KNEE - 1e-6, KNEE, KNEE + 1e-6, peak], dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    y = rolloff(x, peak)[0, 0, 0]
    assert float(y[1]) == pytest.approx(KNEE)
    assert float((y[2] - y[0]) / 2e-6) == pytest.approx(1.0, abs=1e-4)
    assert float(y[3]) == pytest.approx(1.0)
    assert rolloff_rate(1.0) == 0.0 and rolloff_rate(0.5) == 0.0  # a peak at or below white: nothing to compress


def test_a_higher_peak_compresses_the_highlights_more_and_leaves_the_mid_tones():
    codes = [pq_code(80), pq_code(203), pq_code(600)]
    at_1000 = sdr_grey("pq", codes, 1000)
    at_4000 = sdr_grey("pq", codes, 4000)
    assert at_1000[0] == at_4000[0]
    assert at_4000[1] < at_1000[1] and at_4000[2] < at_1000[2]


def test_uint16_input_is_full_range_sixteen_bit():
    codes = torch.tensor([0, 33299, 65535], dtype=torch.int32)  # PQ 0, ~100 nits, 10000 nits
    planes = codes.view(1, 1, 1, 3).expand(1, 3, 1, 3).contiguous()
    as_float = grey([0.0, 33299 / 65535, 1.0])
    assert torch.equal(hdr_to_sdr(planes, "pq"), hdr_to_sdr(as_float, "pq"))


def test_hues_survive_primaries_and_highlight_compression():
    """A BT.709 red, green and blue written in BT.2020 come out as that primary, not mixed."""
    to_2020 = torch.tensor([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])  # BT.2087
    primaries_709 = torch.eye(3) * 5.0  # 500 cd/m², well into the compressed highlights
    linear_2020 = (to_2020 @ primaries_709).T.reshape(3, 3, 1, 1)
    assert torch.allclose(bt2020_to_bt709(linear_2020).reshape(3, 3), primaries_709, atol=1e-3)
    # back to PQ code values, then through the whole map
    code = pq_code((linear_2020 * 100).clamp_min(0))
    sdr = hdr_to_sdr(code, "pq").reshape(3, 3).int()
    for k in range(3):
        others = [sdr[k, j] for j in range(3) if j != k]
        assert sdr[k, k] > 150 and max(others) < 25, sdr


def test_an_unknown_transfer_is_refused():
    with pytest.raises(ValueError, match="transfer"):
        hdr_to_sdr(grey([0.5]), "hlg2")


def codes_of(kind: str, count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """[N, 3, H, W] R'G'B' as each caller hands them: the decoder's uint16 channels last, int32
    planes (out-of-range codes among them), floats from the resizing fit (planar or channels
    last); random over all 16 bits, with a grey ramp, black and full-scale pixels in frame 0."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 65536, (count, height, width, 3), generator=generator, dtype=torch.int32)
    ramp = torch.linspace(0, 65535, width).round().to(torch.int32)
    codes[0, 0] = ramp.view(width, 1)
    codes[0, -1, 0], codes[0, -1, -1] = 0, 65535
    if kind == "uint16":
        return codes.to(torch.uint16).permute(0, 3, 1, 2)
    if kind == "int32":
        codes[-1, -1, -1] = torch.tensor([-7, 70000, 65535])
        return codes.permute(0, 3, 1, 2).contiguous()
    floats = codes.to(torch.float32).div_(65535).permute(0, 3, 1, 2)
    return floats.contiguous() if kind == "float" else floats.contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(tonemap_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
@pytest.mark.parametrize("kind", ["uint16", "int32", "float", "float channels last"])
@pytest.mark.parametrize("size", [(1, 1), (3, 5), (37, 50), (90, 160)])
def test_the_compiled_tone_map_gives_the_torch_kernels_bytes(monkeypatch, transfer, kind, size):
    """Sizes below, at and past a block of the loop; every caller's input kind; pixel for pixel."""
    rgb = codes_of(kind, 3, *size, seed=size[0] + len(kind))
    looped = hdr_to_sdr(rgb, transfer)
    monkeypatch.setattr(compiled, "ENABLED", False)
    plain = hdr_to_sdr(rgb, transfer)
    assert looped.shape == plain.shape == (3, 3, *size)
    assert torch.equal(looped, plain)
    assert looped.is_contiguous(memory_format=torch.channels_last)  # the layout the remap reads


@pytest.mark.skipif(tonemap_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_the_compiled_tone_map_agrees_on_a_million_random_colours(monkeypatch, transfer):
    """Rounding ties are rare: a million colours make one likely to show if the two disagreed
    on how a step rounds (they did, by one code, while torch's float32 sqrt was used)."""
    rgb = codes_of("uint16", 4, 500, 500, seed=7)
    looped = hdr_to_sdr(rgb, transfer)
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert torch.equal(looped, hdr_to_sdr(rgb, transfer))


@pytest.mark.skipif(tonemap_scan.SCAN is None, reason="numba is not installed: the torch kernel is the only one")
@pytest.mark.parametrize("primaries", ["p3", "bt709"])
def test_the_compiled_tone_map_agrees_for_other_primaries_and_a_given_peak(monkeypatch, primaries):
    rgb = codes_of("uint16", 2, 90, 160, seed=5)
    looped = hdr_to_sdr(rgb, "pq", 4000.0, primaries)
    assert not torch.equal(looped, hdr_to_sdr(rgb, "pq", 4000.0))  # the primaries matter
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert torch.equal(looped, hdr_to_sdr(rgb, "pq", 4000.0, primaries))


def test_a_nan_from_a_float_caller_maps_to_black_in_both_kernels(monkeypatch):
    """A NaN reads no table out of bounds (the loop does not check): it becomes code 0."""
    rgb = grey([0.5, 0.25])
    rgb[0, :, 0, 0] = float("nan")
    expected = hdr_to_sdr(grey([0.0, 0.25]), "pq")
    assert torch.equal(hdr_to_sdr(rgb, "pq"), expected)
    monkeypatch.setattr(compiled, "ENABLED", False)
    assert torch.equal(hdr_to_sdr(rgb, "pq"), expected)


@pytest.mark.parametrize("kernel", ["compiled", "torch"])
@pytest.mark.parametrize("transfer", ["pq", "hlg"])
def test_the_tables_give_the_formulas_codes_but_on_rare_rounding_ties(monkeypatch, transfer, kernel):
    """The kernel reads the curves from tables (the signal's inverse transfer per 16-bit code, the
    output per step of the square root of display light); the formulas, in float64, are the
    reference: of 300,000 random values 0.04% (PQ) and 0.08% (HLG) differ, by one code."""
    monkeypatch.setattr(compiled, "ENABLED", kernel == "compiled")
    rgb = codes_of("float", 2, 200, 250, seed=11)
    to_linear = pq_to_linear if transfer == "pq" else hlg_to_linear
    linear = bt2020_to_bt709(to_linear(rgb.double())).clamp_min(0)
    want = (bt1886_inverse(rolloff(linear, DEFAULT_PEAK_NITS / REFERENCE_WHITE_NITS)) * 255).round()
    got = hdr_to_sdr(rgb, transfer).to(torch.float64)
    differ = got != want
    assert differ.double().mean() < 0.002
    assert (got - want).abs().max() <= 1
