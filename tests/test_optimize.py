from dataclasses import replace

import numpy as np
import pytest
import torch

from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.control import RunControl
from dragstream_widget.engine.drag import ResolvedDrag, trajectory_segments
from dragstream_widget.engine.frequency import kv_lowpass_filter
from dragstream_widget.engine.losses import constraint_region, reconstruction_loss, rotation_target
from dragstream_widget.engine.optimize import optimize_block
from dragstream_widget.engine.reference import record_features, reference_features
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.engine.targets import edit_plan
from dragstream_widget.models.random_model import TINY, random_backend
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

SIZE = (32, 32)


def handle_mask() -> np.ndarray:
    mask = np.zeros(SIZE, bool)
    mask[8:16, 4:12] = True
    return mask


TRANSLATION = HandleRegion(handle_mask(), Operation.TRANSLATE, (8.0, 12.0), ((16.0, 12.0),))
# A quarter turn of the square [4, 12) x [8, 16) about its centre (8, 12): the handle, on its right
# edge, goes to the bottom edge.
ROTATION = HandleRegion(handle_mask(), Operation.ROTATE_2D, (11.5, 12.0), ((8.0, 15.5),), (8.0, 12.0))


def drag_setup(config: DragConfig, region: HandleRegion = TRANSLATION):
    backend = random_backend(TINY)
    session = StreamSession(backend, "a blue star", seed=3, config=config)
    session.step()
    session.step()
    instruction = DragInstruction(Mode.EDIT, SIZE, (region,)).validate()
    last = session.blocks[-1]
    cache = backend.new_cache()
    cache.restore(last.cache_before)
    plan = edit_plan(
        instruction, TINY.frames_per_block, config.edit_frames, backend.layout.latent_size, "cpu"
    )
    reference = session.reference_of(last, config)
    z = last.step_latents[config.optimize_step].unsqueeze(0)
    return backend, session, cache, plan, reference, z


def optimize_setup(config: DragConfig, setup: tuple, starts_at_reference: bool = False):
    """``optimize_block`` on what :func:`drag_setup` returned, with a fixed generator and no neighbours."""
    backend, session, cache, plan, reference, z = setup
    segments = trajectory_segments(backend, plan, config)
    drag = ResolvedDrag(
        plan, config, segments, reference, None, torch.Generator().manual_seed(0), starts_at_reference
    )
    return optimize_block(backend, z, cache, session.prompt_embeds, drag, RunControl(session.events))


def run(config: DragConfig, listener=None):
    setup = drag_setup(config)
    backend, session, cache, plan, reference, z = setup
    if listener is not None:
        session.events.subscribe("iteration", listener)
    result = optimize_setup(config, setup)
    layers = backend.feature_layers
    with torch.no_grad():
        before, _ = record_features(backend, z, config.optimize_step, cache, session.prompt_embeds, layers)
        after, _ = record_features(
            backend, result.z, config.optimize_step, cache, session.prompt_embeds, layers
        )
    goals = plan.goals(1.0, backend.layout.pixel_size, backend.layout.latent_size)
    keep = constraint_region(goals, plan)
    change = (after - before).abs().mean(dim=(0, 1, 2))  # [h, w]
    kept_change = float((change * keep).sum() / keep.sum())
    return result, kept_change


def test_optimisation_lowers_the_reconstruction_loss():
    config = DragConfig(iterations=12, sfs=False)
    result, _ = run(config)
    first, last = result.losses[0]["l_rec"], result.losses[-1]["l_rec"]
    assert last < 0.7 * first
    assert all(np.isfinite(r["l_rec"]) and np.isfinite(r["l_cst"]) for r in result.losses)


def test_constraint_keeps_the_non_editable_region():
    base = DragConfig(iterations=12, sfs=False, adsr=False, css=False)
    _, with_constraint = run(base)
    _, without = run(DragConfig(iterations=12, sfs=False, adsr=False, css=False, constraint_weight=0.0))
    assert with_constraint < 0.8 * without


def test_css_concentrates_the_gradient_on_the_target():
    seen = {}

    def grab(config):
        run(config, lambda p: seen.setdefault(config.css, p["grad"]))

    grab(DragConfig(iterations=1, sfs=False))
    grab(DragConfig(iterations=1, sfs=False, css=False))
    # Latent target box: handle x 1..2, y 2..3, moved 2 cells right -> x 3..4; far corner (7, 7).
    near = [g[0, :, :, 2:4, 3:5].abs().mean() for g in (seen[True], seen[False])]
    far = [g[0, :, :, 7, 7].abs().mean() for g in (seen[True], seen[False])]
    assert far[0] / near[0] < far[1] / near[1]


