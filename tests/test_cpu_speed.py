from dataclasses import replace

import pytest

from dragstream_widget import load_model
from dragstream_widget.bench.cpu_speed import edit_phases, reference_modes_seconds
from dragstream_widget.engine.presets import TOY_DRAG_CONFIG


def test_edit_phases_split_an_edit_into_setup_references_iterations_and_the_rest():
    config = replace(TOY_DRAG_CONFIG, edit_iterations=2)  # the timed edit is short: it runs the edit settings
    phases = edit_phases(load_model(), config, repeats=1)
    assert set(phases) == {"setup", "references", "iterations", "rest", "per_iteration"}
    assert all(seconds > 0 for seconds in phases.values())
    assert phases["per_iteration"] * 2 == pytest.approx(phases["iterations"])


def test_reference_modes_time_the_same_edit_on_demand_and_with_every_cutoff_up_front():
    config = replace(TOY_DRAG_CONFIG, edit_iterations=2)
    times = reference_modes_seconds(load_model(), config, repeats=2)
    assert set(times) == {"on_demand", "all_cutoffs_up_front"}
    assert all(len(t) == 2 and min(t) > 0 for t in times.values())


def test_streaming_settings_are_timed_block_by_block_in_turn():
    from dragstream_widget.bench.cpu_speed import interleaved_block_seconds
    from dragstream_widget.engine.session import StreamSession
    from dragstream_widget.models.toyworld.model import FOLDED_COMMIT

    order = []
    sessions = {}
    for name, backend in (("saved", load_model()), ("folded", load_model(**FOLDED_COMMIT))):
        sessions[name] = StreamSession(backend, "a red circle on a plain background", 0)
        sessions[name].events.subscribe("block", lambda _, n=name: order.append(n))
    times = interleaved_block_seconds(sessions, blocks=2)
    assert {name: len(t) for name, t in times.items()} == {"saved": 2, "folded": 2}
    assert all(t > 0 for ts in times.values() for t in ts)
    assert order == ["saved", "folded"] * 3  # a warm-up block each, then turns


def test_full_window_edits_are_timed_on_a_block_that_sees_the_whole_kv_window():
    from dragstream_widget.bench.cpu_speed import edit_session, full_window_blocks

    backend = load_model()
    blocks = full_window_blocks(backend)
    session, _ = edit_session(backend, TOY_DRAG_CONFIG, blocks=blocks)
    last = session.blocks[-1]
    context = backend.new_cache()
    context.restore(last.cache_before)
    assert context.num_cached_frames == backend.cache_max_frames
    early, _ = edit_session(backend, TOY_DRAG_CONFIG, blocks=blocks - 1)
    context.restore(early.blocks[-1].cache_before)
    assert context.num_cached_frames < backend.cache_max_frames


def test_prepared_edits_are_timed_after_the_references_were_computed_while_drawing():
    from dragstream_widget.bench.cpu_speed import prepare_seconds, prepared_edit_seconds

    backend = load_model()
    config = replace(TOY_DRAG_CONFIG, edit_iterations=2)
    batches = []  # the batch of every pass of the float model: the drag's passes
    backend.transformer.register_forward_hook(lambda _, args, __: batches.append(args[0].shape[0]))
    times = prepared_edit_seconds(backend, config, repeats=1)
    assert {name: len(t) for name, t in times.items()} == {"on_demand": 1, "prepared": 1}
    assert min(times["on_demand"] + times["prepared"]) > 0
    # On demand: the filtered cutoffs the switch drew in one pass, then one pass per iteration; prepared:
    # every cutoff in one pass before the edit, then its iterations.
    assert 1 <= batches[0] < len(config.cutoffs) and batches[1:3] == [1, 1]
    assert batches[3:] == [len(config.cutoffs), 1, 1]
    assert all(t > 0 for t in prepare_seconds(backend, config, repeats=2))
