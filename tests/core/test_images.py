"""adamllm.images: awkward files are refused with the file named, awkward modes come out as
faithful RGB, through ``open_image``/``to_rgb`` and through the real adapter path."""
import importlib.util
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adamllm.images import MAX_ASPECT_RATIO, MAX_PIXELS, BadImage, load_rgb, open_image, to_rgb
from adamllm.io import DataError

_spec = importlib.util.spec_from_file_location("bad_images", Path(__file__).parents[1] / "fixtures" / "bad_images.py")
corpus_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus_module)

BAD_MESSAGES = {
    "corrupt": "not an image file",
    "truncated": "truncated image file",
    "zero_byte": "empty file",
    "bomb": "image too large: 400000000 pixels",
    "too_large": f"image too large: 9000 x 9000 pixels (limit {MAX_PIXELS})",
    "extreme_aspect": f"extreme aspect ratio 4000 x 2 (limit 1:{MAX_ASPECT_RATIO})",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return corpus_module.write_corpus(tmp_path_factory.mktemp("bad_images"))


@pytest.fixture(scope="module")
def qwen(tiny_checkpoints):
    from adamllm.backbone import BackboneConfig
    from adamllm.backbones.families import Qwen2VLAdapter

    return Qwen2VLAdapter(BackboneConfig(model=str(tiny_checkpoints("qwen2_vl"))))


def pixels(image) -> np.ndarray:
    return np.asarray(image).astype(int)


# -- the corpus itself ----------------------------------------------------------------------
def test_corpus_is_small_quick_and_deterministic(tmp_path):
    start = time.perf_counter()
    first = corpus_module.write_corpus(tmp_path / "a")
    assert time.perf_counter() - start < 2
    assert set(first) == set(corpus_module.BAD) | set(corpus_module.GOOD) == set(BAD_MESSAGES) | set(corpus_module.GOOD)
    assert first["bomb"].stat().st_size < 1_000_000 and first["too_large"].stat().st_size < 1_000_000
    second = corpus_module.write_corpus(tmp_path / "b")
    assert all(first[name].read_bytes() == second[name].read_bytes() for name in first)


def test_the_bomb_is_a_real_png_whose_header_claims_its_size(corpus):
    import struct

    data = corpus["bomb"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == corpus_module.BOMB_SIZE
    with pytest.raises(Image.DecompressionBombError):  # PIL alone refuses it, with a traceback
        Image.open(corpus["bomb"])


# -- refused files ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BAD_MESSAGES))
def test_bad_files_are_refused_naming_the_file(corpus, name):
    with pytest.raises(BadImage) as info:
        open_image(corpus[name])
    message = str(info.value)
    assert str(corpus[name]) in message and BAD_MESSAGES[name] in message
    assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", sorted(BAD_MESSAGES))
def test_bad_bytes_are_refused_too(corpus, name):
    with pytest.raises(BadImage, match=f"image bytes: .*{BAD_MESSAGES[name][:12]}"):
        open_image(corpus[name].read_bytes())


def test_a_missing_file_and_a_directory_are_bad_images(tmp_path):
    with pytest.raises(BadImage, match=f"{tmp_path / 'gone.png'}: no such file"):
        open_image(tmp_path / "gone.png")
    with pytest.raises(BadImage, match="a directory"):
        open_image(tmp_path)


def test_the_size_is_refused_from_the_header_before_decoding(corpus, monkeypatch):
    from PIL import ImageFile

    decoded, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or load(self))
    open_image(corpus["rgb"])
    assert decoded == [(48, 32)]
    with pytest.raises(BadImage, match="9000 x 9000"):
        open_image(corpus["too_large"])
    assert decoded == [(48, 32)]


def test_a_lowered_pil_limit_turns_its_warning_into_bad_image(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: PIL warns (not raises) here
    encoded = io.BytesIO()
    Image.new("L", (40, 40)).save(encoded, "PNG")
    with pytest.raises(BadImage, match="image bytes: image too large: 1600 pixels"):
        open_image(encoded.getvalue())


def test_in_memory_images_are_checked_too():
    with pytest.raises(BadImage, match="extreme aspect ratio 1 x 51"):
        open_image(Image.new("RGB", (1, 51)))
    assert open_image(Image.new("RGB", (1, 50))).size == (1, 50)
    with pytest.raises(BadImage, match="empty image 0 x 5"):
        open_image(Image.new("RGB", (0, 5)))


def test_a_png_cut_inside_its_header_is_not_an_image(corpus):
    with pytest.raises(BadImage, match="not an image file"):
        open_image(corpus["rgb"].read_bytes()[:30])


# -- awkward modes come out right ----------------------------------------------------------------
def test_16_bit_gradient_stays_a_gradient(corpus):
    with Image.open(corpus["gray16"]) as raw:
        assert raw.mode == "I;16"
        assert (pixels(raw.convert("RGB")) == 255).mean() > 0.95  # what convert("RGB") alone gives
    out = pixels(load_rgb(corpus["gray16"]))
    assert out.shape == (8, 256, 3)
    assert abs(out.mean() - 127.5) < 12.75 and (out == 255).mean() < 0.05
    assert (np.diff(out[0, :, 0]) >= 0).all() and out[0, 0, 0] == 0 and out[0, -1, 0] == 255
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_12_bit_data_in_16_bits_comes_out_full_range(corpus):
    out = pixels(load_rgb(corpus["gray12"]))
    assert out.min() == 0 and out.max() == 255
    assert abs(out.mean() - 127.5) < 12.75 and (out == 255).mean() < 0.05


def test_rgba_transparent_pixels_become_white_opaque_keep_their_colour(corpus):
    out = pixels(load_rgb(corpus["rgba"]))
    assert (out[:, :10] == 255).all()  # red with alpha 0: white, not red nor black
    assert (np.abs(out[:, 10:20] - 127) <= 1).all()  # half-transparent black over white: mid-grey
    assert (out[:, 20:] == corpus_module.OPAQUE_GREEN).all()


def test_la_transparent_pixels_become_white(corpus):
    out = pixels(load_rgb(corpus["la"]))
    assert (out[:, :10] == 255).all() and (out[:, 10:] == 50).all()


def test_palette_transparency_becomes_white(corpus):
    with Image.open(corpus["palette_transparent"]) as raw:
        assert raw.mode == "P" and raw.info.get("transparency") == 0
    out = pixels(load_rgb(corpus["palette_transparent"]))
    assert (out[:, :16] == 255).all() and (out[:, 16:] == corpus_module.BLUE).all()


def test_cmyk_jpeg_is_close_to_the_expected_rgb(corpus):
    with Image.open(corpus["cmyk_jpeg"]) as raw:
        assert raw.mode == "CMYK"
    out = pixels(load_rgb(corpus["cmyk_jpeg"]))
    assert np.abs(out - corpus_module.RED).max() <= 10


def test_gray_keeps_its_values(corpus):
    out = pixels(load_rgb(corpus["gray"]))
    with Image.open(corpus["gray"]) as raw:
        assert (out == pixels(raw)[..., None]).all()


@pytest.mark.parametrize("name", ["animated_gif", "animated_png"])
def test_animated_images_give_their_first_frame(corpus, name):
    with Image.open(corpus[name]) as raw:
        assert raw.n_frames == 3
    out = pixels(load_rgb(corpus[name]))
    assert (out == corpus_module.RED).all()


def test_an_animated_image_on_a_later_frame_gives_the_first_and_stays_there(corpus):
    with Image.open(corpus["animated_gif"]) as raw:
        raw.seek(2)
        assert (pixels(to_rgb(raw)) == corpus_module.RED).all()
        assert raw.tell() == 2


def test_rgb_comes_back_as_itself(corpus):
    image = open_image(corpus["rgb"])
    assert to_rgb(image) is image and (pixels(image) == corpus_module.RGB_COLOUR).all()


def test_every_good_file_comes_out_rgb_from_path_and_bytes(corpus):
    for name in corpus_module.GOOD:
        from_path, from_bytes = load_rgb(corpus[name]), load_rgb(corpus[name].read_bytes())
        assert from_path.mode == from_bytes.mode == "RGB"
        assert (pixels(from_path) == pixels(from_bytes)).all(), name


def test_high_depth_modes_in_memory():
    signed = Image.fromarray(np.array([[-1000, 0, 1000]], dtype=np.int32))
    assert signed.mode == "I" and pixels(to_rgb(signed))[0, :, 0].tolist() == [0, 128, 255]
    floats = Image.fromarray(np.array([[0.0, np.nan, 0.5, 1.0, np.inf]], dtype=np.float32))
    assert pixels(to_rgb(floats))[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    constant = Image.fromarray(np.full((4, 4), 3000, dtype=np.uint16))
    assert (pixels(to_rgb(constant)) == 0).all()  # a constant image is black (CONSTANT_IMAGE_VALUE)
    big_endian = Image.fromarray(np.array([[0, 4095]], dtype=np.uint16)).convert("I;16B")
    assert pixels(to_rgb(big_endian))[0, :, 0].tolist() == [0, 255]


def test_premultiplied_and_other_modes_in_memory():
    assert pixels(to_rgb(Image.new("La", (2, 2), (0, 0)))).min() == 255
    assert pixels(to_rgb(Image.new("RGBa", (2, 2), (0, 0, 0, 0)))).min() == 255
    assert pixels(to_rgb(Image.new("1", (2, 2), 1))).min() == 255
    assert np.abs(pixels(to_rgb(Image.new("HSV", (1, 1), (0, 255, 255)))) - (255, 0, 0)).max() <= 1
    assert np.abs(pixels(to_rgb(Image.new("LAB", (1, 1), (136, 208, 195)))) - (255, 0, 0)).max() <= 12
    assert np.abs(pixels(to_rgb(Image.new("YCbCr", (1, 1), (76, 85, 255)))) - (255, 0, 0)).max() <= 2
    rgb_with_trns = Image.new("RGB", (2, 1), (1, 2, 3))
    rgb_with_trns.putpixel((1, 0), (9, 9, 9))
    rgb_with_trns.info["transparency"] = (1, 2, 3)
    assert pixels(to_rgb(rgb_with_trns))[0].tolist() == [[255, 255, 255], [9, 9, 9]]


def test_the_input_is_not_modified():
    sixteen = Image.fromarray(np.arange(12, dtype=np.uint16).reshape(3, 4) * 300)
    rgba = Image.new("RGBA", (3, 3), (10, 20, 30, 0))
    for image in (sixteen, rgba):
        mode, data = image.mode, image.tobytes()
        to_rgb(image)
        assert image.mode == mode and image.tobytes() == data


# -- through the benchmark and adapter paths -------------------------------------------------------
def test_benchmark_open_image_delegates(corpus):
    from adamllm.benchmark import open_image as benchmark_open_image

    assert benchmark_open_image(None) is None
    assert benchmark_open_image(corpus["rgb"].read_bytes()).size == (48, 32)
    with pytest.raises(BadImage, match="truncated image file"):
        benchmark_open_image(corpus["truncated"])


def test_adapter_load_image(corpus):
    from adamllm.backbones.adapter import load_image

    for name in corpus_module.GOOD:
        assert (pixels(load_image(corpus[name])) == pixels(load_rgb(corpus[name]))).all(), name
    assert (pixels(load_image("gray16.png", root=corpus["gray16"].parent)) == pixels(load_rgb(corpus["gray16"]))).all()
    for name in BAD_MESSAGES:
        with pytest.raises(BadImage, match=BAD_MESSAGES[name][:12]):
            load_image(corpus[name])


MESSAGES = [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "A scan."}]


@pytest.mark.parametrize("name", sorted(BAD_MESSAGES))
def test_encode_turns_bad_images_into_bad_samples(qwen, corpus, name):
    from adamllm.backbone import BadSample

    with pytest.raises(BadSample, match="unreadable image") as info:
        qwen.encode(MESSAGES, [corpus[name]])
    assert str(corpus[name]) in str(info.value) and BAD_MESSAGES[name][:12] in str(info.value)


@pytest.mark.parametrize("name", corpus_module.GOOD)
def test_encode_encodes_the_good_ones(qwen, corpus, name):
    sample = qwen.encode(MESSAGES, [corpus[name]])
    assert sample["pixel_values"].numel() > 0 and sample["num_image_tokens"] > 0


def test_encode_all_drops_bad_images_as_bad_records(qwen, corpus):
    records = [{"id": name, "messages": MESSAGES, "images": [corpus[name].name]}
               for name in ("rgb", "truncated", "gray16", "bomb")]
    result = qwen.encode_all(records, image_root=corpus["rgb"].parent)
    assert result.indices == [0, 2] and result.dropped["bad_record"] == 2
    assert any("truncated image file" in problem for problem in result.problems)
