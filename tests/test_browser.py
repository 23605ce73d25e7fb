"""The widget in a real browser: JupyterLab runs the quickstart notebook, Chromium draws drags.

Starts JupyterLab on loopback, drives Debian's chromium with Playwright, runs every cell, waits for
frames to stream, paints handle regions and draws trajectories with the mouse, applies an animation
and an edit while the video plays, and checks through the notebook's own kernel that exactly those
instructions arrived (in model pixels) and that the frames on screen changed. Screenshots go to
``$DRAGSTREAM_SCREENSHOTS`` (default: the test's temporary folder); measured numbers to
``browser_metrics.json`` beside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from dragstream_widget.geometry import resample_polyline
from dragstream_widget.ops import decode_mask

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NOTEBOOKS = Path(__file__).parent.parent / "notebooks"

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")
jupyter_client = pytest.importorskip("jupyter_client")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(app: str, root: Path):
    """A JupyterLab (``app="jupyterlab"``) or Notebook 7 (``"notebook"``) server on loopback serving
    ``root``; yields ``(base url, token, kernel runtime dir)``."""
    runtime = root / "runtime"
    settings = root / "settings" / "@jupyterlab"
    for extension, plugin, values in [
        ("apputils-extension", "notification", '{"fetchNews": "false", "checkForUpdates": false}'),
        ("notebook-extension", "tracker", '{"autoStartDefaultKernel": true}'),  # no kernel dialog
    ]:
        (settings / extension).mkdir(parents=True, exist_ok=True)
        (settings / extension / f"{plugin}.jupyterlab-settings").write_text(values)
    port, token = free_port(), secrets.token_hex(16)
    app_class = {"jupyterlab": "LabApp", "notebook": "JupyterNotebookApp"}[app]
    command = [
        sys.executable,
        "-m",
        app,
        "--no-browser",
        "--allow-root",
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--{app_class}.user_settings_dir={root / 'settings'}",
    ]
    with app_server(command, root, port, app, {"JUPYTER_RUNTIME_DIR": str(runtime)}):
        yield f"http://127.0.0.1:{port}", token, runtime


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a copy of the quickstart; yields (notebook url, kernel runtime dir, root)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(NOTEBOOKS / "01_quickstart.ipynb", root)
    with jupyter_server("jupyterlab", root) as (base, token, runtime):
        yield f"{base}/lab/tree/01_quickstart.ipynb?token={token}", runtime, root


class Kernel:
    """A second client on the notebook's own kernel, to read what the widget received."""

    def __init__(self, runtime: Path):
        files = sorted(runtime.glob("kernel-*.json"))
        assert len(files) == 1, f"expected one running kernel, found {files}"
        self.client = jupyter_client.BlockingKernelClient()
        self.client.load_connection_file(str(files[0]))
        self.client.start_channels()

    def run(self, code: str) -> str:
        """Run ``code`` in the notebook's namespace; what it printed."""
        out = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))

        self.client.execute_interactive(code, output_hook=hook, timeout=120)
        return "".join(out)

    def evaluate(self, expression: str):
        """The JSON value of ``expression`` in the notebook's namespace."""
        # Written to a file, not printed: a print can land in an output area the notebook is capturing.
        handle, name = tempfile.mkstemp(suffix=".json")
        os.close(handle)
        self.run(f"import json as _j, pathlib as _p; _p.Path({name!r}).write_text(_j.dumps({expression}))")
        value = json.loads(Path(name).read_text())
        os.unlink(name)
        return value

    def close(self):
        self.client.stop_channels()


def visible_object_center(kernel: Kernel) -> list[int]:
    """Centre of the red circle on the widget's current frame, or of the blue square where the two have
    met and the circle is hidden."""
    kernel.run("from dragstream_widget.models.toyworld.world import segment_object")
    visible = kernel.evaluate(
        "[c for c in ('red', 'blue') if segment_object(widget.session.frames()[-1], c).sum() > 20]"
    )
    assert visible, "both objects vanished from the stream"
    return kernel.evaluate(
        f"[round(v) for v in object_region(widget.session.frames()[-1], {visible[0]!r})[1]]"
    )