def first_step_moves(css_on: str) -> tuple[float, float]:
    """On the embedded model, the mean change of the latent in one AdamW step of a 6 px edit (no ADSR),
    where the CSS map is at least 0.5 and where it is under 0.1."""
    from dragstream_widget.bench.cpu_speed import edit_session
    from dragstream_widget.engine.presets import TOY_DRAG_CONFIG
    from dragstream_widget.models.toyworld.model import load_model

    config = replace(TOY_DRAG_CONFIG, iterations=1, adsr=False, css_on=css_on)
    session, edit = edit_session(load_model(), config)
    before = session.blocks[-1].step_latents[config.optimize_step]
    seen = []
    session.events.subscribe("iteration", seen.append)
    session.apply(edit)
    torch.testing.assert_close(seen[0]["step"][0], seen[0]["z"][0] - before)  # the step the event reports
    moved = seen[0]["step"][0].abs().mean(dim=(0, 1))  # [h, w]
    weight = seen[0]["gradient_map"].mean(dim=0)
    return float(moved[weight >= 0.5].mean()), float(moved[weight < 0.1].mean())


def test_adam_undoes_the_css_map_on_the_gradient_and_keeps_it_on_the_step():
    near, far = first_step_moves("gradient")
    # Adam divides each element's gradient by its own magnitude: the step is about the learning rate
    # wherever the map leaves the gradient above Adam's epsilon, which is the whole frame here.
    assert far > 0.8 * near
    near, far = first_step_moves("step")
    assert far < 0.2 * near


def test_features_without_x0_match_the_full_pass_and_skip_the_later_layers():
    config = DragConfig()
    backend, session, cache, _, _, z = drag_setup(config)
    layers = (1,)  # TINY has more layers: everything after layer 1 and the output head can be skipped
    assert backend.num_layers > 2
    calls = []
    hook = backend.transformer.blocks[2].register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        full, x0 = record_features(backend, z, config.optimize_step, cache, session.prompt_embeds, layers)
        assert len(calls) == 1 and x0 is not None
        only, none = record_features(
            backend, z, config.optimize_step, cache, session.prompt_embeds, layers, need_x0=False
        )
    hook.remove()
    assert none is None and len(calls) == 1
    torch.testing.assert_close(only, full, rtol=0, atol=0)


def test_batched_reference_features_equal_one_filtered_pass_per_cutoff():
    config = DragConfig()
    backend, session, cache, _, _, z = drag_setup(config)
    layers, cutoffs = backend.feature_layers, (0.2, 0.4, 0.6, 1.0)
    batched = reference_features(
        backend, z, config.optimize_step, cache, session.prompt_embeds, layers, cutoffs, "context"
    )
    assert sorted(batched) == list(cutoffs)
    for cutoff in cutoffs:
        with torch.no_grad():
            alone, _ = record_features(
                backend,
                z,
                config.optimize_step,
                cache,
                session.prompt_embeds,
                layers,
                kv_lowpass_filter(cutoff, "context"),
                need_x0=False,
            )
        torch.testing.assert_close(batched[cutoff], alone[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0.2], batched[1.0], atol=1e-3)  # the low-pass changed the context


def test_reference_features_compute_each_cutoff_once_when_first_read():
    config = DragConfig()
    _, session, _, _, reference, _ = drag_setup(config)
    assert 0.4 in reference and 0.3 not in reference and reference.computed == ()  # asking costs nothing
    first = reference[0.4]
    assert reference.computed == (0.4,) and reference[0.4] is first
    with pytest.raises(KeyError, match="not in the switch set"):
        reference[0.3]
    reference.compute()
    assert sorted(reference.computed) == sorted(config.cutoffs) and reference[0.4] is first
    assert sorted(reference) == sorted(config.cutoffs) and len(reference) == len(config.cutoffs)


def test_adsr_restores_statistics_only_at_steps_at_least_as_noisy_as_adsr_min_sigma():
    config = DragConfig(iterations=3, sfs=False)
    backend, *_, z_init = drag_setup(config)
    sigma = backend.sampler.sigma(config.optimize_step)
    restored, _ = run(replace(config, adsr_min_sigma=sigma))
    skipped, _ = run(replace(config, adsr_min_sigma=min(1.0, sigma + 0.05)))
    without, _ = run(replace(config, adsr=False))
    # Without neighbours ADSR restores the latent's own statistics from before the optimisation.
    assert restored.z.std().item() == pytest.approx(z_init.std().item(), rel=1e-4)
    assert restored.z.mean().item() == pytest.approx(z_init.mean().item(), abs=1e-4)
    assert not torch.equal(restored.z, without.z)
    assert torch.equal(skipped.z, without.z)  # above the step's noise level ADSR stays off


