"""The interactive ablation bench for a notebook: pick a case and the components to keep, press Run,
and see the variants' frames side by side with their metrics (``notebooks/02_ablation.ipynb``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import ipywidgets as widgets
from IPython.display import Image, Markdown, display

from ...engine.config import DragConfig
from ...models.base import VideoBackend
from .cases import BenchCase
from .report import comparison_image, scores_table
from .runner import CaseRun, run_case
from .variants import VARIANTS, Variant

COMPONENTS = ("adsr", "sfs", "css")


def custom_variant(switches: dict[str, bool]) -> Variant | None:
    """A variant with the components switched off that ``switches`` marks False (None: all on)."""
    off = [name for name in COMPONENTS if not switches.get(name, True)]
    if not off:
        return None
    return Variant("mine", "without " + ", ".join(off), lambda base: base.without(*off))


def metrics_markdown(run: CaseRun) -> str:
    """One row per branch of a case run, the bench's columns."""
    return "\n".join(scores_table(run.scores))


class AblationExplorer:
    """Case picker, component switches, named variants to compare, a Run button and the results."""

    def __init__(self, backend: VideoBackend, cases: dict[str, BenchCase], base: DragConfig):
        if not cases:
            raise ValueError("give at least one case")
        self.backend, self.cases, self.base = backend, cases, base
        self.case = widgets.Dropdown(options=list(cases), description="case")
        self.switches = {
            name: widgets.Checkbox(value=True, description=name.upper(), indent=False) for name in COMPONENTS
        }
        self.compare = widgets.SelectMultiple(
            options=list(VARIANTS), value=("full", "no_adsr"), description="compare", rows=5
        )
        self.button = widgets.Button(description="Run", button_style="success", icon="play")
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.last_run: CaseRun | None = None
        self.button.on_click(lambda _button: self.run())
        controls = widgets.HBox([self.case, *self.switches.values()])
        self.widget = widgets.VBox(
            [controls, widgets.HBox([self.compare, self.button, self.status]), self.output]
        )

    def variants(self) -> list[Variant]:
        named = [VARIANTS[name] for name in self.compare.value]
        mine = custom_variant({name: box.value for name, box in self.switches.items()})
        return named + ([mine] if mine else [])

    def run(self) -> CaseRun | None:
        """Run the chosen case under the chosen variants; errors show in the status line."""
        variants = self.variants()
        if not variants:
            self.status.value = "<b>choose variants to compare, or switch a component off</b>"
            return None
        case = self.cases[self.case.value]
        self.button.disabled = True
        self.status.value = f"running {len(variants) + 1} branches of {case.name} ..."
        started = time.perf_counter()
        try:
            run = run_case(self.backend, case, variants, self.base)
            with tempfile.TemporaryDirectory() as folder:
                picture = Image(filename=str(comparison_image(run, Path(folder) / "frames.png")))
        except Exception as error:  # a button press must never take the kernel down
            self.status.value = f"<b>could not run {case.name}:</b> {error}"
            return None
        finally:
            self.button.disabled = False
        self.last_run = run
        self.output.outputs = ()
        self.output.append_display_data(
            Markdown(f"**{case.name}** ({', '.join(case.tags)}): {case.prompt}, seed {case.seed}")
        )
        self.output.append_display_data(picture)
        self.output.append_display_data(Markdown(metrics_markdown(run)))
        self.status.value = f"done in {time.perf_counter() - started:.1f} s"
        return run

    def _ipython_display_(self) -> None:
        display(self.widget)