def stage_point(box: dict, point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    """Display coordinates of a model pixel (pixel centres at integers) on the stage's bounding box."""
    height, width = size
    return box["x"] + (point[0] + 0.5) / width * box["width"], box["y"] + (point[1] + 0.5) / height * box[
        "height"
    ]


def disc(size: tuple[int, int], center: tuple[float, float], radius: float) -> np.ndarray:
    ys, xs = np.mgrid[: size[0], : size[1]]
    return (xs - center[0]) ** 2 + (ys - center[1]) ** 2 <= radius**2


SET_RANGE = "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }"


def wait_for(page, condition: str, timeout: float = 120.0):
    page.wait_for_function(condition, timeout=timeout * 1000)


def frame_pixels(page) -> str:
    return page.eval_on_selector(".dsw-frame", "c => c.toDataURL()")


def draw_drag(
    page,
    mode: str,
    handle,
    path,
    size,
    brush: int,
    picture: Path,
    pictured: str = ".dsw",
    key: str | None = None,
):
    """Paint a disc on the handle, draw the trajectory through ``path``, choose ``mode``, press Apply
    (or the keyboard ``key``, the widget focused by the drawing). ``picture`` is a screenshot of
    ``pictured`` with the drag drawn, just before it is applied."""
    box = page.locator(".dsw-vectors").bounding_box()
    page.select_option(".dsw select >> nth=0", mode)
    page.click("button[data-tool=handle]")
    page.eval_on_selector("input[type=range][title^='brush']", SET_RANGE, brush)
    page.mouse.move(*stage_point(box, handle, size))
    page.mouse.down()
    page.mouse.up()
    page.click("button[data-tool=path]")
    page.mouse.move(*stage_point(box, handle, size))
    page.mouse.down()
    for point in path:
        page.mouse.move(*stage_point(box, point, size), steps=4)
    page.mouse.up()
    page.locator(pictured).first.screenshot(path=picture)
    if key is None:
        page.click("button.dsw-apply")
    else:
        page.keyboard.press(key)


def polyline_points(handle, corners, step: float):
    """Every pointer position the drawing passes: straight runs from corner to corner in ``step`` px."""
    points, current = [tuple(handle)], np.asarray(handle, float)
    for corner in corners:
        corner = np.asarray(corner, float)
        n = max(1, int(np.ceil(np.linalg.norm(corner - current) / step)))
        points += [tuple(current + (corner - current) * k / n) for k in range(1, n + 1)]
        current = corner
    return points


def run_all_cells(page, attempts: int = 3) -> None:
    """Run > Run All Cells, with the notebook focused, until the first code cell has started."""
    started = "document.querySelector('.jp-CodeCell .jp-InputPrompt').textContent.match(/\\[(\\*|\\d+)\\]/)"
    for _ in range(attempts):
        page.click(".jp-Notebook .jp-Cell >> nth=0")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=30_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_function(started, timeout=20_000)
            return
        except sync_api.TimeoutError:
            continue
    raise AssertionError("JupyterLab did not start running the notebook")


def run_in_browser(page, lab, shots: Path) -> dict:
    """Run the notebook, stream, draw an animation and an edit; returns what was sent and measured."""
    url, runtime, _ = lab
    page.goto(url)
    page.wait_for_selector(".jp-Notebook", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    run_all_cells(page)
    page.wait_for_selector("text=drag(s) received from the widget so far", timeout=600_000)
    page.locator(".dsw").scroll_into_view_if_needed()
    wait_for(page, "Number(document.querySelector('.dsw').dataset.framesDrawn) > 0")
    page.screenshot(path=shots / "widget_after_notebook.png")

    kernel = Kernel(runtime)
    try:
        size = tuple(kernel.evaluate("widget.frame_size"))
        sent = {"size": size, "brush": 3, "frames": kernel.evaluate("widget.animation_frames")}
        # Stream, and measure what reaches the browser.
        page.click("button.dsw-play")
        drawn_before, started = (
            int(page.eval_on_selector(".dsw", "e => e.dataset.framesDrawn")),
            time.monotonic(),
        )
        time.sleep(6)
        drawn = int(page.eval_on_selector(".dsw", "e => e.dataset.framesDrawn")) - drawn_before
        measured = {
            "frames_per_second_in_browser": drawn / (time.monotonic() - started),
            "frames_per_second_acknowledged": kernel.evaluate("widget.delivered_fps()"),
            "generation_frames_per_second": kernel.evaluate("widget.generation_fps"),
        }
        page.screenshot(path=shots / "widget_streaming.png")
        doc_screenshot(page.locator(".widget-hbox").first, "widget_dpr1.png", shots)

        # An animation while the video plays: the blue square along an L-shaped path.
        blue = kernel.evaluate("[round(v) for v in object_region(widget.session.frames()[-1], 'blue')[1]]")
        dx, dy = (8 if blue[0] < 32 else -8), (6 if blue[1] < 32 else -6)
        path = polyline_points(blue, [(blue[0] + dx, blue[1]), (blue[0] + dx, blue[1] + dy)], step=1.0)
        before = frame_pixels(page)
        draw_drag(
            page,
            "animate",
            tuple(blue),
            path[1:],
            size,
            sent["brush"],
            shots / "widget_animation_drawn.png",
            pictured=".widget-hbox",
        )
        wait_for(page, "document.querySelector('.dsw').dataset.dragLatency !== ''")
        measured["animation_drag_to_first_changed_frame_s"] = float(
            page.eval_on_selector(".dsw", "e => e.dataset.dragLatency")
        )
        time.sleep(1.0)
        page.screenshot(path=shots / "widget_animation.png")
        measured["frame_changed_after_animation"] = frame_pixels(page) != before

        # An edit while the video plays (after the animation, whose slower blocks would delay it): the
        # red circle 6 px sideways, or the square if the two have met and the circle is hidden.
        deadline = time.monotonic() + 120
        while kernel.evaluate("widget.session.animating") and time.monotonic() < deadline:
            time.sleep(0.2)
        red = visible_object_center(kernel)
        target = (red[0] + 6 if red[0] < 40 else red[0] - 6, red[1])
        before = frame_pixels(page)
        draw_drag(
            page,
            "edit",
            tuple(red),
            polyline_points(red, [target], step=1.0)[1:],
            size,
            sent["brush"],
            shots / "widget_edit_drawn.png",
            key="Enter",
        )
        wait_for(page, "document.querySelector('.dsw').dataset.dragLatency !== ''")
        measured["edit_drag_to_first_changed_frame_s"] = float(
            page.eval_on_selector(".dsw", "e => e.dataset.dragLatency")
        )
        measured["edit_seconds_in_kernel"] = kernel.evaluate("widget._controller.last_edit_seconds")
        page.click("button.dsw-play")  # pause
        wait_for(page, "document.querySelector('.dsw-play').textContent === 'Play'")
        time.sleep(0.5)
        measured["frame_changed_after_edit"] = frame_pixels(page) != before
        page.screenshot(path=shots / "widget_edit.png")

        # What the frame path itself delivers, without waiting for the model: a replay at 30 frames/s.
        page.eval_on_selector(
            "input[type=range][title^='playback']",
            "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
            30,
        )
        page.click("button.dsw-replay")
        time.sleep(0.5)
        drawn_before, started = (
            int(page.eval_on_selector(".dsw", "e => e.dataset.framesDrawn")),
            time.monotonic(),
        )
        time.sleep(3)
        drawn = int(page.eval_on_selector(".dsw", "e => e.dataset.framesDrawn")) - drawn_before
        measured["replay_frames_per_second_in_browser_at_speed_30"] = drawn / (time.monotonic() - started)
        measured["frame_round_trip_s"] = kernel.evaluate("widget._pacer.round_trip")
        measured["frames_sent_dropped"] = kernel.evaluate("[widget._pacer.sent, widget._pacer.dropped]")
        page.click("button:text-is('Stop')")

        # Figure 2a live: with *compare* on, a drag also runs without ADSR and not at all, drawn dashed.
        page.click("label:has-text('compare') input")
        back = visible_object_center(kernel)
        back_target = (back[0] - 4 if back[0] > 8 else back[0] + 4, back[1])
        draw_drag(
            page,
            "edit",
            tuple(back),
            polyline_points(back, [back_target], step=1.0)[1:],
            size,
            sent["brush"],
            shots / "widget_compare_drawn.png",
        )
        wait_for(page, "document.querySelector('.dsw').dataset.dragLatency !== ''")
        time.sleep(1.0)
        page.locator(".widget-hbox").first.screenshot(path=shots / "widget_with_comparison.png")
        sent["comparison"] = kernel.evaluate("sorted(strips.comparison.get('branches', {}))")
        sent.update(blue=blue, path=path, red=red, target=target)
        sent["received"] = kernel.evaluate("[i.to_json() for i in widget.received]")
        sent["status"] = kernel.evaluate("widget.status")
    finally:
        kernel.close()
    return {"sent": sent, "measured": measured}


def test_quickstart_in_jupyterlab(lab, tmp_path):
    shots = Path(os.environ.get("DRAGSTREAM_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        console = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"page error: {e}"))
        try:
            result = run_in_browser(page, lab, shots)
        except Exception:
            page.screenshot(path=shots / "failure.png")
            print("\n".join(console[-40:]))
            raise
        finally:
            browser.close()
    sent, measured = result["sent"], result["measured"]
    (shots / "browser_metrics.json").write_text(json.dumps(measured, indent=2))
    print(json.dumps(measured, indent=2))

    size, brush = sent["size"], sent["brush"]
    assert len(sent["received"]) == 3, sent["received"]
    animation, edit, _ = sent["received"]
    assert sent["comparison"] == ["drag without ADSR", "no drag"]
    assert animation["mode"] == "animate" and edit["mode"] == "edit"
    for instruction, handle in ((animation, sent["blue"]), (edit, sent["red"])):
        assert instruction["frame_size"] == list(size)
        (region,) = instruction["regions"]
        assert region["operation"] == "translate"
        np.testing.assert_allclose(region["handle"], handle, atol=0.02)
        np.testing.assert_array_equal(decode_mask(region["mask"]), disc(size, handle, brush))
    expected = resample_polyline(sent["path"], sent["frames"])
    np.testing.assert_allclose(animation["regions"][0]["targets"], expected, atol=0.03)
    np.testing.assert_allclose(edit["regions"][0]["targets"], [sent["target"]], atol=0.02)
    assert "error" not in sent["status"].lower()
    assert measured["frame_changed_after_animation"] and measured["frame_changed_after_edit"]
    assert measured["frames_per_second_in_browser"] > 2.0


def test_widget_in_notebook_7_on_a_wide_frame(tmp_path):
    """Notebook 7, a 72x40 random model shown 430 px wide (a non-square frame at a non-integer scale):
    frames stream, and an edit drawn with the mouse reaches the kernel in exact model pixels."""
    nbformat = pytest.importorskip("nbformat")
    root = tmp_path / "nb7"
    root.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import dragstream_widget as dsw\n"
            "from dragstream_widget.models.random_model import RandomModelSpec, random_backend\n"
            "backend = random_backend(RandomModelSpec(latent_height=10, latent_width=18, frames_per_block=2))\n"
            "widget = dsw.DragStreamWidget(backend, 'a wide test frame', seed=2, display_width=430)\n"
            "widget"
        ),
        nbformat.v4.new_code_cell(
            "widget.step(2).result()\nprint('streamed', widget.session.num_blocks, 'blocks')"
        ),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "widget.ipynb")
    shots = Path(os.environ.get("DRAGSTREAM_SCREENSHOTS", tmp_path))
    handle, target, brush = (17.0, 23.0), (29.0, 15.0), 4
    kept_stroke, undone_stroke = (55.0, 30.0), (60.0, 8.0)
    with jupyter_server("notebook", root) as (base, token, runtime):
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            try:
                page.goto(f"{base}/notebooks/widget.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook", timeout=90_000)
                run_all_cells(page)
                page.wait_for_selector("text=streamed 2 blocks", timeout=300_000)
                wait_for(page, "Number(document.querySelector('.dsw').dataset.framesDrawn) > 0")
                box = page.locator(".dsw-vectors").bounding_box()
                kernel = Kernel(runtime)
                try:
                    size = tuple(kernel.evaluate("widget.frame_size"))
                    path = polyline_points(handle, [target], step=0.7)[1:]
                    # Two stray strokes, the second undone with Ctrl+Z: only the first may reach the kernel.
                    page.click("button[data-tool=handle]")
                    page.eval_on_selector("input[type=range][title^='brush']", SET_RANGE, brush)
                    for point in (kept_stroke, undone_stroke):
                        page.mouse.click(*stage_point(box, point, size))
                    page.keyboard.press("Control+z")
                    draw_drag(page, "edit", handle, path, size, brush, shots / "notebook7_edit_drawn.png")
                    wait_for(page, "document.querySelector('.dsw').dataset.dragLatency !== ''")
                    received = kernel.evaluate("[i.to_json() for i in widget.received]")
                finally:
                    kernel.close()
                page.screenshot(path=shots / "notebook7.png")
            except Exception:
                page.screenshot(path=shots / "notebook7_failure.png")
                raise
            finally:
                browser.close()
    assert size == (40, 72) and abs(box["width"] - 430) < 1 and abs(box["height"] - 430 * 40 / 72) < 1
    (edit,) = received
    assert edit["mode"] == "edit" and edit["frame_size"] == [40, 72]
    np.testing.assert_allclose(edit["regions"][0]["handle"], handle, atol=0.02)
    np.testing.assert_allclose(edit["regions"][0]["targets"], [target], atol=0.02)
    expected = disc(size, handle, brush) | disc(size, kept_stroke, brush)
    np.testing.assert_array_equal(decode_mask(edit["regions"][0]["mask"]), expected)


# ----- the widget in a person's hands: one JupyterLab, one page at device pixel ratio 2 ---------------

PERSON_PROMPT = "a red circle and a blue square on a striped background"
DOC_IMAGES = os.environ.get("DRAGSTREAM_DOC_IMAGES")  # where the docs' screenshots are refreshed, if set


def doc_screenshot(locator, name: str, shots: Path) -> None:
    """A screenshot for the docs: into ``$DRAGSTREAM_DOC_IMAGES`` where set (docs/images), else ``shots``."""
    folder = Path(DOC_IMAGES) if DOC_IMAGES else shots
    folder.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=folder / name)


def dataset(page, key: str) -> str:
    return page.eval_on_selector(".dsw", f"e => e.dataset.{key} ?? ''")


def frame_index(page) -> int:
    return int(dataset(page, "frameIndex") or -1)


def press_play(page, playing: bool) -> None:
    """Press Play (or Pause) and wait until the button says the stream is ``playing`` (or not)."""
    page.click("button.dsw-play")
    wait_for(
        page, f"document.querySelector('.dsw-play').textContent === '{'Pause' if playing else 'Play'}'", 30
    )


def paint(page, size, points, brush: int) -> None:
    """Paint with the handle brush through ``points`` (model pixels), one stroke."""
    box = page.locator(".dsw-vectors").bounding_box()
    page.click("button[data-tool=handle]")
    page.eval_on_selector("input[type=range][title^='brush']", SET_RANGE, brush)
    page.mouse.move(*stage_point(box, points[0], size))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*stage_point(box, point, size), steps=3)
    page.mouse.up()