def test_adsr_min_sigma_must_be_a_noise_level():
    with pytest.raises(ValueError, match="adsr_min_sigma"):
        DragConfig(adsr_min_sigma=1.5)


def rotation_edit(weight: float, **settings):
    """The quarter-turn edit of an undragged block on the tiny model, with the rotation term at ``weight``
    (and further ``settings``); returns the result, the latent-space rotation loss of its optimised
    latent and how much its x0 prediction changed outside the handle and target regions."""
    config = DragConfig(
        iterations=8,
        learning_rate=0.2,
        sfs=False,
        segment_degrees=90.0,
        rotation_x0_weight=weight,
        **settings,
    )
    setup = drag_setup(config, ROTATION)
    backend, session, cache, plan, reference, z = setup
    result = optimize_setup(config, setup, starts_at_reference=True)
    goals = plan.goals(1.0, backend.layout.pixel_size, backend.layout.latent_size)
    target = rotation_target(reference.x0(), goals, plan, z.shape[2], config.reconstruction_weight)
    with torch.no_grad():
        x0 = backend.denoise(result.z, config.optimize_step, cache, session.prompt_embeds).x0[0]
    keep = constraint_region(goals, plan)
    outside = float(((x0 - reference.x0()).abs().mean(dim=(0, 1)) * keep).sum() / keep.sum())
    return result, reconstruction_loss(x0, target, config.reconstruction_loss).item(), outside


def test_the_rotation_term_turns_the_x0_prediction_towards_the_turned_reference():
    with_term, turned_loss, _ = rotation_edit(30.0)
    without, unturned_loss, _ = rotation_edit(0.0)
    assert "l_rec_x0" not in without.losses[0] and "l_cst_x0" in with_term.losses[0]
    recorded = [r["l_rec_x0"] for r in with_term.losses]
    assert recorded[-1] < 0.5 * recorded[0]
    assert turned_loss < 0.5 * unturned_loss


def test_the_rotation_term_keeps_the_x0_prediction_outside_the_regions():
    *_, kept = rotation_edit(30.0)
    *_, unconstrained = rotation_edit(30.0, constraint_weight=0.0)
    assert kept < 0.7 * unconstrained


def test_the_rotation_terms_constraint_takes_a_weight_of_its_own():
    assert DragConfig(rotation_x0_weight=30.0).rotation_x0_constraint == 30.0
    assert (
        DragConfig(rotation_x0_weight=30.0, rotation_x0_constraint_weight=10.0).rotation_x0_constraint == 10.0
    )
    *_, kept = rotation_edit(30.0)
    *_, loose = rotation_edit(30.0, rotation_x0_constraint_weight=3.0)
    *_, free = rotation_edit(30.0, rotation_x0_constraint_weight=0.0)
    assert kept < loose < free  # less of the frame is kept as the latent L_cst weighs less
    with pytest.raises(ValueError, match="rotation_x0_constraint_weight"):
        DragConfig(rotation_x0_constraint_weight=-1.0)


def test_the_rotation_term_reads_the_first_pass_as_the_reference_x0():
    config = DragConfig(sfs=False, rotation_x0_weight=1.0)
    backend, session, cache, plan, reference, z = drag_setup(config, ROTATION)
    with torch.no_grad():
        _, first_pass = record_features(
            backend, z, config.optimize_step, cache, session.prompt_embeds, backend.feature_layers
        )
    torch.testing.assert_close(reference.x0(), first_pass[0])
    assert reference.x0() is reference.x0() and reference.passes == 1  # computed once


def test_the_rotation_term_leaves_translations_as_they_were():
    plain, _ = run(DragConfig(iterations=3, sfs=False))
    weighted, _ = run(DragConfig(iterations=3, sfs=False, rotation_x0_weight=30.0))
    torch.testing.assert_close(weighted.z, plain.z, rtol=0, atol=0)
    assert "l_rec_x0" not in weighted.losses[0]


def test_a_rotation_animation_keeps_the_reference_x0_of_the_frame_it_was_drawn_on():
    config = DragConfig(iterations=2, sfs=False, rotation_x0_weight=5.0)
    backend, session, *_ = drag_setup(config)
    session.animate(DragInstruction(Mode.ANIMATE, SIZE, (ROTATION,)).validate())
    expected = session.reference_of(session.blocks[-1], config).x0()[:, -1:]
    torch.testing.assert_close(session._animation.reference_x0, expected)
    record = session.step()
    assert all("l_rec_x0" in r for r in record.losses) and record.losses


def test_the_rotation_weight_must_not_be_negative():
    with pytest.raises(ValueError, match="rotation_x0_weight"):
        DragConfig(rotation_x0_weight=-1.0)
