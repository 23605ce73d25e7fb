"""Sessions that last: undo and redo by action, save and replay, bounded memory, one writer."""

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import torch

from dragstream_widget.__main__ import main
from dragstream_widget.engine.session import StreamSession
from dragstream_widget.engine.session_file import SessionFileError
from dragstream_widget.models.random_model import TINY, random_backend
from dragstream_widget.ops import MAX_SEED, DragInstruction, HandleRegion, InvalidInstruction, Mode, Operation

SIZE = (TINY.latent_height * TINY.vae_stride, TINY.latent_width * TINY.vae_stride)  # 32 x 32 pixels


def drag(mode=Mode.EDIT, targets=((16.0, 12.0),), frame_index=None):
    mask = np.zeros(SIZE, bool)
    mask[8:16, 8:16] = True
    region = HandleRegion(mask, Operation.TRANSLATE, (12.0, 12.0), tuple(targets))
    return DragInstruction(mode, SIZE, (region,), frame_index=frame_index)


ANIMATION = ((13.0, 12.0), (14.0, 12.0), (15.0, 12.0), (16.0, 12.0))  # two blocks of two latent frames


def scripted(session):
    """Edits, an animation, undo and redo, a reset with a new prompt, and its undo."""
    session.step()
    session.step()
    session.apply(drag())
    session.step()
    session.apply(drag(Mode.ANIMATE, ANIMATION))
    session.step()
    session.step()
    assert session.undo() == "animate" and session.redo() == "animate"
    session.step()
    session.reset("a blue square", 5)
    session.step()
    assert session.undo_action() == "prompt"  # the block after it goes too
    session.apply(drag(targets=((10.0, 14.0),)))
    return session


def test_an_animation_is_one_undo_step_and_redo_puts_back_exactly(tiny_backend):
    s = StreamSession(tiny_backend, "a red circle")
    s.step()
    before = s.frames().copy()
    s.apply(drag(Mode.ANIMATE, ANIMATION))
    s.step()
    s.step()
    after, blocks = s.frames().copy(), s.num_blocks
    assert s.undo() == "animate"  # both blocks it drove, at once
    assert np.array_equal(s.frames(), before) and not s.animating
    assert s.redo() == "animate"
    assert s.num_blocks == blocks and np.array_equal(s.frames(), after)
    with pytest.raises(IndexError, match="nothing to redo"):
        s.redo()


def test_reset_and_prompt_change_are_undoable_and_a_new_action_ends_redo(tiny_backend):
    s = StreamSession(tiny_backend, "a red circle", seed=2)
    s.step()
    frames = s.frames().copy()
    s.reset("a green star", 9)
    assert (s.prompt, s.seed, s.num_blocks) == ("a green star", 9, 0)
    assert s.undo() == "prompt"
    assert (s.prompt, s.seed) == ("a red circle", 2) and np.array_equal(s.frames(), frames)
    s.redo()
    s.undo()
    s.step()  # a new action: what was undone cannot come back
    assert not s.can_redo
    with pytest.raises(IndexError, match="no drag, reset or prompt change"):
        s.undo_action()  # blocks alone are no one's action


def test_a_saved_session_replays_bit_identically_in_a_fresh_process(tmp_path):
    """The guarantee holds at one torch thread (at more, a sum may be ordered differently)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        s = scripted(StreamSession(random_backend(TINY, seed=0), "a red circle", seed=3))
        s.save(tmp_path / "session.json")
        np.save(tmp_path / "frames.npy", s.frames())
        s.step()  # how the original goes on
        np.save(tmp_path / "next.npy", s.frames())
    finally:
        torch.set_num_threads(threads)
    script = textwrap.dedent(f"""
        import numpy as np, torch
        torch.set_num_threads(1)
        from dragstream_widget.engine.session import StreamSession
        from dragstream_widget.models.random_model import TINY, random_backend
        s = StreamSession.load({str(tmp_path / "session.json")!r}, random_backend(TINY, seed=0))
        assert np.array_equal(s.frames(), np.load({str(tmp_path / "frames.npy")!r})), "replayed frames differ"
        s.step()
        assert np.array_equal(s.frames(), np.load({str(tmp_path / "next.npy")!r})), "it goes on differently"
        assert s.undo() == "block" and s.undo() == "edit"  # and its history came back too
        print("identical")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "identical" in done.stdout, done.stderr[-2000:]
    document = json.loads((tmp_path / "session.json").read_text())
    assert document["torch_threads"] == 1 and "torch" in document["versions"]


def test_load_refuses_another_model_and_bad_fields_naming_them(tiny_backend, tmp_path):
    s = StreamSession(tiny_backend, "a red circle")
    s.step()
    path = s.save(tmp_path / "s.json")
    with pytest.raises(SessionFileError, match="model.fingerprint"):
        StreamSession.load(path, random_backend(TINY, seed=1))
    document = json.loads(path.read_text())
    document["actions"][1] = {"action": "os.system", "blocks": 1}
    path.write_text(json.dumps(document))
    with pytest.raises(SessionFileError, match=r"actions\[1\]: unknown action"):
        StreamSession.load(path, tiny_backend)
    document["actions"][1] = {"action": "step", "blocks": 7}
    path.write_text(json.dumps(document))
    with pytest.raises(SessionFileError, match=r"actions\[1\].blocks: the replay holds 1 blocks"):
        StreamSession.load(path, tiny_backend)