def trajectory(page, size, handle, target) -> None:
    box = page.locator(".dsw-vectors").bounding_box()
    page.click("button[data-tool=path]")
    page.mouse.move(*stage_point(box, handle, size))
    page.mouse.down()
    for point in polyline_points(handle, [target], step=1.0)[1:]:
        page.mouse.move(*stage_point(box, point, size), steps=2)
    page.mouse.up()


@pytest.fixture(scope="module")
def chromium():
    """One chromium for the tests below (Playwright's sync API runs one at a time in a thread)."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def person(tmp_path_factory, chromium):
    """JupyterLab with the README's widget and its live strips, at device pixel ratio 2 (a laptop
    screen); yields (page, kernel, shots folder, measured figures)."""
    nbformat = pytest.importorskip("nbformat")
    root = tmp_path_factory.mktemp("person")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import ipywidgets\n"
            "import dragstream_widget as dsw\n"
            "from dragstream_widget.models.toyworld.scenes import object_region\n"
            f"widget = dsw.DragStreamWidget(dsw.load_model(), {PERSON_PROMPT!r}, export_dir='exports')\n"
            "strips = widget.live_strips()\n"
            "ipywidgets.HBox([widget, strips], layout=ipywidgets.Layout(flex_flow='row wrap', grid_gap='12px'))"
        ),
        nbformat.v4.new_code_cell(
            "widget.step(2).result()\nprint('streamed', widget.session.num_blocks, 'blocks')"
        ),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, root / "person.ipynb")
    shots = Path(os.environ.get("DRAGSTREAM_SCREENSHOTS", root / "shots"))
    shots.mkdir(parents=True, exist_ok=True)
    measured: dict = {}
    with jupyter_server("jupyterlab", root) as (base, token, runtime):
        page = chromium.new_page(viewport={"width": 1300, "height": 1500}, device_scale_factor=2)
        try:
            page.goto(f"{base}/lab/tree/person.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook", timeout=90_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
            run_all_cells(page)
            page.wait_for_selector("text=/streamed \\d+ blocks/", timeout=300_000)  # the output, not the code
            page.wait_for_selector(".dsw", timeout=120_000)
            page.locator(".dsw").scroll_into_view_if_needed()
            wait_for(page, "Number(document.querySelector('.dsw').dataset.framesDrawn) > 0")
            kernel = Kernel(runtime)
            try:
                yield page, kernel, shots, measured
            finally:
                kernel.close()
        except Exception:
            page.screenshot(path=shots / "person_failure.png")
            raise
        finally:
            (shots / "person_metrics.json").write_text(json.dumps(measured, indent=2))
            print(json.dumps(measured, indent=2))
            page.close()


def test_4_the_readme_widget_starts_from_its_worlds_opening_frames(person):
    _, kernel, _, _ = person
    assert kernel.evaluate("widget.session.blocks[0].given")


def test_5_frames_shown_count_distinct_frames_paced_evenly(person):
    page, kernel, shots, measured = person
    wait_for(page, "document.querySelector('.dsw').dataset.fps === ''", 60)  # the opening blocks played
    time.sleep(1.5)  # and the stream has stopped
    distinct = int(dataset(page, "distinctDrawn"))
    page.click(".dsw button:text-is('Step')")
    wait_for(page, f"Number(document.querySelector('.dsw').dataset.distinctDrawn) > {distinct}", 60)
    assert dataset(page, "fps") == ""  # no rate from the first frame (it read 1000 frames/s)
    press_play(page, True)
    time.sleep(6)
    measured["playing_frames_per_second_shown"] = float(dataset(page, "fps") or 0)
    measured["playing_jitter_ms"] = float(dataset(page, "jitter") or 0)
    measured["playing_frames_per_second_generated"] = kernel.evaluate("widget.generation_fps")
    page.locator(".widget-hbox").first.screenshot(path=shots / "person_playing.png")
    redraws = int(dataset(page, "framesDrawn")) - int(dataset(page, "distinctDrawn"))
    press_play(page, False)
    time.sleep(4)  # the frames made play out, then the lossless still of the last: drawn again, not shown
    assert int(dataset(page, "framesDrawn")) - int(dataset(page, "distinctDrawn")) > redraws
    # Shown never exceeds made while playing live (repeated draws used to count).
    assert (
        measured["playing_frames_per_second_shown"]
        <= 1.25 * measured["playing_frames_per_second_generated"] + 0.5
    )
    # Replay at 8 frames/s: the frame path alone, evenly paced.
    page.eval_on_selector("input[type=range][title^='playback']", SET_RANGE, 8)
    page.click("button.dsw-replay")
    time.sleep(3)
    measured["replay_at_8_frames_per_second_shown"] = float(dataset(page, "fps") or 0)
    measured["replay_at_8_jitter_ms"] = float(dataset(page, "jitter") or 0)
    page.click("button:text-is('Stop')")
    assert 6.0 <= measured["replay_at_8_frames_per_second_shown"] <= 9.0
    page.eval_on_selector("input[type=range][title^='playback']", SET_RANGE, 16)


def test_1_play_after_a_12_s_pause_keeps_playing(person):
    page, kernel, _, _ = person
    press_play(page, True)
    time.sleep(2)
    press_play(page, False)
    time.sleep(12)
    press_play(page, True)
    shown = frame_index(page)
    time.sleep(4)
    assert kernel.evaluate("widget.playing"), kernel.evaluate("widget.status")
    assert "no view has shown" not in kernel.evaluate("widget.status")
    assert frame_index(page) > shown
    press_play(page, False)
    assert "generating at" not in kernel.evaluate("widget.status")  # problem 8: not after a pause


def test_3_painting_holds_the_frame_and_clear_resumes(person):
    page, kernel, _, _ = person
    size = tuple(kernel.evaluate("widget.frame_size"))
    press_play(page, True)
    time.sleep(2)
    paint(page, size, [(10, 10), (14, 12)], brush=2)
    held = frame_index(page)
    time.sleep(2)
    assert frame_index(page) == held and dataset(page, "held") == "true"
    assert not kernel.evaluate("widget.playing") and "held on frame" in kernel.evaluate("widget.status")
    page.click("button.dsw-clear")
    time.sleep(3)
    assert kernel.evaluate("widget.playing") and frame_index(page) > held
    press_play(page, False)


def test_2_six_applies_give_one_drag_and_apply_stays_put(person):
    page, kernel, shots, measured = person
    size = tuple(kernel.evaluate("widget.frame_size"))
    red = visible_object_center(kernel)
    target = (red[0] + 5 if red[0] < 40 else red[0] - 5, red[1])
    received = kernel.evaluate("len(widget.received)")
    blocks = kernel.evaluate("widget.session.num_blocks")
    page.select_option(".dsw select >> nth=0", "edit")
    paint(page, size, [tuple(red)], brush=4)
    trajectory(page, size, tuple(red), target)
    button = page.locator("button.dsw-apply")
    before = button.bounding_box()
    for k in range(6):
        page.keyboard.press("Enter")
        if k == 0:
            assert page.eval_on_selector("button.dsw-apply", "b => b.disabled")  # while the drag runs
    wait_for(page, "document.querySelector('.dsw').dataset.applying === 'false'", 120)
    wait_for(page, "document.querySelector('.dsw').dataset.dragLatency !== ''", 120)
    measured["edit_apply_to_frame_s"] = float(dataset(page, "dragLatency"))
    page.click("button.dsw-apply")  # the drawing was consumed: nothing more to send
    time.sleep(0.5)
    assert kernel.evaluate("len(widget.received)") == received + 1
    assert kernel.evaluate("widget.session.num_blocks") == blocks
    assert "nothing to apply" in page.inner_text(".dsw-status")
    assert button.bounding_box() == before  # the line above it changed ("last drag on screen ...")
    page.locator(".widget-hbox").first.screenshot(path=shots / "person_after_edit.png")


def test_7_refused_prompts_leave_the_box_on_the_prompt_in_use(person):
    page, kernel, _, _ = person
    for prompt, says in [
        ("a dog running on a beach", "unknown word 'dog'"),
        ("circle red a and on blue", "cannot read"),
        ("", "prompt is empty"),
    ]:
        page.fill(".dsw-prompt", prompt)
        page.press(".dsw-prompt", "Enter")
        page.dispatch_event(".dsw-prompt", "change")  # what leaving the box does, should Enter not commit it
        try:
            wait_for(
                page, f"document.querySelector('.dsw-status').textContent.includes({json.dumps(says)})", 30
            )
            wait_for(page, f"document.querySelector('.dsw-prompt').value === {json.dumps(PERSON_PROMPT)}", 30)
        except sync_api.TimeoutError:
            raise AssertionError(
                f"{prompt!r}: status {page.inner_text('.dsw-status')!r}, box {page.input_value('.dsw-prompt')!r}"
            ) from None
    assert kernel.evaluate("widget.session.prompt") == PERSON_PROMPT


def test_8_switches_confirm_and_a_whole_frame_handle_is_refused(person):
    page, kernel, _, _ = person
    size = tuple(kernel.evaluate("widget.frame_size"))
    for label in ("ADSR", "SFS", "CSS"):
        for state in ("off", "on"):
            page.click(f"label.dsw-check:has-text('{label}') input")
            wait_for(
                page, f"document.querySelector('.dsw-status').textContent.startsWith('{label} {state}')", 30
            )
    received = kernel.evaluate("len(widget.received)")
    height, width = size
    rows = [
        (x, y) for y in range(0, height, 8) for x in ((0, width - 1) if (y // 8) % 2 == 0 else (width - 1, 0))
    ]
    paint(page, size, rows, brush=max(width, height) // 6)
    page.select_option(".dsw select >> nth=0", "edit")
    trajectory(page, size, (width / 2, height / 2), (width / 2 + 4, height / 2))
    page.click("button.dsw-apply")
    wait_for(page, "document.querySelector('.dsw-status').textContent.includes('of the frame')", 60)
    assert "paint the object alone" in page.inner_text(".dsw-status")
    assert kernel.evaluate("len(widget.received)") == received + 1
    assert int(dataset(page, "regionPixels")) > 0.9 * width * height  # the refused drawing is given back
    page.click("button.dsw-clear")


def test_click_to_select_proposes_the_object(person):
    page, kernel, _, _ = person
    size = tuple(kernel.evaluate("widget.frame_size"))
    blue = kernel.evaluate("[round(v) for v in object_region(widget.session.frames()[-1], 'blue')[1]]")
    area = kernel.evaluate("int(object_region(widget.session.frames()[-1], 'blue')[0].sum())")
    page.click("button[data-tool=select]")
    box = page.locator(".dsw-vectors").bounding_box()
    page.mouse.click(*stage_point(box, tuple(blue), size))
    wait_for(page, "document.querySelector('.dsw-status').textContent.startsWith('selected')", 60)
    wait_for(page, "Number(document.querySelector('.dsw').dataset.regionPixels) > 0", 30)
    assert 0.6 * area <= int(dataset(page, "regionPixels")) <= 1.6 * area
    assert page.eval_on_selector("button[data-tool=handle]", "b => b.classList.contains('dsw-active')")
    page.click("button.dsw-clear")


def test_9_live_strips_are_sharp_with_time_ticks_and_segment_marks(person):
    page, kernel, shots, _ = person
    assert page.eval_on_selector(".dsw-strips", "e => e.dataset.dpr") == "2"
    sizes = page.eval_on_selector_all(
        ".dsw-strip", "cs => cs.map(c => [c.width, c.height, c.clientWidth, c.clientHeight])"
    )
    for backing_w, backing_h, css_w, css_h in sizes:
        assert backing_w == 2 * css_w and backing_h == 2 * css_h
    maps_height = sizes[2][3]
    assert maps_height <= (sizes[2][2] - 24) / 3 + 24  # three square panels, no empty space under them
    assert int(page.eval_on_selector(".dsw-strips", "e => e.dataset.segmentStarts || 0")) >= 1
    doc_screenshot(page.locator(".widget-hbox").first, "widget_dpr2.png", shots)


def test_export_button_writes_the_stream_and_its_instructions(person):
    page, kernel, _, _ = person
    page.click("button.dsw-export")
    wait_for(page, "document.querySelector('.dsw-status').textContent.startsWith('exported')", 120)
    written = kernel.evaluate("sorted(p.suffix for p in __import__('pathlib').Path('exports').iterdir())")
    assert written == [".gif", ".json", ".mp4"]
    assert (
        kernel.evaluate(
            "len(__import__('json').load(open(next(__import__('pathlib').Path('exports').glob('*.json'))))['drags'])"
        )
        >= 1
    )


# ----- the same widget in marimo and Voila -----------------------------------------------------------

WIDE_MODEL = (
    "import dragstream_widget as dsw\n"
    "from dragstream_widget.models.random_model import RandomModelSpec, random_backend\n"
    "backend = random_backend(RandomModelSpec(latent_height=10, latent_width=18, frames_per_block=2))\n"
    "widget = dsw.DragStreamWidget(backend, 'a wide test frame', seed=2, display_width=430)\n"
    "widget.step(1).result()\n"
)


@contextlib.contextmanager
def app_server(command: list[str], root: Path, port: int, name: str, env: dict[str, str] | None = None):
    """A web app (JupyterLab, Notebook 7, marimo, Voila) on loopback port ``port``, started by ``command``
    in ``root`` with ``env`` added to the environment; its output goes to ``root / f"{name}.log"``."""
    log = open(root / f"{name}.log", "w")
    server = subprocess.Popen(
        command, cwd=root, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(
                        f"{name} did not start: " + (root / f"{name}.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.3)
        yield
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.25)


def streams_in_page(chromium, url: str, shots: Path, name: str) -> dict:
    """Open ``url``, wait for the widget's first frame, press Step: the next frames must reach the
    screen (custom messages with binary frames both ways). Returns what the page showed."""
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    try:
        page.goto(url)
        widget = page.locator(".dsw")  # locators see into shadow roots too (marimo draws widgets in one)
        widget.wait_for(timeout=180_000)
        shown = lambda: int(widget.evaluate("e => e.dataset.frameIndex || -1"))  # noqa: E731
        until(lambda: int(widget.evaluate("e => e.dataset.framesDrawn || 0")) > 0, 180)
        first = shown()
        widget.locator("button:text-is('Step')").click()
        until(lambda: shown() > first, 120)
        page.screenshot(path=shots / f"{name}.png")
        return {"first": first, "after_step": shown()}
    except Exception:
        page.screenshot(path=shots / f"{name}_failure.png")
        raise
    finally:
        page.close()


def test_widget_in_marimo(tmp_path, chromium):
    pytest.importorskip("marimo")
    body = "\n".join(
        "    " + line for line in (WIDE_MODEL + "view = mo.ui.anywidget(widget)\nview").splitlines()
    )
    (tmp_path / "app.py").write_text(
        "import marimo\n\napp = marimo.App()\n\n\n@app.cell\ndef _():\n    import marimo as mo\n\n"
        f"{body}\n    return\n\n\nif __name__ == '__main__':\n    app.run()\n"
    )
    port = free_port()
    command = [sys.executable, "-m", "marimo", "run", "app.py", "--headless", "--no-token"]
    with app_server([*command, "--host", "127.0.0.1", "--port", str(port)], tmp_path, port, "marimo"):
        shown = streams_in_page(chromium, f"http://127.0.0.1:{port}", tmp_path, "marimo")
    assert shown["after_step"] > shown["first"] >= 0


def test_widget_in_voila(tmp_path, chromium):
    pytest.importorskip("voila")
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(WIDE_MODEL + "widget")]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "widget.ipynb")
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "voila",
        "widget.ipynb",
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]
    with app_server([*command, "--token="], tmp_path, port, "voila"):
        shown = streams_in_page(chromium, f"http://127.0.0.1:{port}", tmp_path, "voila")
    assert shown["after_step"] > shown["first"] >= 0
