import numpy as np
import torch

from dragstream_widget.engine.branches import adsr_comparison, latent_branches
from dragstream_widget.engine.config import DragConfig
from dragstream_widget.engine.session import StreamSession, latent_statistics
from dragstream_widget.ops import DragInstruction, HandleRegion, Mode, Operation

CONFIG = DragConfig(iterations=2, learning_rate=0.1)


def drag(mode: Mode, targets) -> DragInstruction:
    mask = np.zeros((32, 32), bool)
    mask[8:16, 8:16] = True
    return DragInstruction(mode, (32, 32), (HandleRegion(mask, Operation.TRANSLATE, (11.5, 11.5), targets),))


def stream(backend, blocks: int) -> StreamSession:
    session = StreamSession(backend, "branches", seed=3, config=CONFIG)
    for _ in range(blocks):
        session.step()
    return session


def stats_of(records) -> np.ndarray:
    return np.concatenate([latent_statistics(r.index, r.z0)["std"] for r in records])


def test_branches_match_the_streams_they_stand_for_and_leave_the_session_as_it_was(tiny_backend):
    session = stream(tiny_backend, 2)
    before = (session.latents().clone(), len(session._history), session.config)
    heard = []
    session.events.subscribe("block", heard.append)
    animation = drag(Mode.ANIMATE, ((13.0, 11.5), (15.0, 12.0), (17.0, 12.5)))
    branches = adsr_comparison(session, animation)

    assert heard == []  # listeners saw none of it
    assert torch.equal(session.latents(), before[0]) and len(session._history) == before[1]
    assert session.config is before[2] and not session.animating

    # each branch equals a twin stream that really did it
    plain = stream(tiny_backend, 2)
    plain.step(), plain.step(), plain.step()
    np.testing.assert_allclose(branches["no drag"]["std"], stats_of(plain.blocks[1:]), rtol=1e-5)
    twin = stream(tiny_backend, 2)
    twin.config = CONFIG.without("adsr")
    twin.apply(animation)
    twin.step(), twin.step(), twin.step()
    np.testing.assert_allclose(branches["drag without ADSR"]["std"], stats_of(twin.blocks[1:]), rtol=1e-5)
    assert not np.allclose(branches["no drag"]["std"], branches["drag without ADSR"]["std"])

    # and the session goes on exactly as if no branch had run
    session.step()
    torch.testing.assert_close(session.blocks[-1].z0, plain.blocks[2].z0)


def test_an_edit_branch_starts_at_the_re_rendered_block(tiny_backend):
    session = stream(tiny_backend, 2)
    edit = drag(Mode.EDIT, ((14.0, 11.5),))
    branches = latent_branches(session, {"edit": (CONFIG, edit), "none": (CONFIG, None)}, 1)
    frames = tiny_backend.layout.frames_per_block
    assert branches["edit"]["mean"].shape == branches["none"]["mean"].shape == (2 * frames,)
    assert not np.allclose(branches["edit"]["mean"][:frames], branches["none"]["mean"][:frames])
    np.testing.assert_allclose(
        branches["none"]["mean"][:frames], latent_statistics(1, session.blocks[-1].z0)["mean"]
    )
