import numpy as np
import pytest

from dragstream_widget import DragStreamWidget, load_model
from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG, drag_config_of
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.random_model import random_backend
from dragstream_widget.models.toyworld.model import WEIGHTS_DIR, ToyWorldModel
from dragstream_widget.models.toyworld.world import render_clip, scene_from_prompt, segment_object
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

PROMPT = "a red circle and a blue square on a striped background"


@pytest.mark.parametrize("config", [TOY_DRAG_CONFIG, TOY_FAST_EDIT_CONFIG], ids=["toy", "fast_edits"])
def test_shipped_model_streams_from_given_frames_and_a_drag_moves_the_object(config):
    backend = load_model()
    clip = render_clip(scene_from_prompt(PROMPT, np.random.default_rng(1)), 3)
    session = StreamSession(backend, PROMPT, seed=0, start_frames=clip.frames, config=config)
    assert np.abs(session.frames().astype(int) - clip.frames.astype(int)).mean() < 8  # codec round trip
    session.step()
    red = segment_object(session.frames()[-1], "red", 90)
    assert red.sum() > 10, "the red circle should survive the first generated block"
    ys, xs = np.nonzero(red)
    handle = (float(xs.mean()), float(ys.mean()))
    target = (min(63.0, handle[0] + 8), handle[1])
    region = HandleRegion(red, Operation.TRANSLATE, handle, (target,))
    edited = session.edit(DragInstruction(Mode.EDIT, (64, 64), (region,)))
    assert len(edited.losses) == config.for_edits(1).iterations  # one segment, the edit's own settings
    ys, xs = np.nonzero(segment_object(session.frames()[-1], "red", 90))
    moved = xs.mean() - handle[0]
    assert moved > 3.0, f"the edit moved the circle by {moved:.1f} px of 8"
    assert abs(ys.mean() - handle[1]) < 3.0


def test_the_toy_model_streams_with_the_commit_folded_into_the_last_step():
    from dragstream_widget.models.toyworld.model import FOLDED_COMMIT

    backend = load_model(**FOLDED_COMMIT)
    assert backend.commit_at_last_step and backend.sampler.steps == (1000, 750, 500, 100)
    assert backend.commit_sigma == backend.sampler.sigma(3) < 0.3  # within the trained context noise
    clip = render_clip(scene_from_prompt(PROMPT, np.random.default_rng(1)), 3)
    session = StreamSession(backend, PROMPT, seed=0, start_frames=clip.frames, config=TOY_DRAG_CONFIG)
    passes = []
    (backend.streaming_transformer or backend.transformer).register_forward_hook(lambda *_: passes.append(1))
    for _ in range(2):
        session.step()
    assert len(passes) == 2 * 4 and session.cache.num_cached_frames == 9
    assert segment_object(session.frames()[-1], "red", 90).sum() > 10  # the circle is still there


def test_backends_with_other_streaming_settings_share_one_set_of_weights():
    from dragstream_widget.models.toyworld.model import FOLDED_COMMIT

    model = ToyWorldModel.load(WEIGHTS_DIR)
    saved, folded = model.backend(), model.backend(**FOLDED_COMMIT)
    assert saved.transformer is folded.transformer
    assert saved.sampler.steps == (1000, 750, 500, 250) and not saved.commit_at_last_step
    assert folded.sampler.steps == (1000, 750, 500, 100) and folded.commit_at_last_step
    assert model.config.steps == (1000, 750, 500, 250)  # the model's own config is left as it was


def test_sessions_and_widgets_on_the_toy_model_take_its_tuned_drag_settings_unless_given_others():
    backend = load_model()
    assert backend.name == "toyworld" and drag_config_of(backend) == TOY_DRAG_CONFIG
    assert StreamSession(backend, PROMPT).config == TOY_DRAG_CONFIG
    assert StreamSession(backend, PROMPT, config=DragConfig()).config == DragConfig()
    assert (
        StreamSession(random_backend(), "a prompt").config == DragConfig()
    )  # no tuned settings: the paper's
    widget = DragStreamWidget(backend, PROMPT)
    try:
        assert widget.session.config == TOY_DRAG_CONFIG
    finally:
        widget.close()
