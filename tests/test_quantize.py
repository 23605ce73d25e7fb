import numpy as np
import pytest
import torch

from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.models.quantize import int8_blocks_copy
from dragstream_widget.models.toyworld.model import FLOAT_STREAMING, WEIGHTS_DIR, ToyWorldModel
from dragstream_widget.models.toyworld.world import render_clip, scene_from_prompt, segment_object
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

PROMPT = "a red circle and a blue square on a striped background"


def test_the_int8_copy_predicts_close_to_the_float_model_and_leaves_it_alone():
    model = ToyWorldModel.load(WEIGHTS_DIR)
    float_backend = model.backend(**FLOAT_STREAMING)
    assert float_backend.streaming_transformer is None
    before = {k: v.clone() for k, v in model.transformer.state_dict().items()}
    quantized = int8_blocks_copy(model.transformer)
    linear_types = {type(m) for m in quantized.blocks.modules() if "Linear" in type(m).__name__}
    assert linear_types and torch.nn.Linear not in linear_types  # every block linear is int8
    for name, value in model.transformer.state_dict().items():
        assert torch.equal(value, before[name])
    z = torch.randn(1, *float_backend.layout.block_shape, generator=torch.Generator().manual_seed(0))
    prompt = float_backend.encode_prompt(PROMPT)
    with torch.no_grad():
        reference = float_backend.denoise(z, 1, float_backend.new_cache(), prompt).x0
        float_backend.streaming_transformer = quantized
        fast = float_backend.denoise(z, 1, float_backend.new_cache(), prompt).x0
    assert not torch.equal(fast, reference)  # the copy did run
    assert (fast - reference).abs().mean() < 0.1 * reference.abs().mean()  # rollouts: model card


def test_int8_streaming_uses_the_copy_for_plain_passes_and_the_float_model_for_drags():
    backend = ToyWorldModel.load(WEIGHTS_DIR).backend()  # the shipped setting
    passes = {"float": 0, "int8": 0}
    backend.transformer.register_forward_hook(lambda *_: passes.__setitem__("float", passes["float"] + 1))
    backend.streaming_transformer.register_forward_hook(
        lambda *_: passes.__setitem__("int8", passes["int8"] + 1)
    )
    clip = render_clip(scene_from_prompt(PROMPT, np.random.default_rng(1)), 3)
    session = StreamSession(backend, PROMPT, seed=0, start_frames=clip.frames, config=TOY_DRAG_CONFIG)
    session.step()
    assert passes == {"float": 0, "int8": 1 + 5}  # the given frames' commit, then 4 steps and a commit
    before = session.frames().copy()
    red = segment_object(session.frames()[-1], "red", 90)
    ys, xs = np.nonzero(red)
    handle = (float(xs.mean()), float(ys.mean()))
    region = HandleRegion(red, Operation.TRANSLATE, handle, ((min(63.0, handle[0] + 8), handle[1]),))
    passes.update(float=0, int8=0)
    session.edit(DragInstruction(Mode.EDIT, (64, 64), (region,)))
    iterations = TOY_DRAG_CONFIG.for_edits(1).iterations
    assert passes["float"] >= iterations  # the optimisation (and its references) on the float model
    steps_after = backend.sampler.num_steps - TOY_DRAG_CONFIG.optimize_step
    assert passes["int8"] == steps_after + 1  # the remaining steps and the commit on the copy
    moved = np.nonzero(segment_object(session.frames()[-1], "red", 90))[1].mean() - handle[0]
    assert moved > 3.0, f"the edit moved the circle by {moved:.1f} px of 8"
    session.undo()
    assert np.array_equal(session.frames(), before)


def test_off_the_cpu_the_float_model_streams_alone():
    model = ToyWorldModel.load(WEIGHTS_DIR)
    assert int8_blocks_copy(model.transformer.to("meta")) is None


def test_a_torch_without_eager_quantisation_streams_the_float_model_with_a_warning(monkeypatch):
    monkeypatch.delattr(torch.ao.quantization, "quantize_dynamic")
    model = ToyWorldModel.load(WEIGHTS_DIR)
    with pytest.warns(UserWarning, match="no eager int8 quantisation"):
        fallback = model.backend()
    assert fallback.streaming_transformer is None
    opening = render_clip(scene_from_prompt(PROMPT, np.random.default_rng(1)), 3).frames
    streams = []
    for backend in (fallback, model.backend(**FLOAT_STREAMING)):
        session = StreamSession(backend, PROMPT, 0, TOY_DRAG_CONFIG, start_frames=opening)
        session.step()
        streams.append(session.frames())
    assert np.array_equal(*streams)  # the same stream as float streaming
