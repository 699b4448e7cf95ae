"""Global pose normalisation on hand-made sequences: EDN's statistics, interpolation, anchor; method choice."""

from __future__ import annotations

import numpy as np
import pytest

from dancenow_utils.pose.formats import joint
from dancenow_utils.pose.keypoints import Person
from dancenow_utils.pose.normalize import (
    DEFAULT_METHOD,
    METHODS,
    EdnNormalizer,
    EdnVideoStats,
    PoseNormalizer,
    ProjectNormalizer,
    edn_measure,
    normalize_sequence,
)
from dancenow_utils.pose.smoothing import smooth_sequence


def person(ankle: float, height: float, cx: float = 100.0, lift: float = 0.0, nose: bool = True) -> Person:
    """A standing figure: lower ankle at y=``ankle``, nose ``height`` above it at x=``cx`` (the other ankle
    ``lift`` px higher, so EDN's height is measured to the ankles' midpoint)."""
    b = np.zeros((25, 3), np.float32)

    def put(name: str, x: float, y: float) -> None:
        b[joint(name)] = (x, y, 1.0)

    put("RAnkle", cx - 5, ankle)
    put("LAnkle", cx + 5, ankle - lift)
    if nose:
        put("Nose", cx, ankle - lift / 2 - height)
    put("Neck", cx, ankle - 0.85 * height)
    put("MidHip", cx, ankle - 0.5 * height)
    put("RHip", cx - 6, ankle - 0.5 * height)
    put("LHip", cx + 6, ankle - 0.5 * height)
    put("REar", cx - 4, ankle - height - 2)
    put("LEar", cx + 4, ankle - height + 2)
    return Person(b)


def seq(pairs: list[tuple[float, float]], cx: float = 100.0) -> list[Person | None]:
    return [person(a, h, cx) for a, h in pairs]


# ------------------------------------------------------------------------------------------------ measurements

def test_edn_measure_height_to_ankle_midpoint_and_lower_ankle():
    h, a = edn_measure(person(200, 100, lift=20))
    assert a == 200  # the lower ankle (larger y)
    assert h == pytest.approx(100)  # nose to the ankles' midpoint (190), straight line
    p = person(200, 100, nose=False)  # no nose: the midpoint of both ears (y = 100) is the head
    assert edn_measure(p) == pytest.approx((100.0, 200.0))
    p.body[joint("LEar"), 2] = 0  # no nose and only one ear: not measured
    assert edn_measure(p) is None
    q = person(200, 100)
    q.body[joint("LAnkle"), 2] = 0  # an ankle missing: not measured
    assert edn_measure(q) is None


def test_edn_close_median_far():
    # close = max; median = 180; far = the farthest position within (180 - 0.5 * (200 - 180), 180) = (170, 180)
    ankles = [150, 172, 175, 180, 185, 190, 200]
    st = EdnVideoStats.from_people(seq([(a, 100) for a in ankles]))
    assert (st.close, st.median, st.far) == (200, 180, 172)  # 150 is farther than the window: not the far end
    # nothing strictly inside the window (EDN would crash): far falls back to the median
    st = EdnVideoStats.from_people(seq([(a, 100) for a in [150, 170, 180, 185, 200]]))
    assert st.far == 180
    # median_frac widens the window
    st = EdnVideoStats.from_people(seq([(a, 100) for a in ankles]), median_frac=2.0)
    assert st.far == 150


def test_edn_end_heights_band_and_close_reset():
    # source: close 200, median 180, far 172, range 28 -> band 1.4 px around each end
    src = [(200, 100), (200, 98), (199, 101), (190, 95), (185, 95), (180, 90), (180, 90), (175, 90), (173, 82),
           (172, 80), (150, 70)]
    st = EdnVideoStats.from_people(seq(src))
    assert (st.close, st.median, st.far) == (200, 180, 172)
    assert st.height_near(200, 1.4) == 101  # the largest height within the band
    assert st.height_near(172, 1.4) == 82  # 175 (height 90) is outside the band
    assert st.height_near(160, 1.4) == 70  # empty band: the nearest frame (EDN would use 0)

    # target = the source moved down 100 px and twice as tall (same ankle range): both end scales are 2
    tgt = [(a + 100, 2 * h) for a, h in src]
    norm = EdnNormalizer.fit(seq(src), seq(tgt), frame_width=200)
    assert norm.scale_close == pytest.approx(2.0) and norm.scale_far == pytest.approx(2.0)

    # a source frame 20 % taller than the close-end height anywhere in the video resets the close height to it
    tall = [(a, 121.2 if a == 190 else h) for a, h in src]
    norm = EdnNormalizer.fit(seq(tall), seq(tgt), frame_width=200)
    assert norm.scale_close == pytest.approx(202 / 121.2)
    assert norm.scale_far == pytest.approx(2.0)  # the far height is never reset


