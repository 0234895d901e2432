"""The scenes stage in a build: each scene rendered to WebP (and ``.glb``) in the build's spool
folder, its viewer JSON kept beside it for the page, and the files listed for the site.

pyvista is imported only when a scene is drawn, so a build without scenes never loads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from attnreport.analysis.decision import DecisionSpace, state_name
from attnreport.analysis.results import ExampleAnalysis
from attnreport.core.jsonsafe import clean
from attnreport.scenes.cache import SceneCache, scene_key
from attnreport.scenes.palette import UNLABELLED, class_color

#: still images (width, height), shown only without WebGL and in print: the decision space; each
#: example's flow (800 wide: about the example page's width; half the bytes of 960 x 720 at the
#: same settings, and faster to render); the trajectories (a second view)
IMAGE_SIZE = (960, 720)
FLOW_SIZE = (800, 600)
TRAJECTORY_SIZE = (640, 480)


@dataclass
class SceneFiles:
    """One drawn scene: what a page needs to show it. A scene with `choices` is a group the page
    switches between (its own fields are the default choice's)."""

    title: str
    #: the viewer's JSON, spooled in the build's scratch folder
    data: Path
    #: site-relative paths of the still image and the .glb (None: not exported)
    image: str
    glb: str | None
    notes: list[str]
    #: (name, colour) pairs shown under the scene
    legend: list[tuple[str, str]] = field(default_factory=list)
    #: as a choice of a group: its key, button name, whether it is shown first, its layer
    key: str | None = None
    name: str | None = None
    default: bool = False
    layer: int | None = None
    choices: list[SceneFiles] = field(default_factory=list)
    #: the group's switch label ("View", "Layer")
    choose: str | None = None


@dataclass
class DecisionPoint:
    """What a decision-space point shows of its example: true label, prediction, text, page."""

    label: str | None
    prediction: str | None
    text: str
    link: str
    #: the example's data group (`[data] group_column`), None without one
    group: str | None = None


class SceneStage:
    """Draws the scenes of one build into ``spool/scenes``; `files` maps site paths to them."""

    def __init__(
        self,
        spool: Path,
        theme: str,
        *,
        example_glb: bool = False,
        trajectories: bool = True,
        cache_dir: Path | None = None,
    ) -> None:
        self.spool = Path(spool)
        self.theme = theme
        self.example_glb = example_glb
        self.trajectories = trajectories
        self.files: dict[str, Path] = {}
        self.count = 0
        #: drawn scenes kept by their content (`scenes.cache`); None: every scene is drawn
        self.cache = SceneCache(cache_dir) if cache_dir is not None else None
        #: scenes drawn by PyVista in this stage (a cached one is copied, not drawn)
        self.rendered = 0

    @classmethod
    def for_build(cls, ctx) -> SceneStage:
        """The stage of a build (a kind's `kinds.base.BuildContext`): its spool, `[site] theme`
        and `example_glb`, and the build's cache folder."""
        site = ctx.config.site
        return cls(ctx.spool, site.theme, example_glb=site.example_glb, cache_dir=ctx.cache_dir)

    def _save(
        self,
        scene,
        name: str,
        *,
        glb: bool = True,
        legend: list | None = None,
        size=IMAGE_SIZE,
        inputs: tuple | None = None,
    ) -> SceneFiles:
        """Write the still image, the viewer's JSON and (optionally) the .glb of `scene`: copied
        from the scene cache when it holds them, else drawn (and then kept there). With `inputs`
        (a builder's name and arguments), `scene` is a function that builds it, called only on a
        miss: the key is then the inputs, so a hit builds nothing."""
        folder = self.spool / "scenes"
        folder.mkdir(parents=True, exist_ok=True)
        image, path, data = folder / f"{name}.webp", folder / f"{name}.glb", folder / f"{name}.json"
        outputs = {"webp": image, "json": data, **({"glb": path} if glb else {})}
        key = None
        if self.cache is not None:
            if inputs is None:
                key = scene_key(scene, theme=self.theme, size=size, glb=glb)
            else:
                key = scene_key(inputs[1:], theme=self.theme, size=size, glb=glb, builder=inputs[0])
        parts = self.cache.get(key) if key is not None else None
        if parts is not None and set(parts) == {*outputs, "meta"}:
            for part, target in outputs.items():
                target.write_bytes(parts[part])
            meta = json.loads(parts["meta"])
        else:
            meta = self._draw(scene() if inputs is not None else scene, outputs, size=size, key=key)
        self.files[f"scenes/{name}.webp"] = image
        if glb:
            self.files[f"scenes/{name}.glb"] = path
        return SceneFiles(
            title=meta["title"],
            data=data,
            image=f"scenes/{name}.webp",
            glb=f"scenes/{name}.glb" if glb else None,
            notes=list(meta["notes"]),
            legend=legend or [],
        )

    def _draw(self, scene, outputs: dict[str, Path], *, size, key: str | None) -> dict:
        """Draw `scene` into `outputs` (part name to file) and, with a `key`, keep the files in
        the cache with the scene's title and notes (its ``meta``); returns those."""
        from attnreport.scenes.rendering import export_glb, render
        from attnreport.scenes.viewer_data import to_json

        render(scene, outputs["webp"], theme=self.theme, size=size)
        outputs["json"].write_text(
            json.dumps(
                clean(to_json(scene)),
                sort_keys=True,
                ensure_ascii=True,
                separators=(",", ":"),
                allow_nan=False,
            ),
            encoding="utf-8",
        )
        if "glb" in outputs:
            export_glb(scene, outputs["glb"], theme=self.theme)
        self.rendered += 1
        meta = {"title": scene.title, "notes": list(scene.notes)}
        if key is not None and self.cache is not None:
            parts = {part: target.read_bytes() for part, target in outputs.items()}
            parts["meta"] = json.dumps(meta, sort_keys=True, ensure_ascii=True).encode()
            self.cache.put(key, parts)
        return meta

    def flow(self, example: ExampleAnalysis) -> SceneFiles:
        """The attention-flow scene of one example and, beside it (a group the page switches
        between), its hidden-state trajectories."""
        from attnreport.scenes.flow import flow_scene
        from attnreport.scenes.trajectory import trajectory_scene

        trace, row = example.trace, example.rollout_row
        self.count += 1
        flow = self._save(
            lambda: flow_scene(trace, rollout_row=row),
            f"flow-{self.count:05d}",
            glb=self.example_glb,
            size=FLOW_SIZE,
            inputs=("flow_scene", trace, row),
        )
        if not self.trajectories:
            return flow
        paths = self._save(
            lambda: trajectory_scene(trace),
            f"paths-{self.count:05d}",
            glb=self.example_glb,
            size=TRAJECTORY_SIZE,
            inputs=("trajectory_scene", trace),
        )
        choices = [
            replace(flow, key="flow", name="attention flow", default=True),
            replace(paths, key="paths", name="hidden-state trajectories", default=False),
        ]
        return replace(flow, choices=choices, choose="View")

    def answer_flow(self, result) -> SceneFiles | None:
        """The attention-flow scene of one answer (`scenes.answer_flow`); None when the trace did
        not keep the prompt's own attention."""
        from attnreport.scenes.answer_flow import answer_flow_scene

        scene = answer_flow_scene(result)
        if scene is None:
            return None
        self.count += 1
        return self._save(scene, f"answer-{self.count:05d}", glb=self.example_glb, size=FLOW_SIZE)

    def stream(self, examples: Iterable[ExampleAnalysis]) -> Iterator[tuple[ExampleAnalysis, SceneFiles]]:
        """Each example with its flow scene."""
        for example in examples:
            yield example, self.flow(example)

    def decision(
        self,
        space: DecisionSpace,
        points: Sequence[DecisionPoint],
        *,
        name: str = "decision",
        glb: bool = True,
        group_column: str = "",
    ) -> SceneFiles:
        """The decision-space scene of the whole report, every example a point linking to its page;
        `points` has one entry per example streamed. With `group_column`, the points are coloured
        by their data group instead of their true label."""
        from attnreport.scenes.decision import by_group, decision_scene, group_colours

        labels = set(space.labels)
        if space.rows is not None:  # examples without a finite prediction have no point
            points = [points[i] for i in space.rows]
        scene = decision_scene(
            space,
            truth=[p.label if p.label in labels else None for p in points],
            predicted=[p.prediction for p in points],
            texts=[p.text for p in points],
            links=[p.link for p in points],
        )
        legend = [
            (name, "#{:02x}{:02x}{:02x}".format(*class_color(i))) for i, name in enumerate(space.labels)
        ]
        if group_column:
            groups = [p.group for p in points]
            scene = by_group(scene, groups, group_column)
            _, order = group_colours(groups)
            legend = [(g, "#{:02x}{:02x}{:02x}".format(*class_color(i))) for i, g in enumerate(order)]
            if None in groups:
                legend.append((f"no {group_column}", UNLABELLED))
        return self._save(scene, name, glb=glb, legend=legend)

    def decisions(
        self,
        default: DecisionSpace,
        others: list[DecisionSpace],
        points: Sequence[DecisionPoint],
        *,
        layers: int,
        group_column: str = "",
    ) -> SceneFiles:
        """The index's decision-space scene; with per-layer spaces (`others`), a group of scenes the
        page switches between by layer (``choices``, by layer; the default one is marked); with
        data groups (`group_column`), one more choice: the default layer coloured by group."""
        main = self.decision(default, points)
        grouped = None
        if group_column and any(p.group is not None for p in points):
            grouped = self.decision(
                default, points, name="decision-groups", glb=False, group_column=group_column
            )
        if not others and grouped is None:
            return main

        def choice(scene: SceneFiles, space: DecisionSpace, *, is_default: bool) -> SceneFiles:
            layer = space.layer_index(layers)
            tag = "head" if space.source == "model_head" else "probe"
            name = f"{state_name(layer, layers)} · {tag}"
            return replace(scene, key=f"L{layer}", name=name, layer=layer, default=is_default)

        choices = [choice(main, default, is_default=True)]
        for space in others:
            scene = self.decision(space, points, name=f"decision-L{space.layer}", glb=False)
            choices.append(choice(scene, space, is_default=False))
        choices.sort(key=lambda c: c.layer)
        if grouped is None:
            return replace(main, choices=choices, choose="Layer")
        layer = default.layer_index(layers)
        choices.append(
            replace(
                grouped,
                key="group",
                name=f"{state_name(layer, layers)} · by {group_column}",
                layer=layer,
                default=False,
            )
        )
        return replace(main, choices=choices, choose="View")