def test_replay_from_the_command_line_writes_frames_and_a_video(tmp_path):
    from dragstream_widget.models.toyworld.model import load_model
    from dragstream_widget.models.toyworld.scenes import DEFAULT_PROMPT, opening_frames

    backend = load_model()
    start = opening_frames(DEFAULT_PROMPT, 0, backend.layout.frames_per_block)
    s = StreamSession(backend, DEFAULT_PROMPT, 0, start_frames=start)  # the opening frames alone: fast
    s.save(tmp_path / "toy.json")
    result = main(["session", "replay", str(tmp_path / "toy.json"), "--out", str(tmp_path / "out")])
    assert result["identical"] and result["frames"] == len(s.frames())
    assert (tmp_path / "out" / "replay.mp4").stat().st_size > 0
    (tmp_path / "bad.json").write_text('{"format": "dragstream-session/1", "model": 3}')
    with pytest.raises(SystemExit) as stop:
        main(["session", "replay", str(tmp_path / "bad.json"), "--out", str(tmp_path / "out")])
    assert stop.value.code == 2


def test_long_streams_keep_memory_bounded(tiny_backend):
    s = StreamSession(tiny_backend, "a red circle", undo_depth=2, latent_blocks=4, keep_frames=False)
    for k in range(10):
        if k == 3:
            s.apply(drag(Mode.ANIMATE, ANIMATION[:2]))
        s.step()
    assert [b.z0 is not None for b in s.blocks] == [False] * 6 + [True] * 4
    assert [len(b.frames) > 0 for b in s.blocks] == [False] * 6 + [True] * 4
    assert [b.cache_before is not None for b in s.blocks] == [False] * 7 + [True] * 3
    assert sum(b.num_frames for b in s.blocks) == 10 * TINY.frames_per_block
    for entry in s._history._done:  # each remembered state keeps one snapshot
        assert sum(b.cache_before is not None for b in entry.before.blocks) == 1
    assert s.undo_action() == "animate"  # the drag is still undoable, 6 blocks later
    assert s.num_blocks == 3
    s.step()


def test_concurrent_actions_run_one_at_a_time(tiny_backend):
    """On main, two threads applying at once raised or committed an edit matching neither order."""
    edits = (drag(targets=((16.0, 12.0),)), drag(targets=((12.0, 15.0),)))
    results = {}
    for order in ((0, 1), (1, 0)):
        s = StreamSession(tiny_backend, "a red circle")
        s.step()
        for k in order:
            s.apply(edits[k])
        results[order] = s.frames()
    s = StreamSession(tiny_backend, "a red circle")
    s.step()
    errors = []
    threads = [threading.Thread(target=lambda e=e: _apply(s, e, errors)) for e in edits]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert any(np.array_equal(s.frames(), r) for r in results.values())
    assert s.undo() == "edit" and s.undo() == "edit"


def _apply(session, instruction, errors):
    try:
        session.apply(instruction)
    except Exception as error:  # what the test is about
        errors.append(error)


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**63 - 1, 1.5, True, "3"])
def test_seeds_outside_the_one_range_are_refused(tiny_backend, seed):
    """On main, seeds above about 6e17 broke every drag, and -1 and 2**63-1 gave the same stream."""
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 4294967295"):
        StreamSession(tiny_backend, "a red circle", seed=seed)


@pytest.mark.parametrize("prompt", [None, "", "   ", 3])
def test_prompts_are_type_checked(tiny_backend, prompt):
    """On main, a prompt of None raised AttributeError."""
    with pytest.raises(ValueError, match="prompt"):
        StreamSession(tiny_backend, prompt)


def test_a_drag_applies_to_the_frame_it_was_drawn_on(tiny_backend):
    """On main, frame_index was ignored: a drag drawn on frame 0 went to the frame on screen."""
    per_block = TINY.frames_per_block
    s = StreamSession(tiny_backend, "a red circle")
    for _ in range(3):
        s.step()
    reference = StreamSession(tiny_backend, "a red circle")
    reference.step()
    reference.step()
    expected = reference.apply(drag())
    record = s.apply(drag(frame_index=per_block))  # drawn on the second block
    assert s.num_blocks == 2 and np.array_equal(record.frames, expected.frames)
    assert s.undo() == "edit" and s.num_blocks == 3
    with pytest.raises(InvalidInstruction, match="past the"):
        s.apply(drag(frame_index=99))
    deep = StreamSession(tiny_backend, "a red circle", undo_depth=1, latent_blocks=4)
    for _ in range(4):
        deep.step()
    with pytest.raises(InvalidInstruction, match="too old to drag"):
        deep.apply(drag(frame_index=0))
