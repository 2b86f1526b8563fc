"""Video reading with PyAV on synthetic clips of known content and on real clips."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from conftest import numbered_frames, set_rotation, write_clip
from freqscope.video import list_videos, read_video


def _levels(x: torch.Tensor) -> list[int]:
    """Frame index of each numbered frame (grey level 10·i + 5)."""
    return [round(((v + 1) * 127.5 - 5) / 10) for v in x.mean(dim=(0, 1, 3, 4)).tolist()]


def test_reads_frames_in_order_in_range(numbered_clip):
    x, info = read_video(numbered_clip, frames=8)
    assert x.shape == (1, 3, 8, 32, 48) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1
    assert _levels(x) == list(range(8))
    assert info.times == pytest.approx([i / 10 for i in range(8)])


def test_stride_and_start(numbered_clip):
    x, _ = read_video(numbered_clip, frames=4, stride=3)
    assert _levels(x) == [0, 3, 6, 9]
    x, info = read_video(numbered_clip, frames=4, start=1.0)
    assert _levels(x) == [10, 11, 12, 13]
    assert info.times[0] == pytest.approx(1.0)


def test_fps_resampling_on_variable_frame_rate(clip_dir):
    pts = [0, 40, 80, 200, 210, 220, 500, 520, 900, 950]  # ms: irregular spacing
    path = write_clip(clip_dir / "vfr.mp4", numbered_frames(len(pts)), pts=pts, time_base=Fraction(1, 1000))
    x, info = read_video(path, frames=6, fps=10)  # targets 0, .1, .2, .3, .4, .5 s
    # latest frame at or before each target time
    assert _levels(x) == [0, 2, 3, 5, 5, 6]
    x, _ = read_video(path, frames=3, fps=5, start=0.5)  # 0.5, 0.7, 0.9 s
    assert _levels(x) == [6, 7, 8]


def test_fps_keeps_targets_shown_by_the_last_frame(clip_dir, recwarn):
    # 50 frames at 25 fps (grey level 5·i): frame 49 is shown from 1.96 s to 2.0 s, so at 50 fps all 100
    # targets 0 … 1.98 s exist, the last two being frame 49
    frames = np.stack([np.full((16, 16, 3), 5 * i, np.uint8) for i in range(50)])
    path = write_clip(clip_dir / "c25.mp4", frames, fps=25)
    x, info = read_video(path, frames=100, fps=50)
    assert x.shape[2] == 100 and not [w for w in recwarn if "asked for" in str(w.message)]
    level = [round((v + 1) * 127.5 / 5) for v in x.mean(dim=(0, 1, 3, 4)).tolist()]
    assert level[-4:] == [48, 48, 49, 49] and info.times[-1] == pytest.approx(1.96)
    _, info = read_video(path, frames=101, fps=50)  # a 101st target (2.0 s) is past the clip
    assert len(info.times) == 100


def test_size_resizes_short_side_and_crops_to_multiple_of_8(clip_dir):
    path = write_clip(clip_dir / "odd.mp4", numbered_frames(3, h=50, w=77))
    x, info = read_video(path, frames=3)
    assert x.shape[-2:] == (48, 72) and info.size == (48, 72)  # own size, cropped to multiples of 8
    x, _ = read_video(path, frames=3, size=20)  # 50×77 → 20×31 → 16×24
    assert x.shape[-2:] == (16, 24)


def test_hd_clip_is_capped(bunny):
    x, info = read_video(bunny, frames=2)
    assert info.source_size == (720, 1280) and x.shape[-2:] == (256, 448)


def test_rotation_metadata_is_applied(clip_dir):
    a = np.zeros((2, 32, 64, 3), np.uint8)
    a[:, :, :32] = 255  # left half white
    path = write_clip(clip_dir / "rot.mp4", a)
    set_rotation(path, 90)  # as a phone writes portrait video: display rotated 90° clockwise
    x, info = read_video(path, frames=2)
    assert info.rotation == 270 and x.shape[-2:] == (64, 32)
    top, bottom = x[0, :, 0, :32].mean().item(), x[0, :, 0, 32:].mean().item()
    assert top > 0.9 and bottom < -0.9  # the left half is on top once turned clockwise


def test_only_needed_frames_are_decoded(clip_dir):
    path = write_clip(clip_dir / "long.mp4", np.zeros((600, 16, 16, 3), np.uint8), fps=25, codec="libx264")
    _, info = read_video(path, frames=4)
    assert info.decoded <= 4
    _, info = read_video(path, frames=4, start=20.0)  # seek, not decode 500 frames
    assert info.decoded < 4 + 2 * 25  # from the keyframe before 20 s at most (x264 default GOP ≤ 250)


def test_fewer_frames_than_asked_warns_and_uses_them(numbered_clip):
    with pytest.warns(UserWarning, match="asked for 40 frames, the clip gives 24"):
        x, info = read_video(numbered_clip, frames=40)
    assert x.shape[2] == 24 and info.frames_requested == 40


def test_real_clip(bikes):
    x, info = read_video(bikes, frames=16, stride=2)
    assert x.shape == (1, 3, 16, 256, 600) and info.fps == 25
    assert x.std() > 0.2  # real content


@pytest.mark.parametrize(
    "make,msg",
    [
        (lambda d: d / "missing.mp4", "not found"),
        (lambda d: (d / "text.mp4").write_text("hello") and d / "text.mp4", "not a readable video"),
        (lambda d: d, "is a folder"),
    ],
)
def test_bad_files(tmp_path, make, msg):
    with pytest.raises((ValueError, FileNotFoundError), match=msg):
        read_video(make(tmp_path))


def test_truncated_file(tmp_path, numbered_clip):
    data = numbered_clip.read_bytes()
    bad = tmp_path / "trunc.mp4"
    bad.write_bytes(data[: len(data) // 3])  # the moov atom is at the end: nothing to index
    with pytest.raises(ValueError, match="truncated|not a readable|no decodable"):
        read_video(bad)


def test_audio_only_file(tmp_path):
    import av

    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=8000)
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        f.sample_rate = 8000
        for p in s.encode(f):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(ValueError, match="no video stream"):
        read_video(path)


def test_one_frame_and_zero_frames(clip_dir, tmp_path):
    one = write_clip(clip_dir / "one.mp4", numbered_frames(1))
    with pytest.raises(ValueError, match="only 1 frame"):
        read_video(one)
    with pytest.raises(ValueError, match="past the end"):
        read_video(one, start=100.0)
    with pytest.raises(ValueError, match="at least 2"):
        read_video(one, frames=1)


def test_tiny_frames(clip_dir):
    path = write_clip(clip_dir / "tiny.mp4", numbered_frames(3, h=6, w=6))
    with pytest.raises(ValueError, match="too small"):
        read_video(path, frames=3)


def test_list_videos(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    b = write_clip(folder / "b.mp4", numbered_frames(2))
    a = write_clip(folder / "a.mkv", numbered_frames(2))
    (folder / "notes.txt").write_text("not a clip")
    assert list_videos([folder]) == [a, b]  # sorted, videos only
    assert list_videos([b, folder]) == [b, a, b]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no video"):
        list_videos([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="not found"):
        list_videos([tmp_path / "nope.mp4"])


def test_batches_and_decoder_threads_change_no_pixel(bikes, clip_dir, monkeypatch):
    """How frames are grouped for the resize (one batch, or one frame at a time when a frame outgrows the
    batch budget) and how many decoder threads run change the speed only: the frames are bit for bit the
    same, with and without rotation and fps resampling."""
    import freqscope.video as video

    a = np.random.default_rng(0).integers(0, 256, (12, 40, 64, 3), dtype=np.uint8)
    rotated = write_clip(clip_dir / "rot_batches.mp4", a)
    set_rotation(rotated, 90)
    cases = [(bikes, dict(frames=10, size=64)), (bikes, dict(frames=6, fps=10.0)), (rotated, dict(frames=8))]
    for path, opts in cases:
        whole, _ = read_video(path, **opts)
        with monkeypatch.context() as m:
            m.setattr(video, "RESIZE_BYTES", 1)  # every frame flushed on its own
            single, _ = read_video(path, **opts)
        one_thread, _ = read_video(path, **opts, threads=1)
        assert torch.equal(whole, single) and torch.equal(whole, one_thread), (path, opts)
    with pytest.raises(ValueError, match="threads=-1"):
        read_video(bikes, frames=2, threads=-1)


def test_decoder_threads_are_no_setting():
    """`threads` changes no number, so it is not part of the settings a row is keyed by."""
    from freqscope.rows import read_options

    assert "threads" not in read_options(None)
    with pytest.raises(ValueError, match="unknown option"):
        read_options({"threads": 1})
