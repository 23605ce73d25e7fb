import threading
from dataclasses import replace

import numpy as np
import pytest
import torch

from dragstream_widget.engine.config import DragConfig, released_code_config
from dragstream_widget.engine.drag import trajectory_segments
from dragstream_widget.engine.events import EventBus
from dragstream_widget.engine.rollout import BlockInterrupted, block_noise, generate_block
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.engine.targets import edit_plan
from dragstream_widget.models.random_model import TINY, random_backend
from dragstream_widget.models.sampler import add_noise
from dragstream_widget.ops import DragInstruction, HandleRegion, InvalidInstruction, Mode, Operation

SIZE = (TINY.latent_height * TINY.vae_stride, TINY.latent_width * TINY.vae_stride)  # 32 x 32 pixels


def square_mask(x0, y0, x1, y1, size=SIZE):
    mask = np.zeros(size, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def translate(mode=Mode.EDIT, targets=((20.0, 12.0),), frozen=None):
    region = HandleRegion(square_mask(8, 8, 16, 16), Operation.TRANSLATE, (12.0, 12.0), tuple(targets))
    return DragInstruction(mode, SIZE, (region,), frozen_mask=frozen)


def session(seed=0, config=None, events=None, **backend_kwargs):
    return StreamSession(
        random_backend(TINY, **backend_kwargs), "a red circle", seed=seed, config=config, events=events
    )


def test_same_seed_same_video_and_different_seed_differs():
    a, b, c = session(0), session(0), session(1)
    for s in (a, b, c):
        for _ in range(3):
            s.step()
    assert np.array_equal(a.frames(), b.frames())
    assert torch.equal(a.latents(), b.latents())
    assert not torch.equal(a.latents(), c.latents())
    assert a.frames().shape == (3 * TINY.frames_per_block, *SIZE, 3)


def test_undo_restores_bit_identical_state():
    s = session()
    for _ in range(2):
        s.step()
    latents = s.latents().clone()
    keys = s.cache.context(0)[0].clone()
    next_frame = s.cache.next_frame
    s.edit(translate())
    assert not torch.equal(s.latents(), latents)
    s.step()
    assert s.undo() == "block"
    assert s.undo() == "edit"
    assert torch.equal(s.latents(), latents)
    assert torch.equal(s.cache.context(0)[0], keys) and s.cache.next_frame == next_frame
    # Generating again from the restored state reproduces the original stream exactly.
    reference = session()
    for _ in range(3):
        reference.step()
    s.step()
    assert torch.equal(s.latents(), reference.latents())


def test_rewind_to_an_earlier_block():
    s = session()
    for _ in range(4):
        s.step()
    first_two = s.latents()[:, :, : 2 * TINY.frames_per_block].clone()
    s.rewind(2)
    assert s.num_blocks == 2 and s.cache.next_frame == 2 * TINY.frames_per_block
    assert torch.equal(s.latents(), first_two)
    with pytest.raises(IndexError):
        s.rewind(5)


def test_edit_redenoises_the_block_on_screen_only():
    s = session()
    for _ in range(2):
        s.step()
    before = s.latents().clone()
    record = s.edit(translate())
    after = s.latents()
    n = TINY.frames_per_block
    assert s.num_blocks == 2 and record.index == 1
    assert torch.equal(after[:, :, :n], before[:, :, :n])  # the earlier block is untouched
    assert not torch.equal(after[:, :, n:], before[:, :, n:])
    iterations = DragConfig().iterations
    assert len(record.losses) % iterations == 0 and len(record.losses) >= iterations
    assert s.cache.next_frame == 2 * n


def test_edit_of_an_undragged_block_resumes_at_the_drag_step_with_the_same_result():
    s = session()
    for _ in range(2):
        s.step()
    last = s.blocks[-1]
    cache = s.backend.new_cache()
    cache.restore(last.cache_before)
    noise = block_noise(s.seed, last.index, s.backend.sampler.num_steps, s.backend.layout.block_shape)
    plan = edit_plan(translate(), TINY.frames_per_block, "all", s.backend.layout.latent_size, "cpu")
    outputs = []
    for known in (None, last.step_latents[: s.config.optimize_step + 1]):
        cache.restore(last.cache_before)
        request = s._resolve(
            plan,
            trajectory_segments(s.backend, plan, s.config),
            s.config,
            s.reference_of(last, s.config),
            s.blocks[:-1],
        )
        outputs.append(generate_block(s.backend, cache, s.prompt_embeds, noise, request, known_steps=known))
    from_noise, resumed = outputs
    torch.testing.assert_close(resumed.step_latents, from_noise.step_latents, rtol=0, atol=1e-6)
    torch.testing.assert_close(resumed.z0, from_noise.z0, rtol=0, atol=1e-6)
    record = s.edit(translate())
    torch.testing.assert_close(record.z0, from_noise.z0, rtol=0, atol=1e-6)


def test_edits_can_run_with_settings_of_their_own():
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        DragConfig(edit_iterations=0)
    shared = DragConfig(iterations=3)
    assert shared.for_edits() is shared and not shared.has_edit_settings()
    config = DragConfig(iterations=3, edit_optimize_step=2, edit_iterations=2, edit_learning_rate=0.1)
    edits = config.for_edits()
    assert (edits.optimize_step, edits.iterations, edits.learning_rate) == (2, 2, 0.1)
    assert not edits.has_edit_settings() and edits.cutoffs == config.cutoffs
    s = session(config=config)
    for _ in range(2):
        s.step()
    last = s.blocks[-1]
    record = s.edit(translate())
    assert {r["iteration"] for r in record.losses} == {0, 1}
    # Steps before the edit's own T' = 2 are the undragged block's; the latent entering step 2 is optimised.
    torch.testing.assert_close(record.step_latents[:2], last.step_latents[:2], rtol=0, atol=0)
    assert not torch.allclose(record.step_latents[2], last.step_latents[2])
    # The same edit from noise, with the edit settings throughout, gives the same block.
    cache = s.backend.new_cache()
    cache.restore(last.cache_before)
    noise = block_noise(s.seed, last.index, s.backend.sampler.num_steps, s.backend.layout.block_shape)
    plan = edit_plan(translate(), TINY.frames_per_block, "all", s.backend.layout.latent_size, "cpu")
    request = s._resolve(
        plan, trajectory_segments(s.backend, plan, edits), edits, s.reference_of(last, edits), s.blocks[:-1]
    )
    from_noise = generate_block(s.backend, cache, s.prompt_embeds, noise, request)
    torch.testing.assert_close(record.z0, from_noise.z0, rtol=1e-4, atol=1e-5)
    s.undo()
    s.apply(translate(Mode.ANIMATE, [(12.0 + 2 * i, 12.0) for i in range(1, 3)]))
    animated = s.step()
    assert {r["iteration"] for r in animated.losses} == {0, 1, 2}  # animations keep the shared settings


def test_edit_settings_can_be_kept_to_short_edits():
    config = DragConfig(iterations=3, edit_optimize_step=2, edit_iterations=2, edit_max_segments=1)
    assert config.for_edits(1).iterations == 2 and config.for_edits(2).iterations == 3
    assert config.for_edits(2).optimize_step == config.optimize_step
    assert not config.for_edits(2).has_edit_settings() and config.for_edits(2).edit_max_segments is None
    with pytest.raises(ValueError, match="edit_max_segments must be None or >= 1"):
        DragConfig(edit_max_segments=0)
    s = session(config=config)
    for _ in range(2):
        s.step()
    last = s.blocks[-1]
    for target, segments, iterations in (((14.0, 12.0), 1, 2), ((24.0, 12.0), 2, 3)):
        instruction = translate(targets=(target,))
        plan = edit_plan(instruction, TINY.frames_per_block, "all", s.backend.layout.latent_size, "cpu")
        assert trajectory_segments(s.backend, plan, config) == segments
        record = s.edit(instruction)
        assert len(record.losses) == segments * iterations
        assert {r["segment"] for r in record.losses} == set(range(1, segments + 1))
        steps_kept = 2 if iterations == 2 else config.optimize_step  # the undragged block's steps before T'
        torch.testing.assert_close(record.step_latents[:steps_kept], last.step_latents[:steps_kept])
        s.undo()


def edit_with_reference(all_cutoffs_first: bool):
    """An edit of an undragged block; the reference features it used, computed lazily or all up front."""
    s = session(config=DragConfig(iterations=3))
    for _ in range(2):
        s.step()
    seen = []

    def on_drag(payload):
        seen.append(payload["reference"])
        if all_cutoffs_first:
            payload["reference"].compute()

    s.events.subscribe("drag", on_drag)
    record = s.edit(translate())
    return record, seen[0]


def test_an_edit_computes_reference_features_only_for_the_cutoffs_it_draws():
    record, reference = edit_with_reference(all_cutoffs_first=False)
    drawn = {r["cutoff"] for r in record.losses}
    assert len(drawn) < len(reference.cutoffs)  # the seeded switch leaves a cutoff out: something saved
    # The unfiltered reference comes free from the first iteration, which starts at the reference latent.
    assert set(reference.computed) == drawn | {1.0}
    assert reference.passes == 1  # the drawn filtered cutoffs in one batched pass, before the iterations
    eager, everything = edit_with_reference(all_cutoffs_first=True)
    assert set(everything.computed) == set(everything.cutoffs)
    for cutoff in reference.computed:
        torch.testing.assert_close(reference[cutoff], everything[cutoff], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(record.z0, eager.z0, rtol=1e-4, atol=1e-5)


def test_a_prepared_edit_reads_the_references_computed_before_it_and_lands_the_same():
    cold = session(config=DragConfig(iterations=3))
    for _ in range(2):
        cold.step()
    expected = cold.edit(translate())
    s = session(config=DragConfig(iterations=3))
    for _ in range(2):
        s.step()
    assert s.prepare_drag()
    seen = []
    s.events.subscribe("drag", lambda payload: seen.append(payload["reference"]))
    record = s.edit(translate())
    reference = seen[0]
    assert set(reference.computed) == set(reference.cutoffs)  # every cutoff, in the prepared pass
    assert reference.passes == 1  # and no pass of its own during the edit
    torch.testing.assert_close(record.z0, expected.z0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(record.frames, expected.frames, atol=1)


def test_prepared_references_are_dropped_when_the_frame_on_screen_or_the_settings_change():
    s = session(config=DragConfig(iterations=2))
    assert not s.prepare_drag()  # nothing on screen yet
    s.step()
    seen = []
    s.events.subscribe("drag", lambda payload: seen.append(payload["reference"]))
    assert s.prepare_drag()
    s.step()  # another block on screen: the prepared references are of the one before
    s.edit(translate())
    assert seen[-1].passes == 1 and set(seen[-1].computed) != set(seen[-1].cutoffs)  # computed on demand
    s.undo()
    assert s.prepare_drag()
    s.config = replace(s.config, sfs=False)  # a switch flipped after preparing
    s.edit(translate())
    assert seen[-1].cutoffs == (1.0,)
    s.undo()
    assert s.prepare_drag()
    s.edit(translate())
    s.undo()
    s.edit(translate())  # an edit uses the prepared references up
    assert seen[-1] is not seen[-2]


def test_an_animation_drawn_on_the_given_opening_frames_starts_from_the_prepared_references():
    from dragstream_widget import load_model
    from dragstream_widget.models.toyworld.scenes import DEFAULT_PROMPT, object_region, opening_frames

    backend = load_model()
    s = StreamSession(backend, DEFAULT_PROMPT, 0, start_frames=opening_frames(DEFAULT_PROMPT, 0, 3))
    assert s.blocks[-1].given and s.prepare_drag()  # an animation may start from given frames
    prepared = s._prepared.reference
    seen = []
    s.events.subscribe("drag", lambda payload: seen.append(payload["reference"]))
    mask, center = object_region(s.frames()[-1], "red")
    path = tuple((center[0] + i, center[1]) for i in range(1, 4))
    region = HandleRegion(mask, Operation.TRANSLATE, center, path)
    s.apply(DragInstruction(Mode.ANIMATE, backend.layout.pixel_size, (region,)))
    assert seen == [prepared] and prepared.passes == 1  # no pass of its own when the animation started
    edit = DragInstruction(Mode.EDIT, backend.layout.pixel_size, (replace(region, targets=path[:1]),))
    with pytest.raises(InvalidInstruction, match="given"):
        s.edit(edit)  # edits of given frames stay refused, prepared or not


def test_animation_drives_the_next_blocks_then_ends():
    s = session()
    s.step()
    trajectory = [(12.0 + 2 * i, 12.0) for i in range(1, 4)]  # 3 targets: fills 2 blocks of 2 frames
    s.apply(translate(Mode.ANIMATE, trajectory))
    assert s.animating
    first = s.step()
    second = s.step()
    third = s.step()
    assert first.instruction is not None and second.instruction is not None
    assert first.losses and second.losses and not third.losses
    assert not s.animating


def test_instruction_submitted_mid_generation_applies_at_the_next_boundary():
    s = session()
    s.step()
    started, release = threading.Event(), threading.Event()
    s.events.subscribe("step", lambda payload: (started.set(), release.wait(5)))
    worker = threading.Thread(target=s.step)
    worker.start()
    assert started.wait(5)
    s.submit(translate(Mode.ANIMATE, [(14.0, 12.0), (16.0, 12.0)]))
    assert not s.animating  # still generating the block that was under way
    release.set()
    worker.join(10)
    assert not s.animating
    record = s.step()
    assert record.instruction is not None and record.losses


def test_an_interrupt_abandons_a_plain_block_and_loses_nothing_but_spares_drag_blocks():
    s, reference = session(), session()
    s.step()
    reference.step()
    latents, keys, next_frame = s.latents().clone(), s.cache.context(0)[0].clone(), s.cache.next_frame
    interrupt_at_step_1 = s.events.subscribe(
        "step", lambda payload: s.request_interrupt() if payload["step_index"] == 1 else None
    )
    with pytest.raises(BlockInterrupted, match="block 1 was abandoned at step 2"):
        s.step()
    interrupt_at_step_1()
    assert len(s.blocks) == 1 and torch.equal(s.latents(), latents)
    assert torch.equal(s.cache.context(0)[0], keys) and s.cache.next_frame == next_frame
    # The block is made again from scratch, exactly as a stream never interrupted makes it.
    torch.testing.assert_close(s.step().z0, reference.step().z0, rtol=0, atol=0)
    # A block that carries a drag (an animation's) is never abandoned.
    s.apply(translate(Mode.ANIMATE, [(14.0, 12.0), (16.0, 12.0)]))
    s.events.subscribe("step", lambda payload: s.request_interrupt())
    record = s.step()
    assert record.instruction is not None and record.losses and len(s.blocks) == 3


def test_events_cost_nothing_without_listeners_and_report_iterations():
    bus = EventBus()
    bus.emit("iteration", lambda: (_ for _ in ()).throw(AssertionError("built without listeners")))
    seen = []
    unsubscribe = bus.subscribe("iteration", seen.append)
    s = session(events=bus)
    s.step()
    s.edit(translate())
    assert seen and {"l_rec", "l_cst", "cutoff", "grad", "gradient_map"} <= set(seen[0])
    unsubscribe()
    count = len(seen)
    s.edit(translate())
    assert len(seen) == count
    with pytest.raises(ValueError, match="unknown event"):
        bus.subscribe("frames", print)


def test_bad_instructions_are_refused_and_lose_nothing():
    s = session()
    with pytest.raises(InvalidInstruction, match="generate a block first"):
        s.edit(translate())
    s.step()
    latents = s.latents().clone()
    wrong = DragInstruction(
        Mode.EDIT,
        (64, 64),
        (
            HandleRegion(
                square_mask(8, 8, 16, 16, (64, 64)), Operation.TRANSLATE, (12.0, 12.0), ((20.0, 12.0),)
            ),
        ),
    )
    with pytest.raises(InvalidInstruction, match="32x32"):
        s.apply(wrong)
    with pytest.raises(InvalidInstruction):
        s.submit(translate(targets=((float("nan"), 3.0),)))
    assert torch.equal(s.latents(), latents) and s.num_blocks == 1


def test_released_code_options_run_end_to_end():
    s = session(config=released_code_config())
    for _ in range(2):
        s.step()
    record = s.edit(translate())
    assert len(record.losses) % 5 == 0 and all(np.isfinite(r["l_rec"]) for r in record.losses)


@pytest.mark.parametrize("component", ["adsr", "sfs", "css", "sfso"])
def test_each_component_can_be_switched_off(component):
    config = DragConfig().without(component)
    s = session(config=config)
    s.step()
    record = s.edit(translate())
    assert record.losses
    if component in ("sfs", "sfso"):
        assert {r["cutoff"] for r in record.losses} == {1.0}


def test_rolling_cache_keeps_long_streams_bounded():
    s = session(cache_max_frames=4, cache_sink_frames=2)
    sizes = []
    for _ in range(6):
        s.step()
        sizes.append(s.cache.nbytes())
    assert sizes[-1] == sizes[2] and s.cache.num_cached_frames == 4


def test_undo_history_is_bounded_so_long_streams_do_not_pin_old_caches():
    s = StreamSession(random_backend(TINY, cache_max_frames=4), "a red circle", undo_depth=3)
    for _ in range(8):
        s.step()
    # The last block left after undoing everything undoable must stay editable, so 4 keep their snapshot.
    assert [b.cache_before is None for b in s.blocks] == [True] * 4 + [False] * 4
    # Each remembered state keeps the snapshot of its own last block only.
    states = [e.before for e in s._history._done]
    assert all(sum(b.cache_before is not None for b in h.blocks) == 1 for h in states)
    for _ in range(3):
        s.undo()
    with pytest.raises(IndexError, match="nothing to undo"):
        s.undo()
    record = s.edit(translate())  # the block on screen can still be edited
    assert record.losses
    with pytest.raises(ValueError, match="block 0 has no cache snapshot left"):
        s.reference_of(s.blocks[0], s.config)


def test_context_noise_commits_each_block_noised_to_its_level():
    clean, noisy = random_backend(TINY), random_backend(TINY, commit_sigma=0.2)
    z0 = torch.randn(1, *clean.layout.block_shape)
    noise = torch.randn_like(z0)
    prompt = clean.encode_prompt("a red circle")
    written, expected, clean_written = noisy.new_cache(), clean.new_cache(), clean.new_cache()
    noisy.commit(z0, written, prompt, noise)
    with torch.no_grad():
        clean.transformer(
            add_noise(z0, noise, 0.2), torch.full((1,), 200.0), prompt, cache=expected, commit=True
        )
    clean.commit(z0, clean_written, prompt)
    keys = [c.snapshot().runs[0].keys[0] for c in (written, expected, clean_written)]
    torch.testing.assert_close(keys[0], keys[1])
    assert not torch.allclose(keys[0], keys[2])
    with pytest.raises(ValueError, match="needs the noise"):
        noisy.commit(z0, noisy.new_cache(), prompt)
    with pytest.raises(ValueError, match="commit_sigma"):
        random_backend(TINY, commit_sigma=1.0)


def test_the_last_denoising_pass_can_write_the_cache_and_edits_stay_exact():
    s = session(commit_at_last_step=True)
    sampler = s.backend.sampler
    last_sigma = sampler.sigma(sampler.num_steps - 1)
    assert s.backend.commit_sigma == last_sigma  # given frames are committed at the same level
    passes = []
    s.backend.transformer.register_forward_hook(lambda *_: passes.append(1))
    s.step()
    assert len(passes) == sampler.num_steps  # no pass of its own for the commit
    record = s.step()
    # The cache holds the keys/values of the last step's input, at the last step's timestep.
    expected = s.backend.new_cache()
    expected.restore(record.cache_before)
    with torch.no_grad():
        s.backend.transformer(
            record.step_latents[-1][None],
            torch.full((1,), sampler.timestep(sampler.num_steps - 1)),
            s.prompt_embeds,
            cache=expected,
            commit=True,
        )
    torch.testing.assert_close(s.cache.context(0)[0], expected.context(0)[0])
    # Edits regenerate the block with its cache write; undo restores the cache exactly.
    before = s.cache.snapshot()
    edited = s.edit(translate())
    assert edited.losses and s.cache.next_frame == before.next_frame
    assert not torch.equal(s.cache.context(0)[0], expected.context(0)[0])
    s.undo()
    torch.testing.assert_close(s.cache.context(0)[0], expected.context(0)[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="leave commit_sigma at 0"):
        random_backend(TINY, commit_sigma=0.1, commit_at_last_step=True)


def test_sessions_with_context_noise_are_reproducible_and_differ_from_clean_commits():
    videos = []
    for sigma in (0.1, 0.1, 0.0):
        s = session(commit_sigma=sigma)
        for _ in range(3):
            s.step()
        videos.append(s.latents())
    torch.testing.assert_close(videos[0], videos[1], rtol=0, atol=0)
    n = TINY.frames_per_block
    torch.testing.assert_close(videos[0][:, :, :n], videos[2][:, :, :n], rtol=0, atol=0)  # no context yet
    assert not torch.allclose(videos[0][:, :, n:], videos[2][:, :, n:])


def test_a_backend_refuses_a_kv_window_no_larger_than_its_sinks():
    with pytest.raises(ValueError, match="sink frames"):
        session(cache_max_frames=2, cache_sink_frames=2)


@pytest.mark.parametrize("window, sinks", [(4, 0), (6, 2)])
def test_a_stream_goes_on_past_the_end_of_the_rope_table(window, sinks):
    """With a rolling window, the cache moves back when the next block would pass the RoPE table's end:
    the stream, and an edit after the move, are those of a model whose table is long enough."""
    streams = []
    for spec in (replace(TINY, rope_frames=10), TINY):
        s = StreamSession(
            random_backend(spec, cache_max_frames=window, cache_sink_frames=sinks), "a red circle", seed=0
        )
        for _ in range(8):  # 16 frames
            s.step()
        s.edit(translate())
        streams.append(s)
    short, long = streams
    assert short.cache.next_frame <= 10 < long.cache.next_frame == 16  # moved back at least once
    assert torch.allclose(short.latents(), long.latents(), atol=1e-4)
    assert np.abs(short.frames().astype(int) - long.frames().astype(int)).max() <= 1


def test_an_unbounded_cache_past_the_rope_table_is_a_clear_error_and_loses_nothing():
    s = StreamSession(random_backend(replace(TINY, rope_frames=6)), "a red circle", seed=0)
    for _ in range(3):
        s.step()
    latents = s.latents().clone()
    with pytest.raises(ValueError, match="RoPE range"):
        s.step()
    assert torch.equal(s.latents(), latents) and s.cache.next_frame == 6