def test_edn_small_source_range_keeps_slope_one():
    src = seq([(a, 100) for a in [150, 172, 175, 180, 185, 190, 200]])  # close 200, far 172: range 28
    wide = seq([(a, 100) for a in [300, 344, 350, 360, 370, 380, 400]])  # close 400, far 344: range 56
    norm = EdnNormalizer.fit(src, wide, frame_width=200)
    # the target's range is shrunk to 28 around its middle (372)
    assert (norm.target_close, norm.target_far) == pytest.approx((386, 358))
    narrow = seq([(a, 100) for a in [300, 311, 312, 315, 317, 320, 330]])  # close 330, far 311: range 19
    norm = EdnNormalizer.fit(src, narrow, frame_width=200)
    assert (norm.target_close, norm.target_far) == (330, 311)  # compressed onto it as it is


# ----------------------------------------------------------------------------------------- applying the scale

def fixed() -> EdnNormalizer:
    return EdnNormalizer(source_close=200, source_far=100, target_close=350, target_far=300, scale_close=2.0,
                         scale_far=1.0, anchor=(50.0, 150.0))


def test_edn_interpolates_and_extrapolates():
    n = fixed()
    assert n.params(100) == pytest.approx((1.0, 200))  # far end: scale_far, ankle onto the target's far (300)
    assert n.params(200) == pytest.approx((2.0, 150))  # close end: ankle onto the target's close (350)
    assert n.params(150) == pytest.approx((1.5, 175))  # halfway
    assert n.params(250) == pytest.approx((2.5, 125))  # beyond the close end: extrapolated, not clipped
    assert n.params(50) == pytest.approx((0.5, 225))  # beyond the far end


def test_edn_scales_about_the_fixed_anchor_and_shifts_vertically():
    n = fixed()
    p = Person(np.zeros((25, 3), np.float32))
    p.body[0] = (50, 150, 1)  # at the anchor
    p.body[1] = (70, 130, 1)
    out = n.apply(p, 2.0, 10.0)
    assert out.body[0, :2] == pytest.approx((50, 160))  # the anchor only moves by the vertical shift
    assert out.body[1, :2] == pytest.approx((50 + 2 * 20, 150 + 2 * -20 + 10))


def test_edn_anchor_is_frame_centre_at_first_measured_ankle():
    frames = [None, person(190, 100, cx=60), person(200, 100, cx=60), person(180, 100, cx=60), person(195, 100, cx=60)]
    frames[1].body[joint("Nose"), 2] = 0  # not measurable (no nose) ...
    frames[1].body[joint("LEar"), 2] = 0  # ... nor both ears
    target = seq([(a, 100) for a in (300, 290, 280, 295)])
    norm = EdnNormalizer.fit(frames, target, frame_width=640)
    assert norm.anchor == (320.0, 200.0)
    # without the frame width: the source's median hip x
    assert EdnNormalizer.fit(frames, target).anchor == (60.0, 200.0)


def test_edn_translation_is_only_vertical():
    src = [person(a, 100, cx=60) for a in (200, 190, 180, 195, 185)]
    tgt = [person(a, 100, cx=300) for a in (400, 390, 380, 395, 385)]  # same heights, elsewhere in the frame
    out = PoseNormalizer.fit(src, tgt, "edn", frame_width=640)(src)
    for p, q in zip(src, out):
        assert q.body[:, 0] == pytest.approx(p.body[:, 0])  # x untouched: scale 1, no re-centring
        assert q.body[joint("RAnkle"), 1] == pytest.approx(p.body[joint("RAnkle"), 1] + 200)
    # the project's method moves the hips onto the target's
    out = PoseNormalizer.fit(src, tgt, "project")(src)
    assert np.median([q.body[joint("MidHip"), 0] for q in out]) == pytest.approx(300)


def test_edn_unmeasured_frames_reuse_the_last_scale_and_shift():
    src = seq([(a, 100 + (a - 180)) for a in (200, 190, 180, 175, 185, 195)])
    tgt = seq([(a, 200 + (a - 280)) for a in (300, 290, 280, 275, 285, 295)])
    norm = PoseNormalizer.fit(src, tgt, "edn", frame_width=200)
    broken = [p.copy() for p in src]
    for i in (0, 3):
        broken[i].body[joint("LAnkle"), 2] = 0
    out = norm(broken)
    ref = norm.mapping
    for i, prev in ((0, 1), (3, 2)):  # a leading unmeasured frame takes the first measured frame's values
        scale, shift = ref.params(edn_measure(src[prev])[1])
        assert out[i].body[joint("Nose"), :2] == pytest.approx(ref.apply(broken[i], scale, shift).body[0, :2])
    # a sequence with no measurable frame is still mapped (at the close end), none dropped
    out = norm(broken[:1])
    assert out[0].body[0, :2] == pytest.approx(ref.apply(broken[0], *ref.params(ref.source_close)).body[0, :2])


def test_edn_one_ankle_level_falls_back_to_one_scale():
    src = seq([(200, h) for h in (100, 98, 99, 97)])  # never moves in depth: EDN's code would crash
    tgt = seq([(300, h) for h in (150, 147, 148)])
    norm = EdnNormalizer.fit(src, tgt, frame_width=200)
    assert norm.params(200) == pytest.approx((1.5, 100))
    assert norm.params(190) == pytest.approx((1.5, 100))  # a jump is kept (shift, no re-pinning)


# ------------------------------------------------------------------------------------------- choosing a method

def test_invalid_method_is_rejected_with_the_valid_ones():
    s = seq([(a, 100) for a in (200, 190, 180)])
    for call in (lambda: PoseNormalizer.fit(s, s, "EDN"), lambda: normalize_sequence(s, s, "paper")):
        with pytest.raises(ValueError, match="method=.*'edn', 'project'"):
            call()
    assert set(METHODS) == {"edn", "project"} and DEFAULT_METHOD in METHODS


def test_default_call_as_the_extractor_makes_it():
    src = seq([(a, 100) for a in (200, 190, 180, 195)], cx=60)
    tgt = seq([(a, 150) for a in (300, 290, 280, 295)], cx=300)
    norm = PoseNormalizer.fit(src, tgt)
    assert norm.method == DEFAULT_METHOD
    out = norm(src + [None])
    assert out[-1] is None and all(isinstance(p, Person) for p in out[:-1])
    assert isinstance(PoseNormalizer.fit(src, tgt, "project").mapping, ProjectNormalizer)


def test_too_few_frames_names_the_video():
    good = seq([(a, 100) for a in (200, 190, 180)])
    for method in METHODS:
        with pytest.raises(ValueError, match="target video"):
            PoseNormalizer.fit(good, good[:2], method)


def test_normalize_sequence_order():
    rng = np.random.default_rng(0)
    raw = [person(a, 100 + 0.5 * (a - 180), cx=60) for a in 190 + 10 * np.sin(np.arange(20) / 3)]
    for p in raw:
        p.body[p.body[:, 2] > 0, :2] += rng.normal(0, 1, (int((p.body[:, 2] > 0).sum()), 2)).astype(np.float32)
    tgt = seq([(a, 150 + (a - 280)) for a in (300, 290, 280, 295, 285)], cx=300)

    def body(ppl):
        return np.stack([p.body for p in ppl])

    edn = normalize_sequence(raw, tgt, "edn", smooth_window=5, frame_width=120)
    sm = smooth_sequence(raw, window=5)
    want = smooth_sequence(PoseNormalizer.fit(sm, tgt, "edn", 120)(raw), window=5)  # normalise raw, then smooth
    assert body(edn) == pytest.approx(body(want))
    assert body(edn) != pytest.approx(body(PoseNormalizer.fit(sm, tgt, "edn", 120)(sm)))  # the order matters
    proj = normalize_sequence(raw, tgt, "project", smooth_window=5)
    assert body(proj) == pytest.approx(body(PoseNormalizer.fit(sm, tgt, "project")(sm)))  # smooth, then normalise
